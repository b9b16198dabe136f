package e2e

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/mlflow-operator/mlflow-operator/api/v1alpha1"
	"github.com/mlflow-operator/mlflow-operator/test/harness/cluster"
	"github.com/mlflow-operator/mlflow-operator/test/harness/mlflowserver"
	"github.com/mlflow-operator/mlflow-operator/test/harness/testenv"
)

// TestBlueGreenSwitchesUnderLoad: with strategy BlueGreen, version 2's
// whole set starts beside version 1's and the Service switches to it at
// once; moving the alias back to version 1 while its set is kept switches
// back without starting a pod. A client sends predictions through the
// Service throughout (real node): none may fail.
func TestBlueGreenSwitchesUnderLoad(t *testing.T) {
	res := register(t, mlflowserver.Op{"op": "register", "model": "bluegreen", "seed": 1, "alias": "champion"})
	v1 := res[0].Version
	md := newMD(t, testenv.Namespace(t, k8s, "e2e"), "bluegreen", v1alpha1.ModelReference{Name: "bluegreen", Alias: "champion"},
		func(md *v1alpha1.ModelDeployment) {
			md.Spec.Scaling.MinReplicas = ptr.To(int32(2))
			md.Spec.Rollout.Strategy = v1alpha1.StrategyBlueGreen
			md.Spec.Rollout.BlueGreen = &v1alpha1.BlueGreenSpec{ScaleDownDelay: &metav1.Duration{Duration: 10 * time.Minute}}
		})
	waitReady(t, md, v1, "v1 Ready")
	if md.Status.ActiveSlot != v1alpha1.SlotBlue {
		t.Fatalf("the first version serves from slot %q, want blue", md.Status.ActiveSlot)
	}
	var svcLoad *load
	startLoadOnRealNode := func() {
		if st.Node == cluster.RealNode {
			svcLoad = startLoad(t, md)
		}
	}

	v2 := register(t, mlflowserver.Op{"op": "register", "model": "bluegreen", "seed": 2})[0].Version
	startLoadOnRealNode()
	register(t, mlflowserver.Op{"op": "set_alias", "model": "bluegreen", "alias": "champion", "version": v2})
	moved := time.Now()
	waitReady(t, md, v2, "v2 Ready")
	t.Logf("MEASURED BlueGreen: alias moved -> Ready on v2 (poll, build, preview set, smoke test, switch): %s", time.Since(moved).Round(100*time.Millisecond))
	if md.Status.ActiveSlot != v1alpha1.SlotGreen {
		t.Fatalf("v2 serves from slot %q, want green", md.Status.ActiveSlot)
	}
	if svcLoad != nil {
		svcLoad.finish(t, "BlueGreen switch v1 -> v2")
	}
	logPodStarts(t, md, v1alpha1.SlotGreen)
	blue := slotPods(t, md, v1alpha1.SlotBlue)
	if len(blue) != 2 {
		t.Fatalf("blue should keep version %s's 2 pods for the scale-down delay, has %v", v1, blue)
	}

	startLoadOnRealNode()
	register(t, mlflowserver.Op{"op": "set_alias", "model": "bluegreen", "alias": "champion", "version": v1})
	moved = time.Now()
	waitReady(t, md, v1, "v1 Ready again")
	t.Logf("MEASURED BlueGreen: alias moved back -> Ready on v1 (poll, switch back): %s", time.Since(moved).Round(100*time.Millisecond))
	if md.Status.ActiveSlot != v1alpha1.SlotBlue {
		t.Fatalf("v1 serves from slot %q, want blue again", md.Status.ActiveSlot)
	}
	if got := slotPods(t, md, v1alpha1.SlotBlue); strings.Join(got, ",") != strings.Join(blue, ",") {
		t.Errorf("switching back changed blue's pods: %v -> %v (it should only move the Service)", blue, got)
	}
	if svcLoad != nil {
		svcLoad.finish(t, "BlueGreen switch back v2 -> v1")
	}
}

// slotPods are the names of the live pods of a BlueGreen slot, sorted.
func slotPods(t *testing.T, md *v1alpha1.ModelDeployment, slot v1alpha1.Slot) []string {
	t.Helper()
	pods := &corev1.PodList{}
	if err := k8s.List(context.Background(), pods, client.InNamespace(md.Namespace),
		client.MatchingLabels{v1alpha1.LabelName: md.Name, v1alpha1.LabelRole: string(slot)}); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range pods.Items {
		if p.DeletionTimestamp == nil {
			names = append(names, fmt.Sprintf("%s(%s)", p.Name, p.Labels[v1alpha1.LabelModelVersion]))
		}
	}
	sort.Strings(names)
	return names
}

// logPodStarts logs, for the pods of a slot, how long each took from its
// container's start to Ready: the model server's start and the probes'
// period.
func logPodStarts(t *testing.T, md *v1alpha1.ModelDeployment, slot v1alpha1.Slot) {
	t.Helper()
	pods := &corev1.PodList{}
	if err := k8s.List(context.Background(), pods, client.InNamespace(md.Namespace),
		client.MatchingLabels{v1alpha1.LabelName: md.Name, v1alpha1.LabelRole: string(slot)}); err != nil {
		t.Fatal(err)
	}
	for _, p := range pods.Items {
		var started, ready time.Time
		for _, cs := range p.Status.ContainerStatuses {
			if cs.Name == "model" && cs.State.Running != nil {
				started = cs.State.Running.StartedAt.Time
			}
		}
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
				ready = c.LastTransitionTime.Time
			}
		}
		if !started.IsZero() && !ready.IsZero() {
			t.Logf("MEASURED pod %s: created -> container started %s, started -> Ready %s", p.Name,
				started.Sub(p.CreationTimestamp.Time).Round(time.Second), ready.Sub(started).Round(time.Second))
		}
	}
}
