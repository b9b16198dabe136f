package monitoring

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"

	"github.com/mlflow-operator/mlflow-operator/internal/requestmetrics"
)

// requestMetricsExposition is what the request-metrics sidecar's /metrics
// serves after a few requests of every kind: answered, refused by the
// model, and a 502 (the model server down).
func requestMetricsExposition(t *testing.T) ([]byte, *requestmetrics.Metrics) {
	t.Helper()
	model := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/invocations" {
			w.Write([]byte(`{"predictions":[0]}`))
			return
		}
		http.NotFound(w, r)
	}))
	defer model.Close()
	m := requestmetrics.NewMetrics()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	up, _ := url.Parse(model.URL)
	proxy := httptest.NewServer(requestmetrics.NewProxy(up, m, log))
	defer proxy.Close()
	down, _ := url.Parse("http://127.0.0.1:1")
	broken := httptest.NewServer(requestmetrics.NewProxy(down, m, log))
	defer broken.Close()
	for _, u := range []string{proxy.URL + "/invocations", proxy.URL + "/ping", proxy.URL + "/elsewhere", broken.URL + "/invocations"} {
		resp, err := http.Post(u, "application/json", strings.NewReader(`{"inputs":[[1,2]]}`))
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	return scrape(t, m.Handler()), m
}

// TestRequestMetricsPassPromtool: `promtool check metrics` finds nothing to
// say about the model pods' request metrics.
func TestRequestMetricsPassPromtool(t *testing.T) {
	requirePromtool(t)
	body, _ := requestMetricsExposition(t)
	for _, s := range []string{`mlflow_model_requests_total{code="200",path="/invocations"} 1`, `mlflow_model_requests_total{code="502",path="/invocations"} 1`,
		`mlflow_model_requests_total{code="404",path="other"} 1`, "mlflow_model_request_duration_seconds_bucket{", "mlflow_model_requests_in_flight 0"} {
		if !strings.Contains(string(body), s) {
			t.Fatalf("the exposition lacks %s:\n%s", s, body)
		}
	}
	if out, err := promtool(t, "", body, "check", "metrics"); err != nil || out != "" {
		t.Errorf("promtool check metrics on the request metrics: %v\n%s", err, out)
	}
}

// TestRequestMetricsDocumented: docs/operations.md names every request
// metric, and the sidecar serves nothing else.
func TestRequestMetricsDocumented(t *testing.T) {
	_, m := requestMetricsExposition(t)
	families, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	doc := string(repoFile(t, "docs/operations.md"))
	types := map[string]dto.MetricType{}
	for _, f := range families {
		types[f.GetName()] = f.GetType()
		if !strings.HasPrefix(f.GetName(), "mlflow_model_") {
			t.Errorf("the sidecar serves %s, not one of its own", f.GetName())
		}
		if !strings.Contains(doc, "`"+f.GetName()+"`") {
			t.Errorf("docs/operations.md does not list %s", f.GetName())
		}
	}
	if len(types) != 5 || types["mlflow_model_request_duration_seconds"] != dto.MetricType_HISTOGRAM {
		t.Errorf("families %v", types)
	}
}
