package resolver

import (
	"context"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"

	"github.com/mlflow-operator/mlflow-operator/internal/metrics/metricstest"
)

// TestResolutionMetrics: every answer is counted by result and source: the
// registry asked, an answer shared from the cache, or a connection that
// could not be set up.
func TestResolutionMetrics(t *testing.T) {
	count := func(result, source string) float64 {
		return metricstest.Count(t, "mlflow_operator_resolutions_total", map[string]string{"result": result, "source": source})
	}
	asked, shared, noSecret := count("resolved", "mlflow"), count("resolved", "cache"), count("not_found", "config")
	requests := metricstest.Count(t, "mlflow_operator_mlflow_requests_total", map[string]string{"operation": "registered-models/alias", "code": "200"})

	reg := &registry{version: "1"}
	r := newResolver(t, reg, clocktesting.NewFakePassiveClock(time.Now()))
	ctx := context.Background()
	for _, name := range []string{"a", "b", "c"} {
		if _, err := r.Resolve(ctx, modelDeployment("ns", name, "")); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := r.Resolve(ctx, modelDeployment("ns", "d", "no-such-secret")); err == nil {
		t.Fatal("a missing Secret resolved")
	}
	if got := count("resolved", "mlflow"); got != asked+1 {
		t.Errorf("answers from MLflow: %v, want %v", got, asked+1)
	}
	if got := count("resolved", "cache"); got != shared+2 {
		t.Errorf("shared answers: %v, want %v", got, shared+2)
	}
	if got := count("not_found", "config"); got != noSecret+1 {
		t.Errorf("missing Secret: %v, want %v", got, noSecret+1)
	}
	// The clients it makes count their requests.
	if got := metricstest.Count(t, "mlflow_operator_mlflow_requests_total", map[string]string{"operation": "registered-models/alias", "code": "200"}); got != requests+1 {
		t.Errorf("MLflow requests counted: %v, want %v", got, requests+1)
	}
}
