package controllers_test

import (
	"fmt"
	"maps"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/mlflow-operator/mlflow-operator/api/v1alpha1"
	"github.com/mlflow-operator/mlflow-operator/internal/metrics/metricstest"
	"github.com/mlflow-operator/mlflow-operator/internal/resolver"
)

// The counters are the process's: other tests' objects may add to them
// while these run, so these compare with at least what they caused.

// objectSeries are the per-object series of md: its info, Ready and
// Stalled.
func objectSeries(t *testing.T, md *v1alpha1.ModelDeployment) (info []map[string]string, ready, stalled []map[string]string) {
	obj := map[string]string{"namespace": md.Namespace, "name": md.Name}
	return metricstest.Series(t, "mlflow_operator_modeldeployment_info", obj),
		metricstest.Series(t, "mlflow_operator_modeldeployment_ready", obj),
		metricstest.Series(t, "mlflow_operator_modeldeployment_stalled", obj)
}

// wantObjectSeries waits for md's series to say version (and its image's
// digest) serves, with Ready and Stalled as given.
func wantObjectSeries(t *testing.T, md *v1alpha1.ModelDeployment, version, digest string, ready, stalled float64) {
	t.Helper()
	obj := map[string]string{"namespace": md.Namespace, "name": md.Name}
	eventually(t, "series of version "+version, func() error {
		info, _, _ := objectSeries(t, md)
		want := map[string]string{"namespace": md.Namespace, "name": md.Name, "model": "iris", "version": version, "image_digest": digest}
		if len(info) != 1 || !maps.Equal(info[0], want) {
			return fmt.Errorf("info series %v, want one: %v", info, want)
		}
		if r, _ := metricstest.Value(t, "mlflow_operator_modeldeployment_ready", obj); r != ready {
			return fmt.Errorf("ready %v, want %v", r, ready)
		}
		if s, _ := metricstest.Value(t, "mlflow_operator_modeldeployment_stalled", obj); s != stalled {
			return fmt.Errorf("stalled %v, want %v", s, stalled)
		}
		return nil
	})
}

// TestMetricsOfAPromotion: the per-object series follow the version that
// serves; a registry change is timed from the webhook's timestamp to Ready;
// the rollout is counted; deleting the object removes its series.
func TestMetricsOfAPromotion(t *testing.T) {
	srv := newScoringServer(t)
	md := serving(t, srv)
	wantObjectSeries(t, md, "1", imageV1[len(imageV1)-71:], 1, 0)
	// The spec change serving made is handled: what moves the target now
	// is the registry.
	eventually(t, "spec handled", func() error {
		if m := getMD(t, md); m.Status.ObservedGeneration != m.Generation {
			return fmt.Errorf("observed generation %d of %d", m.Status.ObservedGeneration, m.Generation)
		}
		return nil
	})
	webhook := map[string]string{"trigger": "webhook"}
	promotions, promotionSeconds := metricstest.Count(t, "mlflow_operator_promotion_duration_seconds", webhook),
		metricstest.Sum(t, "mlflow_operator_promotion_duration_seconds", webhook)
	succeeded := metricstest.Count(t, "mlflow_operator_rollouts_total", map[string]string{"outcome": "succeeded"})

	// A webhook said the alias moved 90 seconds ago.
	fake.Set(client.ObjectKeyFromObject(md), answer{Image: imageV2,
		Version: resolver.ModelVersion{Version: "2", RunID: "run2", ChangedAt: time.Now().Add(-90 * time.Second)}})
	touch(t, md)
	candidateUp(t, md, imageV2, "")
	eventually(t, "v2 promoted", productionRuns(t, md, imageV2))
	completeRollout(t, md)
	eventually(t, "v2 serves", func() error {
		m := getMD(t, md)
		if m.Status.Serving == nil || m.Status.Serving.Version != "2" {
			return fmt.Errorf("serving %+v", m.Status.Serving)
		}
		return wantCondition(m, v1alpha1.ConditionReady, metav1.ConditionTrue, "")
	})
	wantObjectSeries(t, md, "2", imageV2[len(imageV2)-71:], 1, 0)
	eventually(t, "promotion timed", func() error {
		n := metricstest.Count(t, "mlflow_operator_promotion_duration_seconds", webhook)
		sum := metricstest.Sum(t, "mlflow_operator_promotion_duration_seconds", webhook)
		if n < promotions+1 || sum-promotionSeconds < 90 {
			return fmt.Errorf("%v promotions (%v s), want one more of at least 90 s after %v (%v s)", n, sum, promotions, promotionSeconds)
		}
		return nil
	})
	if got := metricstest.Count(t, "mlflow_operator_rollouts_total", map[string]string{"outcome": "succeeded"}); got < succeeded+1 {
		t.Errorf("succeeded rollouts %v, want at least %v", got, succeeded+1)
	}

	if err := k8s.Delete(t.Context(), md); err != nil {
		t.Fatal(err)
	}
	eventually(t, "series removed with the object", func() error {
		info, ready, stalled := objectSeries(t, md)
		if len(info)+len(ready)+len(stalled) != 0 {
			return fmt.Errorf("left: info %v ready %v stalled %v", info, ready, stalled)
		}
		return nil
	})
}

// TestMetricsOfARollback: a rollback is counted with its reason, the
// version is counted as held, and the object shows Stalled.
func TestMetricsOfARollback(t *testing.T) {
	reason := map[string]string{"reason": "PodsFailing"}
	rollbacks := metricstest.Count(t, "mlflow_operator_rollbacks_total", reason)
	held := metricstest.Count(t, "mlflow_operator_versions_held_total", reason)
	rolledBack := metricstest.Count(t, "mlflow_operator_rollouts_total", map[string]string{"outcome": "rolled_back"})

	md := promoted(t, newScoringServer(t))
	createPod(t, md, "iris-v2-crashing", getDeployment(t, md).Spec.Template, "CrashLoopBackOff")
	wantRolledBack(t, md, "PodsFailing")
	wantObjectSeries(t, md, "1", imageV1[len(imageV1)-71:], 0, 1)
	for name, before := range map[string]float64{"mlflow_operator_rollbacks_total": rollbacks, "mlflow_operator_versions_held_total": held} {
		if got := metricstest.Count(t, name, reason); got < before+1 {
			t.Errorf("%s{reason=PodsFailing} %v, want at least %v", name, got, before+1)
		}
	}
	if got := metricstest.Count(t, "mlflow_operator_rollouts_total", map[string]string{"outcome": "rolled_back"}); got < rolledBack+1 {
		t.Errorf("rolled back rollouts %v, want at least %v", got, rolledBack+1)
	}
}
