package main

import (
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	v1alpha1 "github.com/mlflow-operator/mlflow-operator/api/v1alpha1"
	"github.com/mlflow-operator/mlflow-operator/internal/rollout"
)

// benchCanary is the ModelDeployment the Canary entry makes.
func benchCanary(t *testing.T) *v1alpha1.ModelDeployment {
	t.Helper()
	picked, err := pickStrategies("canary", strategies)
	if err != nil || len(picked) != 1 || picked[0].name != "Canary" {
		t.Fatalf("BENCH_STRATEGIES=canary: %v, %v", picked, err)
	}
	md := &v1alpha1.ModelDeployment{ObjectMeta: metav1.ObjectMeta{Name: "m"}}
	picked[0].apply(md)
	return md
}

// TestCanaryStrategy: the Canary entry is a Canary spec the CRD accepts
// (no blueGreen settings), measured as BlueGreen is, with short analysed
// steps whose weights production's 3 pods give exactly (no note on every
// run) and BlueGreen's scale-down delay.
func TestCanaryStrategy(t *testing.T) {
	md := benchCanary(t)
	spec := &md.Spec
	if !spec.Canary() || !spec.BlueGreen() || spec.Rollout.BlueGreen != nil {
		t.Fatalf("want strategy Canary (BlueGreen() true too) and no blueGreen settings: %+v", spec.Rollout)
	}
	if d := spec.ScaleDownDelay(); d != 2*time.Minute {
		t.Errorf("scaleDownDelay %s, want BlueGreen's 2m", d)
	}
	if a := spec.CanaryAnalysis(); a == nil || a.Probe == nil || a.Probe.Requests < 1 {
		t.Errorf("want every step analysed by the operator's requests: %+v", a)
	}
	steps := spec.CanarySteps()
	if len(steps) < 2 {
		t.Fatalf("want at least two steps: %+v", steps)
	}
	var total time.Duration
	for i, st := range steps {
		total += st.StepPause()
		replicas := rollout.CanaryReplicas(v1alpha1.DefaultMinReplicas, st.Weight)
		if w := rollout.CanaryWeight(v1alpha1.DefaultMinReplicas, replicas); w != st.Weight {
			t.Errorf("step %d: weight %d%% gives %d%% with %d pods beside %d", i+1, st.Weight, w, replicas, v1alpha1.DefaultMinReplicas)
		}
	}
	if total == 0 || total > 30*time.Second {
		t.Errorf("the pauses add up to %s: want a short run that still holds traffic", total)
	}
}

// named gives pods the ModelDeployment's name label, as the operator's
// pods have it: the Service selects it.
func named(pods ...*corev1.Pod) []*corev1.Pod {
	for _, p := range pods {
		p.Labels[v1alpha1.LabelName] = "m"
	}
	return pods
}

func bothSets() *corev1.Service {
	s := service("")
	delete(s.Spec.Selector, v1alpha1.LabelRole)
	return s
}

func canaryStatus(version string, step, weight, replicas int32, reached bool) *v1alpha1.CanaryStatus {
	cs := &v1alpha1.CanaryStatus{ModelVersionRef: v1alpha1.ModelVersionRef{Version: version}, Step: step, Weight: weight, Replicas: replicas}
	if reached {
		cs.Reached = &metav1.Time{Time: time.Now()}
	}
	return cs
}

// TestCanaryPromotionMarks: a Canary promotion passes BlueGreen's
// candidate marks, then each step (started, Ready), the canary takes
// traffic only when the Service selects both sets and a canary pod is
// Ready, and the promotion ends in BlueGreen's switch: replaced only when
// the Service selects the canary's slot alone.
func TestCanaryPromotionMarks(t *testing.T) {
	steps := benchCanary(t).Spec.CanarySteps()
	o := &observer{name: "m", deps: map[string]*appsv1.Deployment{}, pods: map[string]*corev1.Pod{}, at: map[string]time.Time{}}
	blue, bluePods := slotSet("blue", "1")
	green, greenPods := slotSet("green", "2")
	named(append(bluePods, greenPods...)...)
	md := blueGreenMD(v1alpha1.SlotBlue, "1", "1")
	md.Spec.Rollout.Strategy = v1alpha1.StrategyCanary
	for _, obj := range []any{md, service("blue"), blue} {
		o.changed(obj, false)
	}
	for _, p := range bluePods {
		o.changed(p, false)
	}
	seen := map[int]v1alpha1.CanaryStatus{}
	kind := canaryPromotionKind(steps)
	o.expect(canaryPromotionProbes("2", "1", steps, seen))
	if len(o.at) != 0 {
		t.Fatalf("marked before anything happened: %v", o.at)
	}
	started, reached := canaryStepMarks(steps)
	marked := func(names ...string) {
		t.Helper()
		for _, m := range names {
			if _, ok := o.at[m]; !ok {
				t.Errorf("%q not marked", m)
			}
		}
	}
	notMarked := func(names ...string) {
		t.Helper()
		for _, m := range names {
			if _, ok := o.at[m]; ok {
				t.Errorf("%q marked too soon", m)
			}
		}
	}
	setStatus := func(f func(*v1alpha1.ModelDeployment)) {
		md = md.DeepCopy()
		f(md)
		o.changed(md, false)
	}

	// The canary set: the first step's one pod, verified unexposed.
	setStatus(func(md *v1alpha1.ModelDeployment) { md.Status.Target = &v1alpha1.ModelVersionRef{Version: "2"} })
	one := green.DeepCopy()
	one.Spec.Replicas = ptr.To(int32(1))
	one.Status = appsv1.DeploymentStatus{ObservedGeneration: 2, Replicas: 1, UpdatedReplicas: 1, ReadyReplicas: 1, AvailableReplicas: 1}
	o.changed(one, false)
	o.changed(greenPods[0], false)
	marked(markResolved, markImage, markCandidate)
	notMarked(started[0], markCanaryTraffic)

	// Step 1: status first (Ready at once: its pod was verified), the
	// Service in the same pass.
	setStatus(func(md *v1alpha1.ModelDeployment) { md.Status.Canary = canaryStatus("2", 0, 25, 1, true) })
	marked(started[0], reached[0])
	notMarked(markCanaryTraffic)
	notReady := greenPods[0].DeepCopy()
	notReady.Status.Conditions[0].Status = corev1.ConditionFalse
	o.changed(notReady, false)
	o.changed(bothSets(), false)
	notMarked(markCanaryTraffic) // no Ready canary pod behind the Service
	o.changed(greenPods[0], false)
	marked(markCanaryTraffic)

	// Step 2: the set grows to three pods; Ready when they all are.
	setStatus(func(md *v1alpha1.ModelDeployment) { md.Status.Canary = canaryStatus("2", 1, 50, 3, false) })
	marked(started[1])
	notMarked(reached[1])
	o.changed(green, false)
	o.changed(greenPods[1], false)
	o.changed(greenPods[2], false)
	setStatus(func(md *v1alpha1.ModelDeployment) { md.Status.Canary.Reached = &metav1.Time{Time: time.Now()} })
	marked(reached[1])
	// The growth to production's size: nothing to start.
	setStatus(func(md *v1alpha1.ModelDeployment) { md.Status.Canary = canaryStatus("2", 2, 50, 3, true) })
	marked(started[2], reached[2])
	notMarked(markPromoted, markReplaced)

	// The switch: status first, the Service after.
	setStatus(func(md *v1alpha1.ModelDeployment) {
		md.Status.Canary, md.Status.ActiveSlot = nil, v1alpha1.SlotGreen
		md.Status.Promoting = &v1alpha1.ServingVersionStatus{ModelVersionRef: v1alpha1.ModelVersionRef{Version: "2"}}
	})
	marked(markPromoted)
	notMarked(markReplaced) // the Service still selects both sets
	o.changed(service("green"), false)
	marked(markReplaced)
	setStatus(func(md *v1alpha1.ModelDeployment) {
		md.Status.Promoting, md.Status.Serving = nil, &v1alpha1.ServingVersionStatus{ModelVersionRef: v1alpha1.ModelVersionRef{Version: "2"}}
	})
	marked(markReady, markOldKept)

	got := o.marks()
	for _, m := range kind.marks {
		if _, ok := got[m]; !ok {
			t.Errorf("the table's mark %q not seen in a whole promotion", m)
		}
	}
	tl := timeline{start: time.Now().Add(-time.Minute), at: got}
	if notes := canaryNotes(steps, seen, tl); len(notes) != 0 {
		t.Errorf("notes on a promotion that went as the spec says: %v", notes)
	}
	if seen[1].Weight != 50 || seen[1].Replicas != 3 {
		t.Errorf("step 2 recorded as %+v", seen[1])
	}
	// A failed request during step 2 (marks a second apart, in the
	// table's order) is put after its start.
	spaced := timeline{start: tl.start, at: map[string]time.Time{}}
	for i, m := range kind.marks {
		spaced.at[m] = tl.start.Add(time.Duration(i+1) * time.Second)
	}
	if m := lastMarkBefore(spaced, spaced.at[started[1]].Add(time.Millisecond)); short(kind.label(m)) != "canary step 2 of 2 started" {
		t.Errorf("a request failing during step 2: after %q", m)
	}
}

// TestCanaryNotes: a run where the canary never took traffic, or a step
// whose share was not the spec's weight, is noted.
func TestCanaryNotes(t *testing.T) {
	steps := []v1alpha1.CanaryStep{{Weight: 20}, {Weight: 70}}
	seen := map[int]v1alpha1.CanaryStatus{0: *canaryStatus("2", 0, 25, 1, true), 1: *canaryStatus("2", 1, 50, 3, true)}
	notes := canaryNotes(steps, seen, timeline{at: map[string]time.Time{}})
	want := []string{"never seen taking traffic", "step 1 of 2: 1 canary pods, 25% of the Service's pods (the spec's weight is 20%)",
		"step 2 of 2: 3 canary pods, 50% of the Service's pods (the spec's weight is 70%)"}
	if len(notes) != len(want) {
		t.Fatalf("notes %q, want %d", notes, len(want))
	}
	for i, w := range want {
		if !strings.Contains(notes[i], w) {
			t.Errorf("note %q, want it to say %q", notes[i], w)
		}
	}
}

// TestCanaryHeld: a dying version held before exposure is held as
// BlueGreen's; one whose canary took traffic first is held too (not a
// wait until the timeout), and production is marked disturbed while the
// Service selected both sets.
func TestCanaryHeld(t *testing.T) {
	md := blueGreenMD(v1alpha1.SlotGreen, "2", "3")
	md.Spec.Rollout.Strategy = v1alpha1.StrategyCanary
	for msg, c := range map[string]struct {
		reason v1alpha1.Reason
		want   bool
	}{
		"candidate of version 3 failed: pod m-blue-x: restarted":                               {v1alpha1.ReasonCandidateFailed, true},
		"canary of version 3, step 1 of 2: pod m-blue-x: restarted; the Service is back":       {v1alpha1.ReasonCandidateFailed, true},
		"canary of version 3, step 2 of 2: the analysis failed: probe: 0 of 5 requests":        {v1alpha1.ReasonAnalysisFailed, true},
		"canary of version 3, step 1 of 2: its pods were not all Ready after 10m0s":            {v1alpha1.ReasonCanaryNotReady, true},
		"canary of version 3, step 1 of 2: holding for 4s more":                                {v1alpha1.ReasonCanaryStep, false},
		"canary of version 31, step 1 of 2: the analysis failed":                               {v1alpha1.ReasonAnalysisFailed, false},
		"candidate of version 3 is Ready; sending the smoke test (not a failure of version 3)": {v1alpha1.ReasonCandidateStarting, false},
	} {
		m := md.DeepCopy()
		m.Status.Conditions = append(m.Status.Conditions, metav1.Condition{Type: v1alpha1.ConditionCandidateVerified,
			Status: metav1.ConditionFalse, Reason: string(c.reason), Message: msg})
		if got := heldOn(m, "3"); got != c.want {
			t.Errorf("%s %q: heldOn = %v, want %v", c.reason, msg, got, c.want)
		}
	}

	o := &observer{name: "m", deps: map[string]*appsv1.Deployment{}, pods: map[string]*corev1.Pod{}, at: map[string]time.Time{}}
	green, greenPods := slotSet("green", "2")
	for _, obj := range []any{blueGreenMD(v1alpha1.SlotGreen, "2", "2"), service("green"), green} {
		o.changed(obj, false)
	}
	for _, p := range named(greenPods...) {
		o.changed(p, false)
	}
	var touched string
	o.expect(append(heldProbes("3", "2", "green", &touched), canaryTrafficProbe("3")))
	o.changed(md, false)
	o.changed(named(pod("blue3a", "blue", "3", true, corev1.PodRunning, false))[0], false)
	if _, ok := o.at[markTouched]; ok {
		t.Errorf("production disturbed by an unexposed canary pod: %s", touched)
	}
	o.changed(bothSets(), false)
	if _, ok := o.at[markCanaryTraffic]; !ok {
		t.Error("the dying version's canary took traffic: not marked")
	}
	if _, ok := o.at[markTouched]; !ok || !strings.Contains(touched, "no role: a canary takes traffic") {
		t.Errorf("the Service selecting both sets: touched %v, %q", ok, touched)
	}
}
