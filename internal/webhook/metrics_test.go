package webhook

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/mlflow-operator/mlflow-operator/internal/metrics/metricstest"
	"github.com/mlflow-operator/mlflow-operator/internal/mlflow"
)

// TestDeliveryMetrics: every delivery is counted by its result, and an
// accepted one passes its signed timestamp on as the time the model changed.
func TestDeliveryMetrics(t *testing.T) {
	w, events, inv := receiver(t)
	count := func(result string) float64 {
		return metricstest.Count(t, "mlflow_operator_webhook_deliveries_total", map[string]string{"result": result})
	}
	results := []string{"accepted", "unknown_model", "ignored", "bad_signature", "stale", "replayed", "invalid"}
	before := map[string]float64{}
	for _, r := range results {
		before[r] = count(r)
	}

	serve(w, delivery("m-1", "iris", secret))                                                                                         // accepted
	serve(w, delivery("m-1", "iris", secret))                                                                                         // replayed
	serve(w, delivery("m-2", "iris", []byte("another secret")))                                                                       // bad signature
	serve(w, delivery("m-3", "nobody-follows-this", secret))                                                                          // unknown model
	serve(w, httptest.NewRequest(http.MethodGet, Path, nil))                                                                          // invalid
	serve(w, signed("m-4", time.Now().Add(-time.Hour), `{"entity":"model_version_alias","action":"created","data":{"name":"iris"}}`)) // stale
	serve(w, signed("m-5", time.Now(), `{"entity":"experiment","action":"created","data":{"name":"iris"}}`))                          // ignored
	drain(events)

	for _, r := range results {
		if got := count(r); got != before[r]+1 {
			t.Errorf("%s deliveries: %v, want %v", r, got, before[r]+1)
		}
	}
	// A standby relays to the leader.
	scheme := runtime.NewScheme()
	_ = corev1.AddToScheme(scheme)
	w.Relay = &Relay{Client: fake.NewClientBuilder().WithScheme(scheme).Build(), Namespace: "op"}
	w.Elected = make(chan struct{})
	relayed := count("relayed")
	if code := serve(w, delivery("m-6", "iris", secret)); code != http.StatusAccepted || count("relayed") != relayed+1 {
		t.Errorf("a standby's delivery: HTTP %d, relayed %v, want %v", code, count("relayed"), relayed+1)
	}

	inv.mu.Lock()
	defer inv.mu.Unlock()
	if len(inv.at) == 0 || time.Since(inv.at[0]) > time.Minute || inv.at[0].After(time.Now()) {
		t.Errorf("change times passed on: %v, want the delivery's timestamp", inv.at)
	}
}

// signed is a delivery of body with timestamp at, signed with the secret.
func signed(id string, at time.Time, body string) *http.Request {
	ts := strconv.FormatInt(at.Unix(), 10)
	r := httptest.NewRequest(http.MethodPost, Path, bytes.NewReader([]byte(body)))
	r.Header.Set(mlflow.HeaderDeliveryID, id)
	r.Header.Set(mlflow.HeaderTimestamp, ts)
	r.Header.Set(mlflow.HeaderSignature, mlflow.Sign(secret, id, ts, []byte(body)))
	return r
}
