// Package mlflow is a typed client for the parts of the MLflow tracking
// server's REST API the operator uses: the model registry (resolving an
// alias, a stage or a version), artifact download through the server, and the
// verification of MLflow webhook deliveries. It knows nothing of Kubernetes.
//
// Its failures are *failure.Error: Subject MLflow for a request that failed
// (Unreachable, Unauthorized, NotFound or Other), for what MLflow answered
// that cannot be used (Invalid: an unsafe path, a model over the download
// limits) and for a host or address the client will not contact (Refused);
// and for Resolve the thing found missing or not ready (Model, Alias, Stage,
// Version).
//
// MLflow's answers are outside input: whoever can create a ModelDeployment
// can name a tracking server of theirs. The client sends credentials to the
// tracking server only, follows artifact locations and redirects only to
// hosts the operator allows, refuses addresses that reach the node or the
// cloud's metadata service, bounds what it downloads and checks what it
// resolves. The reconciler
// alone turns a Kind and a Subject into a condition reason, so the client
// says what happened, never which reason it deserves.
package mlflow

import (
	"bytes"
	"context"
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
	// DefaultMaxModelBytes bounds all the files of one model version
	// together: below the operator's 20 GiB temp-dir volume, which also
	// holds the layer file being written.
	DefaultMaxModelBytes int64 = 16 << 30
	// DefaultMaxArtifactBytes bounds one artifact file; no larger than the
	// whole model may be.
	DefaultMaxArtifactBytes = DefaultMaxModelBytes
	// DefaultMaxModelFiles bounds the files and folders of one model
	// version: each costs a request, a listing entry and an inode.
	DefaultMaxModelFiles = 10000
	// DefaultMaxModelDepth bounds how deep folders of one model version
	// nest.
	DefaultMaxModelDepth = 16
	// DefaultIdleTimeout is how long an artifact download may go without
	// receiving a byte before it fails.
	DefaultIdleTimeout = 60 * time.Second
	// maxMetadataBytes bounds the small files read into memory (MLmodel).
	maxMetadataBytes int64 = 1 << 20

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

// apply sets the credentials on r. Only authorize calls it: credentials go
// to the tracking server alone.
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
	// base is the server requests go to: the tracking server, or for a
	// client of another artifact host (see artifactLocation) that host.
	base *url.URL
	// home is the tracking server, in every copy: the one place
	// credentials are sent.
	home      *url.URL
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
	maxTotal  int64
	maxFiles  int
	maxDepth  int
	idle      time.Duration
	userAgent string
	sleep     func(context.Context, time.Duration) error
	// artifactHosts are the hosts (host[:port], lower case) other than the
	// tracking server that artifacts may be fetched from, without
	// credentials.
	artifactHosts map[string]bool
	// allowed are the addresses the dial guard lets through although they
	// are link-local or loopback.
	allowed []*net.IPNet
	// observer is told of every request (WithRequestObserver).
	observer RequestObserver
	// hosts maps host names to IP addresses before dialling: a stand-in
	// for DNS in tests, so that the dial guard can be shown to judge the
	// address a name resolves to. Nil outside tests.
	hosts map[string]string
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

// WithMaxArtifactBytes bounds one downloaded artifact file
// (DefaultMaxArtifactBytes).
func WithMaxArtifactBytes(n int64) Option { return func(c *Client) { c.maxFile = n } }

// WithDownloadLimits bounds what one model version's download may hold: its
// bytes in all (DefaultMaxModelBytes), its files and folders
// (DefaultMaxModelFiles), and how deep its folders nest (DefaultMaxModelDepth;
// 1 allows data/model.pkl, not data/a/model.pkl). The listing's sizes are
// checked before any file is fetched, and the bytes again while they
// stream, since a server may send more than it listed. A value that is not
// positive keeps the default, so that unset flags mean the defaults.
func WithDownloadLimits(maxTotalBytes int64, maxFiles, maxDepth int) Option {
	return func(c *Client) {
		if maxTotalBytes > 0 {
			c.maxTotal = maxTotalBytes
		}
		if maxFiles > 0 {
			c.maxFiles = maxFiles
		}
		if maxDepth > 0 {
			c.maxDepth = maxDepth
		}
	}
}

// WithIdleTimeout fails an artifact download that receives no byte for d
// (DefaultIdleTimeout), as Unreachable: a server sending one byte a minute
// must not hold a build worker for ever. 0 turns it off.
func WithIdleTimeout(d time.Duration) Option { return func(c *Client) { c.idle = d } }

// WithArtifactHosts lists the hosts (host or host:port, matched exactly,
// case aside) other than the tracking server that the client may fetch
// artifacts from when MLflow names them (mlflow-artifacts://host/...) or
// redirects there. They never get the tracking server's credentials. Any
// other host is refused: an MLflow answer is not trusted to say where the
// credentials, or the operator's requests, go.
func WithArtifactHosts(hosts ...string) Option {
	return func(c *Client) {
		for _, h := range hosts {
			if h = strings.ToLower(strings.TrimSpace(h)); h != "" {
				c.artifactHosts[h] = true
			}
		}
	}
}

// WithAllowedAddresses lets the client connect to addresses in nets although
// they are link-local or loopback, which the client's own transport refuses
// otherwise (see New). The unspecified address stays refused.
func WithAllowedAddresses(nets ...*net.IPNet) Option {
	return func(c *Client) { c.allowed = append(c.allowed, nets...) }
}

// WithUserAgent sets the User-Agent header.
func WithUserAgent(ua string) Option { return func(c *Client) { c.userAgent = ua } }

// New returns a client for the tracking server at trackingURI (http or
// https). Its failures are Invalid, Subject MLflow: the URI or the CA bundle
// must change.
//
// A tracking URI with credentials (https://user:password@host) is refused:
// the URI is in the ModelDeployment's spec, which more people can read than
// its Secret, and it is echoed in image labels and messages; credentials
// belong in the Secret (WithAuth).
//
// Unless WithTransport gives another one, the client's own transport refuses
// to connect to the unspecified address, to link-local addresses
// (169.254.0.0/16, fe80::/10: cloud metadata services) and, unless the
// tracking server is itself on loopback, to loopback; WithAllowedAddresses
// opens more. The check is made on the address dialled, after name
// resolution, so no DNS answer gets around it. An HTTP proxy from the
// environment is dialled instead of the server, so with one only the proxy's
// address is checked.
func New(trackingURI string, opts ...Option) (*Client, error) {
	u, err := url.Parse(strings.TrimRight(trackingURI, "/"))
	if err != nil {
		return nil, failure.New(failure.Invalid, failure.MLflow, "invalid tracking URI", shortErr(err))
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, failure.Errorf(failure.Invalid, failure.MLflow, "invalid tracking URI %s: want http(s)://host[:port][/path]", quote(trackingURI))
	}
	if u.User != nil {
		return nil, failure.Errorf(failure.Invalid, failure.MLflow,
			"the tracking URI holds credentials (user:password@); put them in the credentials Secret instead")
	}
	c := &Client{
		base: u, home: u, timeout: DefaultTimeout, retries: DefaultRetries, retryBase: DefaultRetryBase,
		retryMax: DefaultRetryMax, maxBody: DefaultMaxResponseBytes, maxFile: DefaultMaxArtifactBytes,
		maxTotal: DefaultMaxModelBytes, maxFiles: DefaultMaxModelFiles, maxDepth: DefaultMaxModelDepth,
		idle: DefaultIdleTimeout, userAgent: "mlflow-operator", sleep: sleepCtx, artifactHosts: map[string]bool{},
	}
	for _, o := range opts {
		o(c)
	}
	rt := c.transport
	if rt == nil {
		t, err := c.newTransport()
		if err != nil {
			return nil, err
		}
		rt = t
	}
	if c.observer != nil {
		rt = observed{next: rt, observer: c.observer}
	}
	// The redirect policy holds whatever the transport: it is about what
	// MLflow answers, not about how the bytes travel.
	c.http = &http.Client{Transport: rt, CheckRedirect: c.checkRedirect}
	return c, nil
}

// TrackingURI is the server's URL, without user information: it is written
// into image labels and messages. (New refuses a URI with credentials; this
// holds even so.)
func (c *Client) TrackingURI() string {
	u := *c.home
	u.User = nil
	return u.String()
}

// authorize sets the credentials on r when r goes to the tracking server,
// with its scheme (no credentials in clear over a redirect from https to
// http), and never to another host: not to an artifact host, not to a host
// a redirect names.
func (c *Client) authorize(r *http.Request) {
	r.Header.Del("Authorization")
	if r.URL.Scheme == c.home.Scheme && strings.EqualFold(r.URL.Host, c.home.Host) {
		c.auth.apply(r)
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
		// A decoding error may quote the answer (a number's digits).
		return failure.New(failure.Other, failure.MLflow, op, fmt.Errorf("cannot decode the answer: %w", shortErr(err)))
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
			ferr := transportFailure(op, err)
			// A refusal by the dial guard or the redirect policy stays
			// one; only a failure to connect may pass.
			return ferr.Kind == failure.Unreachable, 0, ferr
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
	c.authorize(req)
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

// transportFailure is the failure of a request that got no answer: the
// verdict of the dial guard or of the redirect policy when one of them
// refused it (their Kind), else Unreachable. The cause is shortened: it
// quotes the URL, which a redirect's Location chose.
func transportFailure(op string, err error) *failure.Error {
	kind := failure.Unreachable
	if fe, ok := failure.As(err); ok {
		kind = fe.Kind
	}
	return failure.New(kind, failure.MLflow, op, shortErr(err))
}
