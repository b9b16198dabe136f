package requestmetrics

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

// /metrics is served on the metrics address only: on the traffic address
// it is a request like any other, for the model.
func TestMetricsOnTheirOwnPortAndDrain(t *testing.T) {
	var upstreamPaths []string
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		upstreamPaths = append(upstreamPaths, r.URL.Path)
		w.Write([]byte("model"))
	}))
	defer upstream.Close()
	u, _ := url.Parse(upstream.URL)
	srv, err := Listen(Config{Listen: "127.0.0.1:0", MetricsListen: "127.0.0.1:0", Upstream: u,
		DrainDelay: 500 * time.Millisecond, Log: quiet}, NewMetrics())
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx) }()
	traffic, metrics := "http://"+srv.TrafficAddr(), "http://"+srv.MetricsAddr()

	if _, body := do(t, http.MethodGet, traffic+"/metrics", ""); body != "model" {
		t.Errorf("GET /metrics on the traffic port answered %q, want the model's answer", body)
	}
	do(t, http.MethodPost, traffic+"/invocations", "{}")
	resp, body := do(t, http.MethodGet, metrics+"/metrics", "")
	if resp.StatusCode != 200 || !strings.Contains(body, `mlflow_model_requests_total{code="200",path="/invocations"} 1`) ||
		!strings.Contains(body, `mlflow_model_requests_total{code="200",path="other"} 1`) {
		t.Errorf("metrics endpoint: %d\n%s", resp.StatusCode, body)
	}
	if resp, _ := do(t, http.MethodGet, metrics+"/invocations", ""); resp.StatusCode != http.StatusNotFound {
		t.Errorf("the metrics port answered /invocations with %d, want 404 (it is no proxy)", resp.StatusCode)
	}
	if strings.Join(upstreamPaths, ",") != "/metrics,/invocations" {
		t.Errorf("the model saw %v", upstreamPaths)
	}

	// Stopping: requests are still served during the drain delay, and
	// refused after it.
	stop()
	time.Sleep(100 * time.Millisecond)
	if resp, body := do(t, http.MethodGet, traffic+"/ping", ""); resp.StatusCode != 200 || body != "model" {
		t.Errorf("during the drain delay: %d %q", resp.StatusCode, body)
	}
	select {
	case err := <-served:
		if err != nil {
			t.Fatalf("Serve: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return after the drain delay")
	}
	if _, err := http.Get(traffic + "/ping"); err == nil {
		t.Error("the traffic port still answers after shutdown")
	}
}

func TestListenRefusesMissingAddresses(t *testing.T) {
	if _, err := Listen(Config{Listen: ":0"}, NewMetrics()); err == nil {
		t.Error("Listen without a metrics address or upstream succeeded")
	}
}
