// Package mlflow is a typed client for the parts of the MLflow tracking
// server's REST API the operator uses: the model registry (resolving an
// alias, a stage or a version), artifact download through the server, and the
// verification of MLflow webhook deliveries. It knows nothing of Kubernetes.
package mlflow

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Defaults of a Client.
const (
	DefaultTimeout          = 30 * time.Second
	DefaultRetries          = 4
	DefaultRetryBase        = 250 * time.Millisecond
	DefaultRetryMax         = 5 * time.Second
	DefaultMaxResponseBytes = 8 << 20
	// DefaultMaxArtifactBytes bounds one artifact file.
	DefaultMaxArtifactBytes int64 = 32 << 30

	apiPrefix       = "/api/2.0/mlflow/"
	artifactsPrefix = "/api/2.0/mlflow-artifacts/artifacts"
)

// Auth is how the client authenticates, with the meaning of the MLflow
// Python client's environment variables: Username and Password
// (MLFLOW_TRACKING_USERNAME/PASSWORD) give HTTP basic and win over Token
// (MLFLOW_TRACKING_TOKEN), a bearer token.
type Auth struct {
	Username, Password string
	Token              string
}

func (a Auth) apply(r *http.Request) {
	switch {
	case a.Username != "" || a.Password != "":
		r.SetBasicAuth(a.Username, a.Password)
	case a.Token != "":
		r.Header.Set("Authorization", "Bearer "+a.Token)
	}
}

// Client talks to one MLflow tracking server. It is safe for concurrent use.
type Client struct {
	base      *url.URL
	http      *http.Client
	transport http.RoundTripper
	auth      Auth
	caPEM     []byte
	insecure  bool
	timeout   time.Duration
	retries   int
	retryBase time.Duration
	retryMax  time.Duration
	maxBody   int64
	maxFile   int64
	userAgent string
	sleep     func(context.Context, time.Duration) error
}

// Option configures a Client.
type Option func(*Client)

// WithAuth sets the credentials.
func WithAuth(a Auth) Option { return func(c *Client) { c.auth = a } }

// WithCA trusts the PEM bundle for the server's certificate (in addition to
// nothing else: like MLFLOW_TRACKING_SERVER_CERT_PATH).
func WithCA(pem []byte) Option { return func(c *Client) { c.caPEM = pem } }

// WithInsecureSkipVerify turns off certificate verification
// (MLFLOW_TRACKING_INSECURE_TLS).
func WithInsecureSkipVerify(insecure bool) Option { return func(c *Client) { c.insecure = insecure } }

// WithTransport sets the HTTP transport (for tests, proxies, counting).
// WithCA and WithInsecureSkipVerify do not apply to a transport given here.
func WithTransport(rt http.RoundTripper) Option { return func(c *Client) { c.transport = rt } }

// WithTimeout bounds each HTTP request (not a whole artifact download).
func WithTimeout(d time.Duration) Option { return func(c *Client) { c.timeout = d } }

// WithRetries sets how often a request is retried on connection errors, 429
// and 5xx, with exponential backoff from base up to max.
func WithRetries(n int, base, max time.Duration) Option {
	return func(c *Client) { c.retries, c.retryBase, c.retryMax = n, base, max }
}

// WithMaxResponseBytes bounds a JSON answer.
func WithMaxResponseBytes(n int64) Option { return func(c *Client) { c.maxBody = n } }

// WithMaxArtifactBytes bounds one downloaded artifact file.
func WithMaxArtifactBytes(n int64) Option { return func(c *Client) { c.maxFile = n } }

// WithUserAgent sets the User-Agent header.
func WithUserAgent(ua string) Option { return func(c *Client) { c.userAgent = ua } }

// New returns a client for the tracking server at trackingURI (http or https).
func New(trackingURI string, opts ...Option) (*Client, error) {
	u, err := url.Parse(strings.TrimRight(trackingURI, "/"))
	if err != nil {
		return nil, fmt.Errorf("invalid tracking URI %q: %w", trackingURI, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("invalid tracking URI %q: want http(s)://host[:port][/path]", trackingURI)
	}
	c := &Client{
		base: u, timeout: DefaultTimeout, retries: DefaultRetries, retryBase: DefaultRetryBase,
		retryMax: DefaultRetryMax, maxBody: DefaultMaxResponseBytes, maxFile: DefaultMaxArtifactBytes,
		userAgent: "mlflow-operator", sleep: sleepCtx,
	}
	for _, o := range opts {
		o(c)
	}
	rt := c.transport
	if rt == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxIdleConnsPerHost = 16
		if c.caPEM != nil || c.insecure {
			cfg := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: c.insecure} //nolint:gosec // opt-in
			if c.caPEM != nil {
				pool := x509.NewCertPool()
				if !pool.AppendCertsFromPEM(c.caPEM) {
					return nil, errors.New("the CA bundle holds no PEM certificate")
				}
				cfg.RootCAs = pool
			}
			t.TLSClientConfig = cfg
		}
		rt = t
	}
	c.http = &http.Client{Transport: rt}
	return c, nil
}

// TrackingURI is the server's URL.
func (c *Client) TrackingURI() string { return c.base.String() }

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// endpoint is the URL of path below the tracking URI.
func (c *Client) endpoint(path string, query url.Values) *url.URL {
	u := *c.base
	u.Path = strings.TrimRight(c.base.Path, "/") + path
	u.RawPath = ""
	u.RawQuery = query.Encode()
	return &u
}

// getJSON GETs an API path and decodes the JSON answer into out.
func (c *Client) getJSON(ctx context.Context, op, path string, query url.Values, out any) error {
	body, err := c.request(ctx, op, http.MethodGet, c.endpoint(apiPrefix+path, query), nil, c.maxBody)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(body, out); err != nil {
		return &Error{Kind: KindOther, Op: op, StatusCode: http.StatusOK, Message: "cannot decode the answer", Err: err}
	}
	return nil
}

// request sends a request, retrying connection errors, 429 and 5xx with
// backoff, and returns the body of a 2xx answer (at most limit bytes).
func (c *Client) request(ctx context.Context, op, method string, u *url.URL, body []byte, limit int64) ([]byte, error) {
	var last error
	for attempt := 0; ; attempt++ {
		resp, err := c.send(ctx, method, u, body)
		if err == nil {
			var data []byte
			data, err = readLimited(resp.Body, limit)
			resp.Body.Close()
			if err == nil && resp.StatusCode/100 == 2 {
				return data, nil
			}
			if err == nil {
				err = errorFromResponse(op, resp, data)
			} else {
				err = &Error{Kind: KindOther, Op: op, StatusCode: resp.StatusCode, Message: err.Error()}
			}
			if !retryable(resp.StatusCode) {
				return nil, err
			}
			last = err
			if wait := retryAfter(resp); wait > 0 && attempt < c.retries {
				if serr := c.sleep(ctx, min(wait, c.retryMax)); serr != nil {
					return nil, &Error{Kind: KindUnreachable, Op: op, Err: serr}
				}
				continue
			}
		} else {
			if ctx.Err() != nil {
				return nil, &Error{Kind: KindUnreachable, Op: op, Err: ctx.Err()}
			}
			last = &Error{Kind: KindUnreachable, Op: op, Err: err}
		}
		if attempt >= c.retries {
			var e *Error
			if errors.As(last, &e) && e.StatusCode != 0 {
				// The server answered, but kept failing.
				e.Kind = KindUnreachable
			}
			return nil, last
		}
		if err := c.sleep(ctx, c.backoff(attempt)); err != nil {
			return nil, &Error{Kind: KindUnreachable, Op: op, Err: err}
		}
	}
}

// send sends one request with the per-request timeout.
func (c *Client) send(ctx context.Context, method string, u *url.URL, body []byte) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	rctx, cancel := context.WithTimeout(ctx, c.timeout)
	req, err := http.NewRequestWithContext(rctx, method, u.String(), rd)
	if err != nil {
		cancel()
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.userAgent)
	c.auth.apply(req)
	resp, err := c.http.Do(req)
	if err != nil {
		cancel()
		return nil, err
	}
	resp.Body = &cancelOnClose{ReadCloser: resp.Body, cancel: cancel}
	return resp, nil
}

type cancelOnClose struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (c *cancelOnClose) Close() error {
	err := c.ReadCloser.Close()
	c.cancel()
	return err
}

func (c *Client) backoff(attempt int) time.Duration {
	d := c.retryBase << attempt
	if d <= 0 || d > c.retryMax {
		d = c.retryMax
	}
	// Full jitter between d/2 and d.
	return d/2 + time.Duration(rand.Int64N(int64(d/2)+1))
}

func retryable(status int) bool {
	return status == http.StatusTooManyRequests || (status >= 500 && status != http.StatusNotImplemented)
}

func retryAfter(resp *http.Response) time.Duration {
	if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s > 0 {
		return time.Duration(s) * time.Second
	}
	return 0
}

// errBodyTooLarge is returned for an answer over the size limit.
var errBodyTooLarge = errors.New("answer exceeds the size limit")

func readLimited(r io.Reader, limit int64) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%w of %d bytes", errBodyTooLarge, limit)
	}
	return data, nil
}

// apiError is MLflow's JSON error body.
type apiError struct {
	ErrorCode string `json:"error_code"`
	Message   string `json:"message"`
}

// errorFromResponse classifies a non-2xx answer. MLflow answers JSON
// {"error_code", "message"}; its basic-auth app and proxies answer text.
func errorFromResponse(op string, resp *http.Response, body []byte) *Error {
	e := &Error{Op: op, StatusCode: resp.StatusCode}
	var ae apiError
	if json.Unmarshal(body, &ae) == nil && (ae.ErrorCode != "" || ae.Message != "") {
		e.Code, e.Message = ae.ErrorCode, ae.Message
	} else {
		e.Message = strings.TrimSpace(string(body))
		if len(e.Message) > 200 {
			e.Message = e.Message[:200] + "..."
		}
		if e.Message == "" {
			e.Message = http.StatusText(resp.StatusCode)
		}
	}
	switch {
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden ||
		e.Code == "UNAUTHENTICATED" || e.Code == "PERMISSION_DENIED":
		e.Kind = KindUnauthorized
	case resp.StatusCode == http.StatusNotFound || e.Code == "RESOURCE_DOES_NOT_EXIST":
		e.Kind = KindNotFound
	case retryable(resp.StatusCode):
		e.Kind = KindUnreachable
	case resp.StatusCode == http.StatusBadRequest:
		e.Kind = KindInvalid
	default:
		e.Kind = KindOther
	}
	return e
}

// isNetError tells whether err is a network failure (for callers that
// stream bodies themselves).
func isNetError(err error) bool {
	var ne net.Error
	return errors.As(err, &ne)
}
