package main

import (
	"fmt"
	"slices"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	v1alpha1 "github.com/mlflow-operator/mlflow-operator/api/v1alpha1"
	"github.com/mlflow-operator/mlflow-operator/internal/resources"
)

// view is what the watches show of one namespace at a moment: its
// ModelDeployment, its Service, Deployments and pods.
type view struct {
	md   *v1alpha1.ModelDeployment
	svc  *corev1.Service
	deps []*appsv1.Deployment
	pods []*corev1.Pod
}

// probe is a mark of a run: its name and when the view first shows it.
// A probe with after waits for that probe to be seen first.
type probe struct {
	name  string
	after string
	holds func(view) bool
}

// The marks, in the order a promotion or a rollback passes them. The
// names are what the tables print, unless a scenario labels them its own
// way (BlueGreen's, where the same step is a preview set or a switch).
const (
	markResolved   = "alias change seen, version resolved (status.target)"
	markImage      = "image built and pushed, candidate applied"
	markCandidate  = "candidate pod Ready"
	markPromoted   = "smoke test passed, promoted (status.promoting)"
	markReplaced   = "production pods replaced, every pod Ready"
	markReady      = "Ready reported on the new version"
	markOldGone    = "old pods terminated (after Ready)"
	markRolledBack = "production pods failing, rollback decided (RolledBack)"
	markRestored   = "production back on the last good version, every pod Ready"

	// BlueGreen's own steps (and Canary's, whose canary set is
	// BlueGreen's preview: canary.go has its steps).
	markPreviewReady = "preview set complete, every pod Ready (unexposed)"
	markOldKept      = "old set still running at Ready (kept for scaleDownDelay)"
	markCrashed      = "a preview pod crashed"
	markHeld         = "preview failed, version held (CandidateFailed)"
	markPreviewGone  = "the failed preview's pods gone"
	// markTouched is not a step: production changed while a failing
	// version was held, which must never be seen.
	markTouched = "production disturbed"
)

// RollingUpdate's marks; BlueGreen's are in bluegreen.go.
var (
	promotionMarks = []string{markResolved, markImage, markCandidate, markPromoted, markReplaced, markReady, markOldGone}
	rollbackMarks  = []string{markResolved, markImage, markCandidate, markPromoted, markRolledBack, markRestored}
)

// activeRole is the role label of the production pods, those the Service
// selects: the role of status.activeSlot ("production" for the Deployment
// named like the ModelDeployment, where RollingUpdate runs; "blue" or
// "green" for BlueGreen's sets).
func activeRole(md *v1alpha1.ModelDeployment) string {
	if md == nil {
		return v1alpha1.RoleProduction
	}
	return resources.SlotRole(md.Status.ActiveSlot)
}

// beside tells whether pods of role run beside production, unexposed:
// RollingUpdate's candidate, or BlueGreen's other set (the preview of a
// new version, or the old version's set kept after a switch).
func beside(role, active string) bool { return role != "" && role != active }

// candidateProbes are the marks a new version v passes up to its promotion.
// Its candidate is whatever runs v beside production: RollingUpdate's
// one-replica candidate, BlueGreen's preview set.
func candidateProbes(v string) []probe {
	return []probe{
		{name: markResolved, holds: func(s view) bool { return s.md != nil && targetIs(s.md, v) }},
		// One reconcile pass sees the image pushed, applies the candidate
		// and then writes the status: the candidate Deployment is often
		// seen first.
		{name: markImage, holds: func(s view) bool {
			if s.md != nil && targetIs(s.md, v) && s.md.Status.Target.Image != "" &&
				meta.IsStatusConditionTrue(s.md.Status.Conditions, v1alpha1.ConditionImageReady) {
				return true
			}
			active := activeRole(s.md)
			for _, d := range s.deps {
				l := d.Spec.Template.Labels
				if beside(l[v1alpha1.LabelRole], active) && l[v1alpha1.LabelModelVersion] == v {
					return true
				}
			}
			return false
		}},
		{name: markCandidate, holds: func(s view) bool {
			active := activeRole(s.md)
			for _, p := range s.pods {
				if beside(p.Labels[v1alpha1.LabelRole], active) && p.Labels[v1alpha1.LabelModelVersion] == v && podReady(p) {
					return true
				}
			}
			return false
		}},
		// The promotion is written (status.promoting, CandidateVerified)
		// before production changes.
		{name: markPromoted, holds: func(s view) bool {
			if s.md == nil {
				return false
			}
			st := s.md.Status
			return (st.Promoting != nil && st.Promoting.Version == v) || (st.Serving != nil && st.Serving.Version == v)
		}},
	}
}

// promotionProbes are the marks of promoting version v over version old.
// With BlueGreen the preview set is complete before the smoke test;
// production is replaced when the Service selects it; and the old set is
// kept for the scale-down delay, so what is checked at Ready is that it
// still runs, where RollingUpdate waits for its pods to end.
func promotionProbes(v, old string, blueGreen bool) []probe {
	if !blueGreen {
		return append(candidateProbes(v),
			probe{name: markReplaced, holds: func(s view) bool { return productionOn(s, v) }},
			probe{name: markReady, holds: func(s view) bool { return readyOn(s.md, v) }},
			probe{name: markOldGone, after: markReady, holds: func(s view) bool { return !anyPodOf(s, old) }},
		)
	}
	c := candidateProbes(v)
	return append(c[:3:3],
		probe{name: markPreviewReady, after: markCandidate, holds: func(s view) bool { return setOfVersion(s, v) }},
		c[3],
		probe{name: markReplaced, holds: func(s view) bool { return switchedTo(s, v) }},
		probe{name: markReady, holds: func(s view) bool { return readyOn(s.md, v) }},
		probe{name: markOldKept, after: markReady, holds: func(s view) bool { return keptSet(s, old) }},
	)
}

// rollbackProbes are the marks of promoting version bad, whose production
// pods fail, and of the rollback to good.
func rollbackProbes(bad, good string) []probe {
	return append(candidateProbes(bad),
		probe{name: markRolledBack, holds: func(s view) bool {
			if s.md == nil {
				return false
			}
			c := meta.FindStatusCondition(s.md.Status.Conditions, v1alpha1.ConditionRolledBack)
			return c != nil && c.Status == metav1.ConditionTrue && strings.HasPrefix(c.Message, "rolled back from version "+bad+" ")
		}},
		// The pods of the good version served all along: what matters is
		// when production is back to them alone.
		probe{name: markRestored, after: markRolledBack, holds: func(s view) bool { return productionOn(s, good) }},
	)
}

// switchBackProbes are the marks of BlueGreen going back to version old,
// whose set is kept beside production: the alias moved back, the
// promotion decided (as PreviouslyServed: no pod to start, no smoke test)
// and the Service selecting the old set again.
func switchBackProbes(old string) []probe {
	c := candidateProbes(old)
	return []probe{c[0], c[3],
		probe{name: markRestored, after: markResolved, holds: func(s view) bool { return switchedTo(s, old) }},
		probe{name: markReady, holds: func(s view) bool { return readyOn(s.md, old) }},
	}
}

// heldProbes are the marks of BlueGreen holding version bad, whose pods
// die in its preview set, while production stays on good in the pods of
// role: its preview applied, a pod of it crashed, the version failed
// (CandidateFailed) and its pods gone. markTouched is seen if production
// ever is not all of good's pods Ready behind the Service meanwhile; it
// writes what production looked like then to touched.
func heldProbes(bad, good, role string, touched *string) []probe {
	c := candidateProbes(bad)
	return []probe{c[0], c[1],
		probe{name: markCrashed, holds: func(s view) bool {
			active := activeRole(s.md)
			for _, p := range s.pods {
				if beside(p.Labels[v1alpha1.LabelRole], active) && p.Labels[v1alpha1.LabelModelVersion] == bad && podCrashed(p) {
					return true
				}
			}
			return false
		}},
		probe{name: markHeld, holds: func(s view) bool { return heldOn(s.md, bad) }},
		probe{name: markPreviewGone, after: markHeld, holds: func(s view) bool { return !anyPodOf(s, bad) }},
		probe{name: markTouched, holds: func(s view) bool {
			if s.md != nil && activeRole(s.md) == role && switchedTo(s, good) {
				return false
			}
			// What production looked like then, for the report: the
			// mark alone would not say what changed.
			if *touched == "" {
				*touched = productionText(s)
			}
			return true
		}},
	}
}

// heldOn tells whether version v failed verification and is held: the
// target, with CandidateVerified False for CandidateFailed about it; with
// Canary, also a canary of v that failed after it took traffic (a pod
// failing, a step not Ready, its analysis), which the held scenario notes.
func heldOn(md *v1alpha1.ModelDeployment, v string) bool {
	if md == nil || !targetIs(md, v) {
		return false
	}
	c := meta.FindStatusCondition(md.Status.Conditions, v1alpha1.ConditionCandidateVerified)
	if c == nil || c.Status != metav1.ConditionFalse {
		return false
	}
	switch v1alpha1.Reason(c.Reason) {
	case v1alpha1.ReasonCandidateFailed:
		return strings.HasPrefix(c.Message, "candidate of version "+v+" failed") || strings.HasPrefix(c.Message, "canary of version "+v+", ")
	case v1alpha1.ReasonCanaryNotReady, v1alpha1.ReasonAnalysisFailed:
		return strings.HasPrefix(c.Message, "canary of version "+v+", ")
	}
	return false
}

// promotedTo tells whether version v is being promoted or serves.
func promotedTo(md *v1alpha1.ModelDeployment, v string) bool {
	return md != nil && ((md.Status.Promoting != nil && md.Status.Promoting.Version == v) ||
		(md.Status.Serving != nil && md.Status.Serving.Version == v))
}

// productionText is production as the view shows it: the active role,
// the Service's selector, the Deployments and live pods of that role.
func productionText(s view) string {
	role := activeRole(s.md)
	parts := []string{fmt.Sprintf("active role %q, %s", role, serviceText(s.svc))}
	for _, d := range s.deps {
		if d.Spec.Template.Labels[v1alpha1.LabelRole] == role {
			parts = append(parts, fmt.Sprintf("Deployment %s version %s: replicas %d updated %d ready %d available %d (generation %d observed %d)",
				d.Name, d.Spec.Template.Labels[v1alpha1.LabelModelVersion], d.Status.Replicas, d.Status.UpdatedReplicas,
				d.Status.ReadyReplicas, d.Status.AvailableReplicas, d.Generation, d.Status.ObservedGeneration))
		}
	}
	for _, p := range s.pods {
		if p.Labels[v1alpha1.LabelRole] == role && podLive(p) {
			parts = append(parts, fmt.Sprintf("pod %s version %s ready %v", p.Name, p.Labels[v1alpha1.LabelModelVersion], podReady(p)))
		}
	}
	return strings.Join(parts, "; ")
}

func targetIs(md *v1alpha1.ModelDeployment, v string) bool {
	return md.Status.Target != nil && md.Status.Target.Version == v
}

// readyOn: Ready, serving and following version v.
func readyOn(md *v1alpha1.ModelDeployment, v string) bool {
	return md != nil && meta.IsStatusConditionTrue(md.Status.Conditions, v1alpha1.ConditionReady) &&
		md.Status.Serving != nil && md.Status.Serving.Version == v && targetIs(md, v)
}

// productionOn tells whether production (the pods of the active slot's
// role) runs version v alone and completely.
func productionOn(s view, v string) bool { return setOn(s, activeRole(s.md), v) }

// setOn tells whether the pods of role run version v alone and
// completely: every Deployment of role that asks for replicas has v's
// template and finished rolling it out (observed, all replicas updated,
// ready and available), and every live pod of role (not terminating, not
// failed) is of v and Ready, as many as the Deployments ask for.
func setOn(s view, role, v string) bool {
	want := int32(0)
	for _, d := range s.deps {
		if d.Spec.Template.Labels[v1alpha1.LabelRole] != role {
			continue
		}
		n := ptr.Deref(d.Spec.Replicas, 1)
		if n == 0 {
			continue
		}
		st := d.Status
		if d.Spec.Template.Labels[v1alpha1.LabelModelVersion] != v || st.ObservedGeneration < d.Generation ||
			st.UpdatedReplicas != n || st.Replicas != n || st.ReadyReplicas != n || st.AvailableReplicas != n {
			return false
		}
		want += n
	}
	if want == 0 {
		return false
	}
	live := int32(0)
	for _, p := range s.pods {
		if p.Labels[v1alpha1.LabelRole] != role || !podLive(p) {
			continue
		}
		if p.Labels[v1alpha1.LabelModelVersion] != v || !podReady(p) {
			return false
		}
		live++
	}
	return live >= want
}

// setOfVersion tells whether a BlueGreen set (any slot's role, not a
// candidate's) runs version v completely, exposed or not: the preview
// complete before its switch stays so after it.
func setOfVersion(s view, v string) bool {
	for _, d := range s.deps {
		l := d.Spec.Template.Labels
		if r := l[v1alpha1.LabelRole]; r != v1alpha1.RoleCandidate && l[v1alpha1.LabelModelVersion] == v && setOn(s, r, v) {
			return true
		}
	}
	return false
}

// keptSet tells whether a set beside production runs version v
// completely: BlueGreen's old set, kept after a switch.
func keptSet(s view, v string) bool { return keptRole(s, v) != "" }

// keptRole is the role of the set beside production that runs version v
// completely ("" when none does).
func keptRole(s view, v string) string {
	active := activeRole(s.md)
	for _, d := range s.deps {
		l := d.Spec.Template.Labels
		if r := l[v1alpha1.LabelRole]; beside(r, active) && r != v1alpha1.RoleCandidate && l[v1alpha1.LabelModelVersion] == v && setOn(s, r, v) {
			return r
		}
	}
	return ""
}

// switchedTo tells whether the Service selects the production pods and
// they run version v completely: a BlueGreen switch is done when both the
// status and the Service say so.
func switchedTo(s view, v string) bool {
	return serviceSelects(s, activeRole(s.md)) && productionOn(s, v)
}

// serviceSelects tells whether the ModelDeployment's Service selects the
// pods of role.
func serviceSelects(s view, role string) bool {
	return s.svc != nil && s.svc.DeletionTimestamp == nil && s.svc.Spec.Selector[v1alpha1.LabelRole] == role
}

// livePods are the names of the live pods of role and version v, sorted:
// a set that a switch must not change.
func livePods(s view, role, v string) []string {
	var out []string
	for _, p := range s.pods {
		if p.Labels[v1alpha1.LabelRole] == role && p.Labels[v1alpha1.LabelModelVersion] == v && podLive(p) {
			out = append(out, p.Name)
		}
	}
	slices.Sort(out)
	return out
}

// anyPodOf tells whether a pod of version v is left (terminating too;
// failed pods, which serve nothing and stay until collected, do not count).
func anyPodOf(s view, v string) bool {
	for _, p := range s.pods {
		if p.Labels[v1alpha1.LabelModelVersion] == v && p.Status.Phase != corev1.PodFailed && p.Status.Phase != corev1.PodSucceeded {
			return true
		}
	}
	return false
}

// podLive: not terminating, not failed or finished.
func podLive(p *corev1.Pod) bool {
	return p.DeletionTimestamp == nil && p.Status.Phase != corev1.PodFailed && p.Status.Phase != corev1.PodSucceeded
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// podCrashed: a container of p exited (it is restarting, or the pod
// failed).
func podCrashed(p *corev1.Pod) bool {
	if p.Status.Phase == corev1.PodFailed {
		return true
	}
	for _, cs := range p.Status.ContainerStatuses {
		if cs.RestartCount > 0 || cs.State.Terminated != nil || cs.LastTerminationState.Terminated != nil {
			return true
		}
	}
	return false
}
