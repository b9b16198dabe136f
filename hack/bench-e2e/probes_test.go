package main

import (
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	v1alpha1 "github.com/mlflow-operator/mlflow-operator/api/v1alpha1"
)

func deploymentOn(version string, updated, ready int32) *appsv1.Deployment {
	d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "m", Generation: 2}}
	d.Spec.Replicas = ptr.To(int32(3))
	d.Spec.Template.Labels = map[string]string{v1alpha1.LabelRole: v1alpha1.RoleProduction, v1alpha1.LabelModelVersion: version}
	d.Status = appsv1.DeploymentStatus{ObservedGeneration: 2, Replicas: 3, UpdatedReplicas: updated, ReadyReplicas: ready, AvailableReplicas: ready}
	return d
}

func pod(name, role, version string, ready bool, phase corev1.PodPhase, terminating bool) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{v1alpha1.LabelRole: role, v1alpha1.LabelModelVersion: version}}}
	p.Status.Phase = phase
	status := corev1.ConditionFalse
	if ready {
		status = corev1.ConditionTrue
	}
	p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: status}}
	if terminating {
		p.DeletionTimestamp = &metav1.Time{Time: time.Now()}
	}
	return p
}

func threeReady(version string) []*corev1.Pod {
	var out []*corev1.Pod
	for _, n := range []string{"a", "b", "c"} {
		out = append(out, pod(version+n, v1alpha1.RoleProduction, version, true, corev1.PodRunning, false))
	}
	return out
}

func TestProductionOn(t *testing.T) {
	prod, cand := v1alpha1.RoleProduction, v1alpha1.RoleCandidate
	for name, c := range map[string]struct {
		v    view
		want bool
	}{
		"complete": {view{deps: []*appsv1.Deployment{deploymentOn("2", 3, 3)}, pods: threeReady("2")}, true},
		"an old pod still live": {view{deps: []*appsv1.Deployment{deploymentOn("2", 3, 3)},
			pods: append(threeReady("2"), pod("old", prod, "1", true, corev1.PodRunning, false))}, false},
		"an old pod terminating": {view{deps: []*appsv1.Deployment{deploymentOn("2", 3, 3)},
			pods: append(threeReady("2"), pod("old", prod, "1", true, corev1.PodRunning, true))}, true},
		"a failed pod of a crashed version": {view{deps: []*appsv1.Deployment{deploymentOn("2", 3, 3)},
			pods: append(threeReady("2"), pod("bad", prod, "3", false, corev1.PodFailed, false))}, true},
		"a crash-looping pod": {view{deps: []*appsv1.Deployment{deploymentOn("2", 3, 3)},
			pods: append(threeReady("2"), pod("bad", prod, "3", false, corev1.PodRunning, false))}, false},
		"a candidate does not count": {view{deps: []*appsv1.Deployment{deploymentOn("2", 3, 3)},
			pods: append(threeReady("2"), pod("cand", cand, "3", true, corev1.PodRunning, false))}, true},
		"not all updated":       {view{deps: []*appsv1.Deployment{deploymentOn("2", 2, 3)}, pods: threeReady("2")}, false},
		"Deployment on another": {view{deps: []*appsv1.Deployment{deploymentOn("1", 3, 3)}, pods: threeReady("2")}, false},
		"too few pods":          {view{deps: []*appsv1.Deployment{deploymentOn("2", 3, 3)}, pods: threeReady("2")[:2]}, false},
		"no Deployment":         {view{pods: threeReady("2")}, false},
	} {
		if got := productionOn(c.v, "2"); got != c.want {
			t.Errorf("%s: productionOn = %v, want %v", name, got, c.want)
		}
	}
}

// TestObserverMarks: marks are taken when a change makes a probe hold, a
// probe waiting for another only after it, and a condition left over from
// the run before does not count.
func TestObserverMarks(t *testing.T) {
	o := &observer{name: "m", deps: map[string]*appsv1.Deployment{}, pods: map[string]*corev1.Pod{}, at: map[string]time.Time{}}
	md := &v1alpha1.ModelDeployment{ObjectMeta: metav1.ObjectMeta{Name: "m"}}
	md.Status.Serving = &v1alpha1.ServingVersionStatus{ModelVersionRef: v1alpha1.ModelVersionRef{Version: "2"}}
	md.Status.Target = &v1alpha1.ModelVersionRef{Version: "2"}
	md.Status.Conditions = []metav1.Condition{
		{Type: v1alpha1.ConditionRolledBack, Status: metav1.ConditionTrue, Message: "rolled back from version 13 to version 2: earlier"},
		{Type: v1alpha1.ConditionCandidateVerified, Status: metav1.ConditionTrue},
	}
	o.changed(md, false)
	o.changed(deploymentOn("2", 3, 3), false)
	for _, p := range threeReady("2") {
		o.changed(p, false)
	}
	o.expect(rollbackProbes("3", "2"))
	if len(o.at) != 0 {
		t.Fatalf("marked before anything happened: %v", o.at)
	}

	// Resolved: the target moves; CandidateVerified still True from before.
	md = md.DeepCopy()
	md.Status.Target = &v1alpha1.ModelVersionRef{Version: "3"}
	o.changed(md, false)
	if _, ok := o.at[markResolved]; !ok {
		t.Error("resolved not marked")
	}
	if _, ok := o.at[markPromoted]; ok {
		t.Error("promoted marked from a condition of the run before")
	}
	// The candidate's Deployment shows before the status says the image is ready.
	cd := deploymentOn("3", 1, 1)
	cd.Name = "m-candidate"
	cd.Spec.Template.Labels[v1alpha1.LabelRole] = v1alpha1.RoleCandidate
	o.changed(cd, false)
	if _, ok := o.at[markImage]; !ok {
		t.Error("image not marked by the candidate Deployment")
	}
	// Production on the good version all along: not restored before the rollback.
	o.changed(pod("bad", v1alpha1.RoleProduction, "3", false, corev1.PodFailed, false), false)
	if _, ok := o.at[markRestored]; ok {
		t.Error("restored marked before the rollback was decided")
	}
	md = md.DeepCopy()
	md.Status.Conditions[0].Message = "rolled back from version 3 to version 2: pods failing"
	o.changed(md, false)
	rb, ok1 := o.at[markRolledBack]
	rs, ok2 := o.at[markRestored]
	if !ok1 || !ok2 || !rs.Equal(rb) {
		t.Errorf("rolled back %v %v, restored %v %v: want both, at the same change", rb, ok1, rs, ok2)
	}
	if got := o.marks(); len(got) != 4 || len(o.at) != 0 || o.probes != nil {
		t.Errorf("marks() = %v, and the run is not reset: %v %v", got, o.at, o.probes)
	}
}
