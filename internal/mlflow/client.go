// Package mlflow is a typed client for the parts of the MLflow tracking
// server's REST API the operator uses: the model registry (resolving an
// alias, a stage or a version), artifact download through the server, and the
// verification of MLflow webhook deliveries. It knows nothing of Kubernetes.
//
// Its failures are *failure.Error: Subject MLflow for a request that failed
// (Unreachable, Unauthorized, NotFound or Other), and for Resolve the thing
// found missing or not ready (Model, Alias, Stage, Version). The reconciler
// alone turns a Kind and a Subject into a condition reason, so the client
// says what happened, never which reason it deserves.
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
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/mlflow-operator/mlflow-operator/internal/failure"
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
// and 5xx: n times after the first try, with exponential backoff from base
// up to max (a Retry-After the server sends is honoured up to max too).
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
		return failure.New(failure.Other, failure.MLflow, op, fmt.Errorf("cannot decode the answer: %w", err))
	}
	return nil
}

// request sends a request, retrying connection errors, 429 and 5xx with
// backoff, and returns the body of a 2xx answer (at most limit bytes).
func (c *Client) request(ctx context.Context, op, method string, u *url.URL, body []byte, limit int64) ([]byte, error) {
	var data []byte
	err := c.retry(ctx, op, func() (bool, time.Duration, error) {
		resp, err := c.send(ctx, method, u, body)
		if err != nil {
			if ctx.Err() != nil {
				return false, 0, failure.New(failure.Unreachable, failure.MLflow, op, ctx.Err())
			}
			return true, 0, failure.New(failure.Unreachable, failure.MLflow, op, err)
		}
		data, err = readLimited(resp.Body, limit)
		resp.Body.Close()
		var ferr *failure.Error
		switch {
		case err != nil:
			ferr = failure.New(failure.Other, failure.MLflow, op, fmt.Errorf("HTTP %d: %w", resp.StatusCode, err))
		case resp.StatusCode/100 != 2:
			ferr = errorFromResponse(op, resp, data)
		default:
			return false, 0, nil
		}
		again := retryable(resp.StatusCode)
		if again {
			// Only the last try's failure is returned: the server
			// answered but kept failing, which is as good as unreachable
			// whatever its error code said.
			ferr.Kind = failure.Unreachable
		}
		return again, retryAfter(resp), ferr
	})
	if err != nil {
		return nil, err
	}
	return data, nil
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

// isNetError tells whether err is a network failure (for callers that
// stream bodies themselves).
func isNetError(err error) bool {
	var ne net.Error
	return errors.As(err, &ne)
}
