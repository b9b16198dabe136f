package metrics

import (
	"errors"
	"testing"
	"time"

	v1alpha1 "github.com/mlflow-operator/mlflow-operator/api/v1alpha1"
	"github.com/mlflow-operator/mlflow-operator/internal/failure"
	"github.com/mlflow-operator/mlflow-operator/internal/metrics/metricstest"
)

// TestObjectSeries: one info series per object, replaced when what serves
// changes; Forget removes all three series.
func TestObjectSeries(t *testing.T) {
	obj := map[string]string{"namespace": "team-a", "name": "iris"}
	Observe(State{Namespace: "team-a", Name: "iris", Model: "iris"})
	Observe(State{Namespace: "team-a", Name: "other", Model: "wine", Version: "7", ImageDigest: "sha256:77", Ready: true})
	Observe(State{Namespace: "team-a", Name: "iris", Model: "iris", Version: "1", ImageDigest: "sha256:11", Ready: true})
	Observe(State{Namespace: "team-a", Name: "iris", Model: "iris", Version: "2", ImageDigest: "sha256:22", Stalled: true})
	info := metricstest.Series(t, "mlflow_operator_modeldeployment_info", obj)
	if len(info) != 1 || info[0]["version"] != "2" || info[0]["image_digest"] != "sha256:22" || info[0]["model"] != "iris" {
		t.Fatalf("info series %v, want version 2's alone", info)
	}
	if v, _ := metricstest.Value(t, "mlflow_operator_modeldeployment_ready", obj); v != 0 {
		t.Errorf("ready %v", v)
	}
	if v, _ := metricstest.Value(t, "mlflow_operator_modeldeployment_stalled", obj); v != 1 {
		t.Errorf("stalled %v", v)
	}
	Forget("team-a", "iris")
	for _, name := range []string{"mlflow_operator_modeldeployment_info", "mlflow_operator_modeldeployment_ready", "mlflow_operator_modeldeployment_stalled"} {
		if s := metricstest.Series(t, name, obj); len(s) != 0 {
			t.Errorf("%s after Forget: %v", name, s)
		}
	}
	if s := metricstest.Series(t, "mlflow_operator_modeldeployment_info", map[string]string{"name": "other"}); len(s) != 1 {
		t.Errorf("another object's series went too: %v", s)
	}
	Forget("team-a", "other")
}

func TestResultLabels(t *testing.T) {
	for err, want := range map[error]string{
		nil:                 "resolved",
		errors.New("plain"): "error",
		failure.New(failure.NotFound, failure.Alias, "", nil):      "not_found",
		failure.New(failure.NotReady, failure.Version, "", nil):    "not_ready",
		failure.New(failure.Unauthorized, failure.MLflow, "", nil): "unauthorized",
		failure.New(failure.Unreachable, failure.MLflow, "", nil):  "unreachable",
		failure.New(failure.Invalid, failure.MLflow, "", nil):      "invalid",
		failure.New(failure.Refused, failure.MLflow, "", nil):      "refused",
		failure.New(failure.Other, failure.MLflow, "", nil):        "error",
	} {
		if got := Result(err); got != want {
			t.Errorf("Result(%v) = %q, want %q", err, got, want)
		}
	}
}

func TestMLflowRequestCodes(t *testing.T) {
	ok := map[string]string{"operation": "model-versions/get", "code": "200"}
	none := map[string]string{"operation": "model-versions/get", "code": "error"}
	before, beforeNone := metricstest.Count(t, "mlflow_operator_mlflow_requests_total", ok), metricstest.Count(t, "mlflow_operator_mlflow_requests_total", none)
	MLflowRequest("model-versions/get", 200, time.Millisecond)
	MLflowRequest("model-versions/get", 0, time.Second)
	if got := metricstest.Count(t, "mlflow_operator_mlflow_requests_total", ok); got != before+1 {
		t.Errorf("200s: %v, want %v", got, before+1)
	}
	if got := metricstest.Count(t, "mlflow_operator_mlflow_requests_total", none); got != beforeNone+1 {
		t.Errorf("no answer: %v, want %v", got, beforeNone+1)
	}
}

// TestAlertedCountersStartAtZero: before anything happened, the counters the
// alerts take increase() of have a series at 0 for every known reason, so
// that the first rollback shows as an increase; and the reasons are the
// API's.
func TestAlertedCountersStartAtZero(t *testing.T) {
	for _, r := range RollbackReasons {
		if v, ok := metricstest.Value(t, "mlflow_operator_rollbacks_total", map[string]string{"reason": r}); !ok || v != 0 {
			t.Errorf("rollbacks_total{reason=%q} = %v (present %v), want a series at 0", r, v, ok)
		}
	}
	for _, r := range HeldReasons {
		if _, ok := metricstest.Value(t, "mlflow_operator_versions_held_total", map[string]string{"reason": r}); !ok {
			t.Errorf("versions_held_total{reason=%q} has no series", r)
		}
	}
	if _, ok := metricstest.Value(t, "mlflow_operator_builds_total", map[string]string{"result": BuildFailed}); !ok {
		t.Error("builds_total{result=failed} has no series")
	}
	known := map[string]bool{}
	for _, r := range []v1alpha1.Reason{v1alpha1.ReasonCandidateFailed, v1alpha1.ReasonCandidateNotReady, v1alpha1.ReasonSmokeTestFailed,
		v1alpha1.ReasonNoSmokeTestRequest, v1alpha1.ReasonProgressDeadline, v1alpha1.ReasonPodsFailing, v1alpha1.ReasonVersionFailed} {
		known[string(r)] = true
	}
	for _, r := range append(append([]string{}, RollbackReasons...), HeldReasons...) {
		if !known[r] {
			t.Errorf("reason %q is not one of the API's", r)
		}
	}
}
