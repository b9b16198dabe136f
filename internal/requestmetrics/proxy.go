package requestmetrics

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"time"
)

// NewProxy forwards every request to upstream (the model server on the
// pod's loopback) and records it in m. Bodies stream both ways: nothing is
// buffered, so a large batch costs the proxy no memory, and a streamed
// response reaches the client as the model writes it. When the model server
// does not answer (not started yet, crashed), the client gets a 502, counted
// as such.
func NewProxy(upstream *url.URL, m *Metrics, log *slog.Logger) http.Handler {
	transport := &http.Transport{
		Proxy: nil, // never an HTTP_PROXY: the model is on loopback
		DialContext: (&net.Dialer{
			Timeout:   5 * time.Second,
			KeepAlive: 30 * time.Second,
		}).DialContext,
		// Clients of a model call it concurrently; Go's default of 2 idle
		// connections would open and close one per request under load.
		MaxIdleConns:        256,
		MaxIdleConnsPerHost: 256,
		// Below the model servers' own keep-alive timeouts (gunicorn 2 s,
		// uvicorn 5 s): a connection they are closing is never reused for
		// a POST, which Go cannot retry, and which would then be a 502.
		IdleConnTimeout: time.Second,
		// No response header timeout: a model may take long over a batch;
		// the client decides how long to wait.
	}
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(upstream)
			// The model server sees the Host the client sent, as it
			// would without the proxy.
			pr.Out.Host = pr.In.Host
			pr.SetXForwarded()
		},
		Transport: transport,
		// Flush as the model writes when it streams (no Content-Length);
		// ReverseProxy does that by itself for such responses.
		FlushInterval: 0,
		ErrorLog:      slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			if errors.Is(err, context.Canceled) && r.Context().Err() != nil {
				// The client went away: nobody reads an answer.
				if rec, ok := w.(*recorder); ok {
					rec.code = CodeClientGone
				}
				return
			}
			log.Warn("the model server did not answer", "path", r.URL.Path, "error", err)
			w.WriteHeader(http.StatusBadGateway)
		},
	}
	return &instrumented{next: rp, m: m}
}

// instrumented records every request passed to next.
type instrumented struct {
	next http.Handler
	m    *Metrics
}

func (h *instrumented) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	h.m.inFlight.Inc()
	defer h.m.inFlight.Dec()
	if r.Body != nil && r.Body != http.NoBody {
		r.Body = &countingBody{ReadCloser: r.Body, m: h.m}
	}
	rec := &recorder{ResponseWriter: w, m: h.m}
	defer func() {
		code := rec.code
		if code == "" {
			// Nothing written at all: net/http answers 200.
			code = codeLabel(rec.status())
		}
		h.m.observe(pathLabel(r.URL.Path), code, time.Since(start))
	}()
	h.next.ServeHTTP(rec, r)
}

// countingBody counts the request body's bytes as the proxy reads them.
type countingBody struct {
	io.ReadCloser
	m *Metrics
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.m.reqBytes.Add(float64(n))
	return n, err
}

// recorder notes the status and counts the response body's bytes. Unwrap
// lets http.ResponseController (which ReverseProxy flushes through) reach
// the connection's own Flusher.
type recorder struct {
	http.ResponseWriter
	m          *Metrics
	code       string // set instead of a status: CodeClientGone
	statusCode int
}

func (r *recorder) WriteHeader(status int) {
	// 1xx are interim: the final status comes after.
	if r.statusCode == 0 && status >= 200 {
		r.statusCode = status
	}
	r.ResponseWriter.WriteHeader(status)
}

func (r *recorder) Write(p []byte) (int, error) {
	if r.statusCode == 0 {
		r.statusCode = http.StatusOK
	}
	n, err := r.ResponseWriter.Write(p)
	r.m.respBytes.Add(float64(n))
	return n, err
}

func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

func (r *recorder) status() int {
	if r.statusCode == 0 {
		return http.StatusOK
	}
	return r.statusCode
}
