// Package requestmetrics is the request-metrics sidecar of the serving pods:
// a reverse proxy in front of the model server (`mlflow models serve` has no
// /metrics endpoint) that counts and times every request, and serves the
// counts on a port of its own. It knows nothing of MLflow beyond the paths
// of its scoring server, so it works in front of any model image.
//
// It has its own Prometheus registry, not controller-runtime's: it runs as a
// separate, small binary (cmd/request-metrics) in the model's pods, and
// exposes nothing but its own metrics (no Go runtime or process series: the
// kubelet's cAdvisor already measures the container).
package requestmetrics

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Paths are the request paths the metrics name; any other is "other", so
// that a client cannot create series by inventing paths.
var Paths = []string{"/invocations", "/ping", "/health", "/version"}

// PathOther labels a request to any path not in Paths.
const PathOther = "other"

// CodeClientGone labels a request whose client went away before the model
// answered (nginx's convention): the proxy could not answer it, but neither
// did the model fail, so it is not counted as a 502.
const CodeClientGone = "499"

// Buckets of the duration histogram, in seconds: from 1 ms (a /ping) to 30 s
// (a large batch). Beyond 30 s a request is in +Inf.
var Buckets = []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}

// Metrics are the proxy's metrics and the registry that holds them.
type Metrics struct {
	registry  *prometheus.Registry
	requests  *prometheus.CounterVec
	duration  *prometheus.HistogramVec
	inFlight  prometheus.Gauge
	reqBytes  prometheus.Counter
	respBytes prometheus.Counter
}

// NewMetrics makes the metrics in a registry of their own. Every path's
// histogram exists from the start (at zero), so that rate() over a new pod
// sees its first requests.
func NewMetrics() *Metrics {
	m := &Metrics{
		registry: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mlflow_model_requests_total",
			Help: "Requests answered, by path (/invocations, /ping, /health, /version or other) and HTTP status code (502: the model server did not answer; 499: the client went away first).",
		}, []string{"path", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "mlflow_model_request_duration_seconds",
			Help:    "Time from a request's arrival to the end of its response, by path.",
			Buckets: Buckets,
		}, []string{"path"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "mlflow_model_requests_in_flight",
			Help: "Requests being answered now.",
		}),
		reqBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mlflow_model_request_bytes_total",
			Help: "Bytes of request bodies passed to the model server.",
		}),
		respBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mlflow_model_response_bytes_total",
			Help: "Bytes of response bodies passed to the clients.",
		}),
	}
	m.registry.MustRegister(m.requests, m.duration, m.inFlight, m.reqBytes, m.respBytes)
	for _, p := range append(append([]string{}, Paths...), PathOther) {
		m.duration.WithLabelValues(p)
	}
	return m
}

// Registry is the registry the metrics are in (tests read it).
func (m *Metrics) Registry() *prometheus.Registry { return m.registry }

// Handler serves the metrics in the Prometheus exposition formats.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{
		// A scrape never waits behind many others: it is a few series.
		MaxRequestsInFlight: 4,
		Timeout:             10 * time.Second,
	})
}

// pathLabel is the path label of a request path.
func pathLabel(p string) string {
	for _, known := range Paths {
		if p == known {
			return p
		}
	}
	return PathOther
}

// codeLabel is the code label of a status: the code itself, which
// net/http keeps to three digits (100 to 999).
func codeLabel(status int) string {
	if status < 100 || status > 999 {
		return "other"
	}
	return strconv.Itoa(status)
}

// observe records one answered request.
func (m *Metrics) observe(path, code string, d time.Duration) {
	m.requests.WithLabelValues(path, code).Inc()
	m.duration.WithLabelValues(path).Observe(d.Seconds())
}
