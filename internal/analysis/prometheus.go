// Package analysis checks a step of a Canary rollout with a PromQL query:
// it asks the Prometheus server the cluster's administrator configured
// (operator flag --analysis-prometheus-url) for the query's value and tells
// whether that value lies within the bounds the ModelDeployment sets.
//
// The server's URL comes from the administrator, the query from a tenant.
// The query is sent in a POST body, so that it lands in no access log of a
// proxy, and this package logs nothing. What Prometheus answers is read up
// to 1 MiB; its error text goes into errors (a tenant's condition) bounded
// to 512 characters. Redirects are never followed: the URL names the server
// itself, and a redirect could take the tenant's query elsewhere.
package analysis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/mlflow-operator/mlflow-operator/internal/text"
)

const (
	// MaxQueryBytes bounds a query (after Expand), checked before any
	// request.
	MaxQueryBytes = 4096
	// maxBodyBytes bounds what is read of an answer: one value needs a few
	// hundred bytes, a query selecting thousands of series may return
	// megabytes, and the reader never holds more than this.
	maxBodyBytes = 1 << 20
	// maxDetailChars bounds Prometheus' own error text in an error.
	maxDetailChars = 512
	// defaultTimeout is the own client's timeout when Client is nil.
	defaultTimeout = 10 * time.Second
)

// Prometheus asks one Prometheus server (its HTTP API) for the value of a query.
type Prometheus struct {
	// URL is the server's base URL, e.g. http://prometheus.monitoring:9090 (a path prefix such as /prometheus is kept).
	URL string
	// Client sends the requests; nil: a client of its own with a 10 s timeout and no redirects followed.
	Client *http.Client
}

// Value runs query as an instant query and returns its one value. The
// result must be a scalar or an instant vector of exactly one sample; NaN
// is an error, ±Inf are values (the bounds decide). Every other answer is
// an error that says what came back.
func (p *Prometheus) Value(ctx context.Context, query string) (float64, error) {
	if strings.TrimSpace(query) == "" {
		return 0, errors.New("the query is empty")
	}
	if len(query) > MaxQueryBytes {
		return 0, fmt.Errorf("the query is %d bytes long, at most %d are allowed", len(query), MaxQueryBytes)
	}
	endpoint, err := p.endpoint()
	if err != nil {
		return 0, err
	}
	client := p.client()
	now := time.Now()
	form := url.Values{"query": {query}, "time": {strconv.FormatFloat(float64(now.UnixMilli())/1000, 'f', 3, 64)}}
	if d, ok := timeLeft(ctx, client, now); ok {
		if d < time.Millisecond {
			return 0, fmt.Errorf("no time left to ask Prometheus: %w", context.DeadlineExceeded)
		}
		form.Set("timeout", strconv.FormatInt(d.Milliseconds(), 10)+"ms")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint.String(), strings.NewReader(form.Encode()))
	if err != nil {
		return 0, fmt.Errorf("asking Prometheus: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		// The error names the URL (without a password), not the query,
		// which is in the body.
		return 0, fmt.Errorf("asking Prometheus: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBodyBytes+1))
	if err != nil {
		return 0, fmt.Errorf("reading the answer of Prometheus (%s): %w", resp.Status, err)
	}
	if len(body) > maxBodyBytes {
		return 0, fmt.Errorf("the answer of Prometheus (%s) is too large: over %d bytes (1 MiB); one value is needed", resp.Status, maxBodyBytes)
	}
	return parseAnswer(resp, body)
}

// endpoint is <URL>/api/v1/query, keeping URL's path prefix.
func (p *Prometheus) endpoint() (*url.URL, error) {
	u, err := url.Parse(p.URL)
	if err != nil {
		// url.Parse's error quotes the URL, which may hold a password.
		return nil, errors.New("the Prometheus URL cannot be parsed (operator flag --analysis-prometheus-url)")
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("the Prometheus URL %s is not an http:// or https:// URL with a host (operator flag --analysis-prometheus-url)", u.Redacted())
	}
	u = u.JoinPath("api", "v1", "query")
	u.RawQuery, u.Fragment = "", ""
	return u, nil
}

// client is Client, or one of its own, with redirects never followed either
// way: a copy of Client whose CheckRedirect stops at the first one.
func (p *Prometheus) client() *http.Client {
	c := http.Client{Timeout: defaultTimeout}
	if p.Client != nil {
		c = *p.Client
	}
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &c
}

// timeLeft is how long the request may take: until ctx's deadline or the
// client's timeout, whichever comes first. Prometheus gets it as the query's
// timeout, so that it stops evaluating a query nobody waits for.
func timeLeft(ctx context.Context, c *http.Client, now time.Time) (time.Duration, bool) {
	d, ok := time.Duration(0), false
	if deadline, has := ctx.Deadline(); has {
		d, ok = deadline.Sub(now), true
	}
	if c.Timeout > 0 && (!ok || c.Timeout < d) {
		d, ok = c.Timeout, true
	}
	return d, ok
}

// answer is the envelope of every answer of the Prometheus HTTP API.
type answer struct {
	Status    string `json:"status"`
	ErrorType string `json:"errorType"`
	Error     string `json:"error"`
	Data      struct {
		ResultType string          `json:"resultType"`
		Result     json.RawMessage `json:"result"`
	} `json:"data"`
}

// parseAnswer reads the one value out of an answer of /api/v1/query.
func parseAnswer(resp *http.Response, body []byte) (float64, error) {
	if resp.StatusCode >= 300 && resp.StatusCode < 400 {
		msg := fmt.Sprintf("Prometheus answered %s, a redirect, which is not followed", resp.Status)
		if loc, err := url.Parse(resp.Header.Get("Location")); err == nil && loc.String() != "" {
			msg += " (to " + text.Shorten(clean(loc.Redacted()), 200) + ")"
		}
		return 0, errors.New(msg + ": --analysis-prometheus-url must be the server's own address")
	}
	var a answer
	if err := json.Unmarshal(body, &a); err != nil || a.Status == "" {
		if resp.StatusCode/100 != 2 {
			msg := fmt.Sprintf("Prometheus answered %s", resp.Status)
			if resp.StatusCode == http.StatusNotFound {
				msg += " (is --analysis-prometheus-url the server's base URL?)"
			}
			if d := clean(string(body)); d != "" {
				msg += ", not JSON: " + text.Shorten(d, maxDetailChars)
			}
			return 0, errors.New(msg)
		}
		return 0, fmt.Errorf("the answer of Prometheus (%s) is not the JSON of its HTTP API", resp.Status)
	}
	if a.Status != "success" {
		msg := fmt.Sprintf("Prometheus answered %s", resp.Status)
		if a.ErrorType != "" {
			msg += " (" + text.Shorten(clean(a.ErrorType), 64) + ")"
		}
		if d := clean(a.Error); d != "" {
			msg += ": " + text.Shorten(d, maxDetailChars)
		}
		return 0, errors.New(msg)
	}
	if resp.StatusCode/100 != 2 {
		return 0, fmt.Errorf("Prometheus answered %s with a successful result", resp.Status)
	}
	return result(a.Data.ResultType, a.Data.Result)
}

// result reads the value of a scalar or a one-sample vector.
func result(resultType string, raw json.RawMessage) (float64, error) {
	switch resultType {
	case "scalar":
		return sampleValue(raw)
	case "vector":
		var samples []struct {
			Value     json.RawMessage `json:"value"`
			Histogram json.RawMessage `json:"histogram"`
		}
		if err := json.Unmarshal(raw, &samples); err != nil {
			return 0, errors.New("the query's vector result cannot be read")
		}
		switch {
		case len(samples) == 0:
			return 0, errors.New("the query returned no sample")
		case len(samples) > 1:
			return 0, fmt.Errorf("the query returned %d samples, one is needed (aggregate it, e.g. with sum() or max())", len(samples))
		case samples[0].Value == nil && samples[0].Histogram != nil:
			return 0, errors.New("the query returned a native histogram, a number is needed (e.g. histogram_quantile() or histogram_count() of it)")
		}
		return sampleValue(samples[0].Value)
	case "matrix":
		return 0, errors.New("the query returned a range vector (matrix), one value is needed (e.g. rate(x[5m]) rather than x[5m])")
	case "string":
		return 0, errors.New("the query returned a string, a number is needed")
	case "":
		return 0, errors.New("the answer of Prometheus has no result type")
	default:
		return 0, fmt.Errorf("the query returned a result of type %q, a scalar or a one-sample vector is needed", text.Shorten(clean(resultType), 64))
	}
}

// sampleValue reads a [<unix time>, "<value>"] pair.
func sampleValue(raw json.RawMessage) (float64, error) {
	var pair []json.RawMessage
	var s string
	if err := json.Unmarshal(raw, &pair); err != nil || len(pair) != 2 || json.Unmarshal(pair[1], &s) != nil {
		return 0, errors.New("the query's value cannot be read: it is not a [time, \"value\"] pair")
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, fmt.Errorf("the query's value %q is not a number", text.Shorten(clean(s), 64))
	}
	if math.IsNaN(v) {
		return 0, errors.New("the query's value is NaN (e.g. a division by zero with no traffic)")
	}
	return v, nil
}

// clean puts s on one line of printable characters: it goes into a
// condition message.
func clean(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	return strings.Join(strings.Fields(s), " ")
}

// Bounds are the interval a value must lie in; nil = unbounded on that side.
type Bounds struct{ Min, Max *float64 }

// Check returns nil when v lies in b (inclusive), else an error such as
// "0.93 is below the minimum 0.95". NaN lies in no interval, not even an
// unbounded one: every comparison with it is false.
func (b Bounds) Check(v float64) error {
	switch {
	case math.IsNaN(v):
		return errors.New("NaN is not a number that can lie within bounds")
	case b.Min != nil && v < *b.Min:
		return fmt.Errorf("%s is below the minimum %s", format(v), format(*b.Min))
	case b.Max != nil && v > *b.Max:
		return fmt.Errorf("%s is above the maximum %s", format(v), format(*b.Max))
	}
	return nil
}

// Within says that v lies in b, as a person reads it: "0.97 within
// [0.95, +Inf]".
func (b Bounds) Within(v float64) string {
	lo, hi := "-Inf", "+Inf"
	if b.Min != nil {
		lo = format(*b.Min)
	}
	if b.Max != nil {
		hi = format(*b.Max)
	}
	return format(v) + " within [" + lo + ", " + hi + "]"
}

// format writes v as Prometheus does, without an exponent for whole
// numbers a person reads at a glance (1000000, not 1e+06).
func format(v float64) string {
	if v == math.Trunc(v) && math.Abs(v) < 1e15 {
		return strconv.FormatFloat(v, 'f', -1, 64)
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}

// ParseBound parses a bound as written in the spec ("0.95", "-1", "1e3",
// "" = nil); an error names the text. NaN and infinities are refused: NaN
// bounds nothing, and an infinite bound is no bound (leave it out).
func ParseBound(s string) (*float64, error) {
	t := strings.TrimSpace(s)
	if t == "" {
		return nil, nil
	}
	v, err := strconv.ParseFloat(t, 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return nil, fmt.Errorf("the bound %q is not a finite number (such as 0.95, -1 or 1e3)", text.Shorten(s, 64))
	}
	return &v, nil
}

// placeholders are the names Expand knows.
var placeholders = map[string]bool{"namespace": true, "name": true, "version": true, "role": true}

// Expand replaces the placeholders {{namespace}}, {{name}}, {{version}} and
// {{role}} in a query template with the given values, in one pass (a value
// is never expanded again). Spaces inside the braces are allowed, as in
// {{ name }}. An unknown or unclosed placeholder, or a known one vars gives
// no value, is an error naming it. The values are Kubernetes names and
// model versions, inserted as they are (no escaping); one holding a quote,
// a backslash or a control character, which could end the PromQL string it
// is meant to sit in, is refused.
func Expand(query string, vars map[string]string) (string, error) {
	var b strings.Builder
	rest := query
	for {
		i := strings.Index(rest, "{{")
		if i < 0 {
			b.WriteString(rest)
			return b.String(), nil
		}
		b.WriteString(rest[:i])
		j := strings.Index(rest[i+2:], "}}")
		if j < 0 {
			return "", fmt.Errorf("the query has a placeholder that is not closed: %s", text.Shorten(clean(rest[i:]), 40))
		}
		raw := rest[i : i+2+j+2]
		name := strings.TrimSpace(raw[2 : len(raw)-2])
		if !placeholders[name] {
			return "", fmt.Errorf("the query has an unknown placeholder %s; known are {{namespace}}, {{name}}, {{version}} and {{role}}", text.Shorten(clean(raw), 40))
		}
		v, ok := vars[name]
		if !ok {
			return "", fmt.Errorf("the placeholder {{%s}} has no value here", name)
		}
		if k := strings.IndexFunc(v, func(r rune) bool { return r == '"' || r == '\'' || r == '`' || r == '\\' || r < 0x20 || r == 0x7f }); k >= 0 {
			return "", fmt.Errorf("the value of {{%s}} holds %q, which cannot go into a query", name, v[k:k+1])
		}
		b.WriteString(v)
		rest = rest[i+len(raw):]
	}
}
