package main

import (
	"slices"
	"strings"
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

// slotSet is a complete set of three Ready pods of version in a
// Deployment of role, named like BlueGreen's.
func slotSet(role, version string) (*appsv1.Deployment, []*corev1.Pod) {
	d := deploymentOn(version, 3, 3)
	d.Name = "m-" + role
	d.Spec.Template.Labels[v1alpha1.LabelRole] = role
	var pods []*corev1.Pod
	for _, n := range []string{"a", "b", "c"} {
		pods = append(pods, pod(role+version+n, role, version, true, corev1.PodRunning, false))
	}
	return d, pods
}

func blueGreenMD(slot v1alpha1.Slot, serving, target string) *v1alpha1.ModelDeployment {
	md := &v1alpha1.ModelDeployment{ObjectMeta: metav1.ObjectMeta{Name: "m"}}
	md.Spec.Rollout.Strategy = v1alpha1.StrategyBlueGreen
	md.Status.ActiveSlot = slot
	md.Status.Serving = &v1alpha1.ServingVersionStatus{ModelVersionRef: v1alpha1.ModelVersionRef{Version: serving}}
	md.Status.Target = &v1alpha1.ModelVersionRef{Version: target}
	md.Status.Conditions = []metav1.Condition{{Type: v1alpha1.ConditionReady, Status: metav1.ConditionTrue}}
	return md
}

func service(role string) *corev1.Service {
	s := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "m"}}
	s.Spec.Selector = map[string]string{v1alpha1.LabelName: "m", v1alpha1.LabelRole: role}
	return s
}

// TestProductionOnFollowsTheActiveSlot: with BlueGreen, production is the
// set of status.activeSlot's role; the other set does not count, nor do
// the pods labelled production when another slot is active.
func TestProductionOnFollowsTheActiveSlot(t *testing.T) {
	blue, bluePods := slotSet("blue", "1")
	green, greenPods := slotSet("green", "2")
	s := view{md: blueGreenMD(v1alpha1.SlotGreen, "2", "2"), deps: []*appsv1.Deployment{blue, green}, pods: append(bluePods, greenPods...)}
	if !productionOn(s, "2") || productionOn(s, "1") {
		t.Errorf("green active: productionOn(2) = %v, productionOn(1) = %v; want true, false", productionOn(s, "2"), productionOn(s, "1"))
	}
	if !keptSet(s, "1") || keptRole(s, "1") != "blue" || keptSet(s, "2") {
		t.Errorf("green active: blue's version 1 should be the kept set (%q), green's not", keptRole(s, "1"))
	}
	s.md = blueGreenMD(v1alpha1.SlotBlue, "1", "1")
	if !productionOn(s, "1") || productionOn(s, "2") {
		t.Error("blue active: want production on version 1 alone")
	}
	if switchedTo(s, "1") {
		t.Error("switchedTo without a Service")
	}
	s.svc = service("green")
	if switchedTo(s, "1") {
		t.Error("switchedTo while the Service still selects green")
	}
	s.svc = service("blue")
	if !switchedTo(s, "1") {
		t.Error("switchedTo: the Service selects blue, blue runs version 1")
	}
	// A first BlueGreen version: nothing active in the empty slot yet.
	s.md = blueGreenMD("", "1", "1")
	if productionOn(s, "1") {
		t.Error("the empty slot is active and has no Deployment: want no production")
	}
	// A crash-looping pod of the active set.
	s.md = blueGreenMD(v1alpha1.SlotBlue, "1", "1")
	s.pods = append(s.pods, pod("blue1d", "blue", "1", false, corev1.PodRunning, false))
	if productionOn(s, "1") {
		t.Error("an active pod not Ready: want production not complete")
	}
}

// TestBlueGreenPromotionMarks: the preview set is the candidate (applied,
// a first pod Ready, complete); the promotion is marked replaced only when
// the Service selects it; and the old set is seen kept at Ready.
func TestBlueGreenPromotionMarks(t *testing.T) {
	o := &observer{name: "m", deps: map[string]*appsv1.Deployment{}, pods: map[string]*corev1.Pod{}, at: map[string]time.Time{}}
	blue, bluePods := slotSet("blue", "1")
	green, greenPods := slotSet("green", "2")
	md := blueGreenMD(v1alpha1.SlotBlue, "1", "1")
	o.changed(md, false)
	o.changed(service("blue"), false)
	o.changed(blue, false)
	for _, p := range bluePods {
		o.changed(p, false)
	}
	o.expect(promotionProbes("2", "1", true))
	if len(o.at) != 0 {
		t.Fatalf("marked before anything happened: %v", o.at)
	}
	md = md.DeepCopy()
	md.Status.Target = &v1alpha1.ModelVersionRef{Version: "2"}
	o.changed(md, false)
	o.changed(green, false)
	if _, ok := o.at[markImage]; !ok {
		t.Error("image not marked by the preview Deployment")
	}
	o.changed(greenPods[0], false)
	if _, ok := o.at[markCandidate]; !ok {
		t.Error("candidate not marked by a Ready preview pod")
	}
	if _, ok := o.at[markPreviewReady]; ok {
		t.Error("preview complete with one pod of three")
	}
	o.changed(greenPods[1], false)
	o.changed(greenPods[2], false)
	if _, ok := o.at[markPreviewReady]; !ok {
		t.Error("preview complete not marked")
	}
	// The switch: status first, the Service in the same pass.
	md = md.DeepCopy()
	md.Status.ActiveSlot = v1alpha1.SlotGreen
	md.Status.Promoting = &v1alpha1.ServingVersionStatus{ModelVersionRef: v1alpha1.ModelVersionRef{Version: "2"}}
	o.changed(md, false)
	if _, ok := o.at[markPromoted]; !ok {
		t.Error("promoted not marked")
	}
	if _, ok := o.at[markReplaced]; ok {
		t.Error("replaced marked while the Service still selects blue")
	}
	o.changed(service("green"), false)
	if _, ok := o.at[markReplaced]; !ok {
		t.Error("replaced not marked when the Service selects green")
	}
	md = md.DeepCopy()
	md.Status.Promoting, md.Status.Serving = nil, &v1alpha1.ServingVersionStatus{ModelVersionRef: v1alpha1.ModelVersionRef{Version: "2"}}
	o.changed(md, false)
	ready, ok1 := o.at[markReady]
	kept, ok2 := o.at[markOldKept]
	if !ok1 || !ok2 || !kept.Equal(ready) {
		t.Errorf("ready %v %v, old set kept %v %v: want both, at the same change", ready, ok1, kept, ok2)
	}
	if _, ok := o.at[markOldGone]; ok {
		t.Error("BlueGreen marks no old pods gone: they are kept")
	}
}

// TestSwitchBackMarks: going back to the kept set is restored when the
// Service selects it again, not when the status alone says so.
func TestSwitchBackMarks(t *testing.T) {
	o := &observer{name: "m", deps: map[string]*appsv1.Deployment{}, pods: map[string]*corev1.Pod{}, at: map[string]time.Time{}}
	blue, bluePods := slotSet("blue", "1")
	green, greenPods := slotSet("green", "2")
	md := blueGreenMD(v1alpha1.SlotGreen, "2", "2")
	for _, obj := range []any{md, service("green"), blue, green} {
		o.changed(obj, false)
	}
	for _, p := range append(bluePods, greenPods...) {
		o.changed(p, false)
	}
	o.expect(switchBackProbes("1"))
	if len(o.at) != 0 {
		t.Fatalf("marked before anything happened: %v", o.at)
	}
	md = md.DeepCopy()
	md.Status.Target = &v1alpha1.ModelVersionRef{Version: "1"}
	md.Status.ActiveSlot = v1alpha1.SlotBlue
	md.Status.Promoting = &v1alpha1.ServingVersionStatus{ModelVersionRef: v1alpha1.ModelVersionRef{Version: "1"}}
	o.changed(md, false)
	for _, m := range []string{markResolved, markPromoted} {
		if _, ok := o.at[m]; !ok {
			t.Errorf("%s not marked", m)
		}
	}
	if _, ok := o.at[markRestored]; ok {
		t.Error("restored while the Service still selects green")
	}
	o.changed(service("blue"), false)
	if _, ok := o.at[markRestored]; !ok {
		t.Error("restored not marked when the Service selects blue")
	}
}

// TestHeldMarks: a dying version's preview crashes and is held, its pods
// go; production is touched only if it changes meanwhile, and then the
// note says how.
func TestHeldMarks(t *testing.T) {
	o := &observer{name: "m", deps: map[string]*appsv1.Deployment{}, pods: map[string]*corev1.Pod{}, at: map[string]time.Time{}}
	green, greenPods := slotSet("green", "2")
	md := blueGreenMD(v1alpha1.SlotGreen, "2", "2")
	for _, obj := range []any{md, service("green"), green} {
		o.changed(obj, false)
	}
	for _, p := range greenPods {
		o.changed(p, false)
	}
	var touched string
	o.expect(heldProbes("3", "2", "green", &touched))
	if len(o.at) != 0 {
		t.Fatalf("marked before anything happened: %v", o.at)
	}
	md = md.DeepCopy()
	md.Status.Target = &v1alpha1.ModelVersionRef{Version: "3"}
	o.changed(md, false)
	blue, _ := slotSet("blue", "3")
	o.changed(blue, false)
	dying := pod("blue3a", "blue", "3", false, corev1.PodRunning, false)
	o.changed(dying, false)
	if _, ok := o.at[markCrashed]; ok {
		t.Error("crashed before any container exited")
	}
	dying = dying.DeepCopy()
	dying.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "model", RestartCount: 1}}
	o.changed(dying, false)
	if _, ok := o.at[markCrashed]; !ok {
		t.Error("crashed not marked by a restarted container")
	}
	md = md.DeepCopy()
	md.Status.Conditions = append(md.Status.Conditions, metav1.Condition{Type: v1alpha1.ConditionCandidateVerified,
		Status: metav1.ConditionFalse, Reason: string(v1alpha1.ReasonCandidateFailed), Message: "candidate of version 3 failed: pod blue3a: restarted"})
	o.changed(md, false)
	if _, ok := o.at[markHeld]; !ok {
		t.Error("held not marked")
	}
	if _, ok := o.at[markPreviewGone]; ok {
		t.Error("preview gone while its pod runs")
	}
	o.changed(blue, true)
	o.changed(dying, true)
	if _, ok := o.at[markPreviewGone]; !ok {
		t.Error("preview gone not marked")
	}
	if _, ok := o.at[markTouched]; ok || touched != "" {
		t.Errorf("production marked disturbed: %s", touched)
	}
	notReady := greenPods[0].DeepCopy()
	notReady.Status.Conditions[0].Status = corev1.ConditionFalse
	o.changed(notReady, false)
	if _, ok := o.at[markTouched]; !ok || !strings.Contains(touched, "pod green2a version 2 ready false") {
		t.Errorf("a production pod not Ready: touched %v, %q", ok, touched)
	}
}

// TestKindsMatchProbes: every mark a table shows is one its runs' probes
// can see, and each label belongs to a mark of its table.
func TestKindsMatchProbes(t *testing.T) {
	var touched string
	steps := benchCanary(t).Spec.CanarySteps()
	for _, c := range []struct {
		kind   *runKind
		probes []probe
	}{
		{promotionKind, promotionProbes("2", "1", false)},
		{rollbackKind, rollbackProbes("3", "2")},
		{blueGreenPromotionKind, promotionProbes("2", "1", true)},
		{switchBackKind, switchBackProbes("1")},
		{heldKind, heldProbes("3", "2", "green", &touched)},
		{canaryPromotionKind(steps), canaryPromotionProbes("2", "1", steps, map[int]v1alpha1.CanaryStatus{})},
		{canaryHeldKind, heldProbes("3", "2", "green", &touched)},
	} {
		names := map[string]bool{}
		for _, p := range c.probes {
			names[p.name] = true
		}
		for _, m := range append(c.kind.marks, c.kind.end, c.kind.decided, c.kind.restored) {
			if m != "" && !names[m] {
				t.Errorf("%s: mark %q has no probe", c.kind.name, m)
			}
		}
		for m := range c.kind.labels {
			if !slices.Contains(c.kind.marks, m) {
				t.Errorf("%s: label for %q, not one of its marks", c.kind.name, m)
			}
		}
		// Progress lines and failed requests name a mark by its short form.
		shorts := map[string]string{}
		for _, m := range c.kind.marks {
			s := short(c.kind.label(m))
			if other, ok := shorts[s]; ok {
				t.Errorf("%s: %q and %q are both %q in short", c.kind.name, other, m, s)
			}
			shorts[s] = m
		}
	}
}
