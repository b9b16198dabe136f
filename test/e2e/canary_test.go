package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/mlflow-operator/mlflow-operator/api/v1alpha1"
	"github.com/mlflow-operator/mlflow-operator/test/harness/cluster"
	"github.com/mlflow-operator/mlflow-operator/test/harness/mlflowserver"
	"github.com/mlflow-operator/mlflow-operator/test/harness/testenv"
)

// TestCanaryStepUnderLoad: with strategy Canary and two production pods,
// version 2's canary set (one pod: a 25 % step is one pod beside two)
// is verified unexposed, then the Service's endpoints hold both sets' pods
// for the step's pause; the step is probed, the set grows to two pods and
// the Service switches to it alone. A client sends predictions through
// the Service throughout (real node): none may fail.
func TestCanaryStepUnderLoad(t *testing.T) {
	res := register(t, mlflowserver.Op{"op": "register", "model": "canary", "seed": 1, "alias": "champion"})
	v1 := res[0].Version
	md := newMD(t, testenv.Namespace(t, k8s, "e2e"), "canary", v1alpha1.ModelReference{Name: "canary", Alias: "champion"},
		func(md *v1alpha1.ModelDeployment) {
			md.Spec.Scaling.MinReplicas = ptr.To(int32(2))
			md.Spec.Rollout.Strategy = v1alpha1.StrategyCanary
			md.Spec.Rollout.Canary = &v1alpha1.CanarySpec{
				Steps:          []v1alpha1.CanaryStep{{Weight: 25, Pause: &metav1.Duration{Duration: 15 * time.Second}}},
				Analysis:       &v1alpha1.CanaryAnalysis{Probe: &v1alpha1.ProbeAnalysis{Requests: 5, MinSuccessPercent: 100}},
				ScaleDownDelay: &metav1.Duration{Duration: 10 * time.Minute},
			}
		})
	waitReady(t, md, v1, "v1 Ready")
	// The first version is switched to at once: nothing to share.
	if md.Status.ActiveSlot != v1alpha1.SlotBlue || md.Status.Canary != nil {
		t.Fatalf("the first version serves from slot %q (canary %+v), want blue and no canary", md.Status.ActiveSlot, md.Status.Canary)
	}

	v2 := register(t, mlflowserver.Op{"op": "register", "model": "canary", "seed": 2})[0].Version
	var svcLoad *load
	if st.Node == cluster.RealNode {
		svcLoad = startLoad(t, md)
	}
	register(t, mlflowserver.Op{"op": "set_alias", "model": "canary", "alias": "champion", "version": v2})
	moved := time.Now()

	// The step: one canary pod (green) beside two of production (blue),
	// all three ready endpoints of the Service.
	testenv.Eventually(t, 4*time.Minute, "the canary step takes traffic", func() error {
		m, err := getMD(md)
		if err != nil {
			return err
		}
		cs := m.Status.Canary
		if cs == nil || cs.Version != v2 || cs.Reached == nil {
			return fmt.Errorf("status.canary %+v", cs)
		}
		if cs.Step != 0 || cs.Replicas != 1 || cs.Weight != 33 {
			return fmt.Errorf("step %d: %d pods at %d%%, want step 0: 1 pod at 33%%", cs.Step, cs.Replicas, cs.Weight)
		}
		roles, err := readyEndpointRoles(md)
		if err != nil {
			return err
		}
		if roles[string(v1alpha1.SlotBlue)] != 2 || roles[string(v1alpha1.SlotGreen)] != 1 {
			return fmt.Errorf("the Service's ready endpoints by role: %v, want 2 blue and 1 green", roles)
		}
		return nil
	})
	t.Logf("MEASURED Canary: alias moved -> the canary step takes traffic: %s", time.Since(moved).Round(100*time.Millisecond))

	waitReady(t, md, v2, "v2 Ready")
	t.Logf("MEASURED Canary: alias moved -> Ready on v2 (poll, build, canary set, smoke test, a 15 s step, probes, growth, switch): %s",
		time.Since(moved).Round(100*time.Millisecond))
	if md.Status.ActiveSlot != v1alpha1.SlotGreen || md.Status.Canary != nil {
		t.Fatalf("v2 serves from slot %q (canary %+v), want green and no canary", md.Status.ActiveSlot, md.Status.Canary)
	}
	if svcLoad != nil {
		svcLoad.finish(t, "Canary v1 -> v2 (one step, then the switch)")
	}
	logPodStarts(t, md, v1alpha1.SlotGreen)
	if n := eventCount(t, md.Namespace, md.Name, string(v1alpha1.ReasonCanaryStep)); n < 2 {
		t.Errorf("%d CanaryStep events, want one per step and one for the growth before the switch", n)
	}
	testenv.Eventually(t, time.Minute, "the Service on green alone", func() error {
		roles, err := readyEndpointRoles(md)
		if err != nil {
			return err
		}
		if roles[string(v1alpha1.SlotBlue)] != 0 || roles[string(v1alpha1.SlotGreen)] != 2 {
			return fmt.Errorf("the Service's ready endpoints by role: %v, want 2 green alone", roles)
		}
		return nil
	})
}

// readyEndpointRoles counts the ready endpoints of md's Service by the
// role label of their pods.
func readyEndpointRoles(md *v1alpha1.ModelDeployment) (map[string]int, error) {
	ctx := context.Background()
	slices := &discoveryv1.EndpointSliceList{}
	if err := k8s.List(ctx, slices, client.InNamespace(md.Namespace), client.MatchingLabels{discoveryv1.LabelServiceName: md.Name}); err != nil {
		return nil, err
	}
	list := &corev1.PodList{}
	if err := k8s.List(ctx, list, client.InNamespace(md.Namespace), client.MatchingLabels{v1alpha1.LabelName: md.Name}); err != nil {
		return nil, err
	}
	pods := map[string]string{}
	for _, p := range list.Items {
		pods[p.Name] = p.Labels[v1alpha1.LabelRole]
	}
	roles := map[string]int{}
	for _, s := range slices.Items {
		for _, e := range s.Endpoints {
			if e.TargetRef == nil || !ptr.Deref(e.Conditions.Ready, false) {
				continue
			}
			roles[pods[e.TargetRef.Name]]++
		}
	}
	return roles, nil
}
