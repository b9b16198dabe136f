package controllers_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/mlflow-operator/mlflow-operator/api/v1alpha1"
	"github.com/mlflow-operator/mlflow-operator/internal/metrics/metricstest"
)

// TestIdleWritesNothing: once a ModelDeployment is Ready and nothing
// changes, polls keep running but nothing is written: not its status (not
// even lastPolled), not the objects it owns. A spec change is still applied
// (TestSpecChangesApplied) and drift still corrected (TestDriftIsCorrected).
func TestIdleWritesNothing(t *testing.T) {
	ctx := context.Background()
	md := setup(t, func(m *v1alpha1.ModelDeployment) {
		m.Spec.MLflow.PollInterval = &metav1.Duration{Duration: 5 * time.Second}
	})
	completeRollout(t, md)
	eventually(t, "Ready", func() error {
		return wantCondition(getMD(t, md), v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonSucceeded)
	})
	key := client.ObjectKeyFromObject(md)
	objects := []client.Object{&v1alpha1.ModelDeployment{}, &corev1.Service{}, &autoscalingv2.HorizontalPodAutoscaler{},
		&policyv1.PodDisruptionBudget{}, &networkingv1.NetworkPolicy{}}
	versions := func() (map[string]string, error) {
		out := map[string]string{"Deployment": getDeployment(t, md).ResourceVersion}
		for _, o := range objects {
			if err := k8s.Get(ctx, key, o); err != nil {
				return nil, err
			}
			out[fmt.Sprintf("%T", o)] = o.GetResourceVersion()
		}
		return out, nil
	}
	// Settled: the last writes of the rollout are done when two reads a
	// poll interval apart agree.
	var before map[string]string
	eventually(t, "settled", func() error {
		a, err := versions()
		if err != nil {
			return err
		}
		time.Sleep(6 * time.Second)
		b, err := versions()
		if err != nil {
			return err
		}
		if fmt.Sprint(a) != fmt.Sprint(b) {
			return fmt.Errorf("still writing: %v -> %v", a, b)
		}
		before = b
		return nil
	})
	resolves := fake.Resolves(key)
	// Server-side applies are PATCH requests; an apply that changes nothing
	// leaves the resource version alone, so they are counted at the client
	// (client-go's metric in controller-runtime's registry; the test's own
	// client only reads). Other tests' objects are idle too by now.
	patches := metricstest.Total(t, "rest_client_requests_total", map[string]string{"method": "PATCH"})
	time.Sleep(12 * time.Second)
	if n := metricstest.Total(t, "rest_client_requests_total", map[string]string{"method": "PATCH"}) - patches; n != 0 {
		t.Errorf("idle, yet %v PATCH requests (server-side applies or status patches) in 12 s", n)
	}
	after, err := versions()
	if err != nil {
		t.Fatal(err)
	}
	if n := fake.Resolves(key) - resolves; n < 2 {
		t.Fatalf("%d polls in 12 s at a 5 s interval: the test did not see the operator idle", n)
	}
	if fmt.Sprint(before) != fmt.Sprint(after) {
		t.Errorf("idle, yet written: resource versions %v -> %v", before, after)
	}
}
