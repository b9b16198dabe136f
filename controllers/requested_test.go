package controllers_test

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1alpha1 "github.com/mlflow-operator/mlflow-operator/api/v1alpha1"
	"github.com/mlflow-operator/mlflow-operator/controllers"
	"github.com/mlflow-operator/mlflow-operator/internal/resolver"
	"github.com/mlflow-operator/mlflow-operator/test/harness/operator"
)

// aliasLookups answers MLflow's alias lookups with version 1 and counts
// those sent to host: the requests the resolver sends to the MLflow server
// of the test's ModelDeployment. ModelDeployments other tests left behind
// in their namespaces are reconciled by the same operator and resolved
// through the same transport; they name another server.
type aliasLookups struct {
	host  string
	calls atomic.Int32
}

func (a *aliasLookups) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Host == a.host {
		a.calls.Add(1)
	}
	body := fmt.Sprintf(`{"model_version":{"name":%q,"version":"1","run_id":"run1","source":"models:/m-1","status":"READY"}}`, req.URL.Query().Get("name"))
	return &http.Response{StatusCode: http.StatusOK, Header: http.Header{"Content-Type": {"application/json"}},
		Body: io.NopCloser(strings.NewReader(body)), Request: req}, nil
}

// TestReconcileRequestAsksMLflowAgain: with the real resolver, whose
// answers are reused for most of a poll interval (an hour here), a new
// value of reconcile.fluxcd.io/requestedAt makes the operator ask MLflow
// once, at once, and records the value in status.lastHandledReconcileAt;
// reconciles that find the value handled ask nothing and write nothing.
func TestReconcileRequestAsksMLflowAgain(t *testing.T) {
	mlflow := &aliasLookups{host: "requested-at.mlflow.svc:5000"}
	restartOperator(t, operator.WithReconciler(controllers.ModelDeploymentReconciler{
		Resolver: &resolver.Resolver{Transport: mlflow}, Images: fake, Examples: fake, RequestMetricsImage: sidecarImage,
	}))
	md := setup(t, func(m *v1alpha1.ModelDeployment) {
		m.Spec.MLflow.TrackingURI = "http://" + mlflow.host
		m.Spec.MLflow.PollInterval = &metav1.Duration{Duration: time.Hour}
	})
	completeRollout(t, md)
	eventually(t, "Ready", func() error {
		return wantCondition(getMD(t, md), v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonSucceeded)
	})
	asked := mlflow.calls.Load()
	if asked == 0 {
		t.Fatal("the resolver never asked MLflow")
	}
	touch(t, md)
	consistently(t, "reconciles without a request reuse the cached answer", 2*time.Second, func() error {
		if n := mlflow.calls.Load() - asked; n != 0 {
			return fmt.Errorf("%d MLflow requests", n)
		}
		return nil
	})

	long := strings.Repeat("x", 300)
	for _, value := range []string{"2026-11-25T12:00:00Z", "2026-11-25T12:05:00.123456789Z", long} {
		annotate(t, md, v1alpha1.AnnotationReconcileRequestedAt, value)
		want := value
		if len(want) > v1alpha1.MaxHandledValue {
			want = want[:v1alpha1.MaxHandledValue]
		}
		eventually(t, "request "+want[:min(len(want), 30)]+" handled", func() error {
			if got := getMD(t, md).Status.LastHandledReconcileAt; got != want {
				return fmt.Errorf("lastHandledReconcileAt %q", got)
			}
			return nil
		})
		if n := mlflow.calls.Load() - asked; n != 1 {
			t.Errorf("%d MLflow requests for one reconcile request, want 1", n)
		}
		// Handled: another reconcile finds the value in status, asks
		// nothing and writes nothing.
		touch(t, md)
		rv := getMD(t, md).ResourceVersion
		consistently(t, "a handled request is not handled again", 2*time.Second, func() error {
			if n := mlflow.calls.Load() - asked; n != 1 {
				return fmt.Errorf("%d MLflow requests, want 1", n)
			}
			if got := getMD(t, md).ResourceVersion; got != rv {
				return fmt.Errorf("written again: resource version %s -> %s", rv, got)
			}
			return nil
		})
		asked = mlflow.calls.Load()
	}
}
