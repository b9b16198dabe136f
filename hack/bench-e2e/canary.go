package main

import (
	"fmt"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"

	v1alpha1 "github.com/mlflow-operator/mlflow-operator/api/v1alpha1"
)

// Canary is measured as BlueGreen is (its canary set is the slot beside
// production, verified unexposed; its promotion ends in the same switch of
// the Service; going back within scaleDownDelay is the same switch back;
// a dying version is held before it takes traffic), with its steps in
// between: status.canary at each step and its pods Ready, and the moment
// the Service first selects both sets while a canary pod is Ready, when
// the client's requests through the ClusterIP start reaching the canary.
// The client counts every request through the Service, whichever set
// answered it, so a canary pod failing them is counted; a failure's row
// says which step it fell in.

// markCanaryTraffic: the Service selects both sets (no role in its
// selector, status.canary set) and selects a Ready canary pod of the
// version.
const markCanaryTraffic = "Service selects both sets: the canary takes traffic"

// canaryStepMarks are the marks of the canary's steps, one pair per
// weighted step and one for the growth to production's size before the
// switch: the step started (status.canary.step at it) and its pods Ready
// (status.canary.reached: its pause counts from then).
func canaryStepMarks(steps []v1alpha1.CanaryStep) (started, reached []string) {
	n := len(steps)
	for i, st := range steps {
		started = append(started, fmt.Sprintf("canary step %d of %d started (weight %d%%: status.canary.step)", i+1, n, st.Weight))
		reached = append(reached, fmt.Sprintf("canary step %d of %d Ready (status.canary.reached: its pause starts)", i+1, n))
	}
	started = append(started, "canary set growing to production's size (status.canary past the last step)")
	reached = append(reached, "canary set at production's size (status.canary.reached)")
	return started, reached
}

// canaryPromotionKind is the promotion of a Canary ModelDeployment whose
// spec has steps.
func canaryPromotionKind(steps []v1alpha1.CanaryStep) *runKind {
	started, reached := canaryStepMarks(steps)
	marks := []string{markResolved, markImage, markCandidate}
	for i := range started {
		marks = append(marks, started[i], reached[i])
		if i == 0 {
			marks = append(marks, markCanaryTraffic)
		}
	}
	var pauses []string
	for _, st := range steps {
		pauses = append(pauses, st.StepPause().String())
	}
	return &runKind{name: "promotion",
		title: fmt.Sprintf("promotion by webhook in %d canary steps (pauses %s), step by step (+ time since the previous step)", len(steps), strings.Join(pauses, ", ")),
		marks: append(marks, markPromoted, markReplaced, markReady, markOldKept),
		labels: map[string]string{
			markImage:     "image built and pushed, canary set applied (the first step's pods, unexposed)",
			markCandidate: "first canary pod Ready (smoke-tested unexposed)",
			markPromoted:  "last step passed, switch decided (status.promoting, status.activeSlot)",
			markReplaced:  "Service switched to the canary's slot alone: it runs the new version, every pod Ready",
		},
		totals: []total{
			{"= alias moved -> canary takes traffic", "", markCanaryTraffic},
			{"= canary takes traffic -> Service switched (the steps)", markCanaryTraffic, markReplaced},
			{"= alias moved -> Ready", "", markReady},
		},
		end: markReady}
}

// canaryHeldKind is BlueGreen's held version (bluegreen.go) in Canary's
// words: the dying version's canary set fails its verification, before
// the Service selects it.
var canaryHeldKind = &runKind{name: "dying version held",
	title: "a version whose pods die in the canary set: held before it takes traffic (CandidateFailed), production untouched",
	marks: heldKind.marks,
	labels: map[string]string{
		markImage:       "image built and pushed, canary set applied (unexposed)",
		markCrashed:     "a canary pod crashed",
		markHeld:        "canary set failed, version held (CandidateFailed)",
		markPreviewGone: "the failed canary set's pods gone",
	},
	totals: []total{
		{"= alias moved -> held", "", markHeld},
		{"= alias moved -> canary set gone", "", markPreviewGone},
	},
	end: markHeld}

// canaryOf is status.canary when it is about version v.
func canaryOf(md *v1alpha1.ModelDeployment, v string) *v1alpha1.CanaryStatus {
	if md == nil || md.Status.Canary == nil || md.Status.Canary.Version != v {
		return nil
	}
	return md.Status.Canary
}

// canaryPromotionProbes are the marks of promoting version v over version
// old in steps: BlueGreen's (promotionProbes), with the canary's steps
// where BlueGreen has its preview set complete. seen gets status.canary as
// each step was first seen, by step.
func canaryPromotionProbes(v, old string, steps []v1alpha1.CanaryStep, seen map[int]v1alpha1.CanaryStatus) []probe {
	c := candidateProbes(v)
	out := c[:3:3]
	started, reached := canaryStepMarks(steps)
	for i := range started {
		out = append(out,
			probe{name: started[i], holds: func(s view) bool {
				cs := canaryOf(s.md, v)
				if cs == nil || int(cs.Step) != i {
					return false
				}
				seen[i] = *cs.DeepCopy()
				return true
			}},
			probe{name: reached[i], holds: func(s view) bool {
				cs := canaryOf(s.md, v)
				return cs != nil && int(cs.Step) == i && cs.Reached != nil
			}})
		if i == 0 {
			out = append(out, canaryTrafficProbe(v))
		}
	}
	return append(out, c[3],
		probe{name: markReplaced, holds: func(s view) bool { return switchedTo(s, v) }},
		probe{name: markReady, holds: func(s view) bool { return readyOn(s.md, v) }},
		probe{name: markOldKept, after: markReady, holds: func(s view) bool { return keptSet(s, old) }},
	)
}

// canaryTrafficProbe marks the Service selecting both sets with a Ready
// pod of version v beside production among the pods it selects.
func canaryTrafficProbe(v string) probe {
	return probe{name: markCanaryTraffic, holds: func(s view) bool { return canaryTakesTraffic(s, v) }}
}

// canaryTakesTraffic tells whether the Service selects every pod of the
// ModelDeployment (no role: status.canary is set) and, among them, a
// Ready pod of version v beside production.
func canaryTakesTraffic(s view, v string) bool {
	if s.md == nil || s.svc == nil || s.svc.DeletionTimestamp != nil {
		return false
	}
	if _, ok := s.svc.Spec.Selector[v1alpha1.LabelRole]; ok {
		return false
	}
	active := activeRole(s.md)
	for _, p := range s.pods {
		if beside(p.Labels[v1alpha1.LabelRole], active) && p.Labels[v1alpha1.LabelModelVersion] == v &&
			podLive(p) && podReady(p) && selects(s.svc, p) {
			return true
		}
	}
	return false
}

// selects tells whether svc's selector matches p's labels.
func selects(svc *corev1.Service, p *corev1.Pod) bool {
	if len(svc.Spec.Selector) == 0 {
		return false
	}
	for k, v := range svc.Spec.Selector {
		if p.Labels[k] != v {
			return false
		}
	}
	return true
}

// serviceText is what the Service selects, for a person.
func serviceText(svc *corev1.Service) string {
	if svc == nil {
		return "no Service"
	}
	if role, ok := svc.Spec.Selector[v1alpha1.LabelRole]; ok {
		return fmt.Sprintf("the Service selects role %q", role)
	}
	return "the Service selects every pod of the ModelDeployment (no role: a canary takes traffic)"
}

// canaryNotes are what a Canary promotion found amiss besides its times:
// the canary never taking traffic, and a step whose share of the
// Service's pods was not its spec's weight (a weight above 50, or one
// that production's replicas cannot give exactly).
func canaryNotes(steps []v1alpha1.CanaryStep, seen map[int]v1alpha1.CanaryStatus, t timeline) []string {
	var out []string
	if _, ok := t.at[markCanaryTraffic]; !ok {
		out = append(out, "the canary was never seen taking traffic: the Service never selected both sets with a canary pod Ready")
	}
	for i, st := range steps {
		cs, ok := seen[i]
		if ok && cs.Weight != st.Weight {
			out = append(out, fmt.Sprintf("canary step %d of %d: %d canary pods, %d%% of the Service's pods (the spec's weight is %d%%)",
				i+1, len(steps), cs.Replicas, cs.Weight, st.Weight))
		}
	}
	return out
}

// canarySummary is a line for the summary about a Canary strategy's
// promotions ("" for another strategy's): when its canary took traffic,
// and how long its steps took.
func canarySummary(r *result) string {
	k := r.promotions.kind
	if k == nil || len(r.promotions.runs) == 0 || !slices.Contains(k.marks, markCanaryTraffic) {
		return ""
	}
	p := timelines(r.promotions.runs)
	first := medianOf(p, func(t timeline) (time.Duration, bool) { return t.between("", markCanaryTraffic) })
	steps := medianOf(p, func(t timeline) (time.Duration, bool) { return t.between(markCanaryTraffic, markReplaced) })
	return fmt.Sprintf("%s, promotions: the canary took traffic %s after the alias moved, and the Service switched to it alone %s later (medians); "+
		"its alias -> Ready holds every step's pause and analysis.", r.name, first, steps)
}
