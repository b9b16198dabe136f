package main

import (
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	v1alpha1 "github.com/mlflow-operator/mlflow-operator/api/v1alpha1"
)

// view is what the watches show of one namespace at a moment: its
// ModelDeployment, Deployments and pods.
type view struct {
	md   *v1alpha1.ModelDeployment
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
// names are what the tables print.
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
)

var (
	promotionMarks = []string{markResolved, markImage, markCandidate, markPromoted, markReplaced, markReady, markOldGone}
	rollbackMarks  = []string{markResolved, markImage, markCandidate, markPromoted, markRolledBack, markRestored}
)

// candidateProbes are the marks a new version v passes up to its promotion.
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
			for _, d := range s.deps {
				l := d.Spec.Template.Labels
				if l[v1alpha1.LabelRole] == v1alpha1.RoleCandidate && l[v1alpha1.LabelModelVersion] == v {
					return true
				}
			}
			return false
		}},
		{name: markCandidate, holds: func(s view) bool {
			for _, p := range s.pods {
				if p.Labels[v1alpha1.LabelRole] == v1alpha1.RoleCandidate && p.Labels[v1alpha1.LabelModelVersion] == v && podReady(p) {
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
func promotionProbes(v, old string) []probe {
	return append(candidateProbes(v),
		probe{name: markReplaced, holds: func(s view) bool { return productionOn(s, v) }},
		probe{name: markReady, holds: func(s view) bool { return readyOn(s.md, v) }},
		probe{name: markOldGone, after: markReady, holds: func(s view) bool { return !anyPodOf(s, old) }},
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

func targetIs(md *v1alpha1.ModelDeployment, v string) bool {
	return md.Status.Target != nil && md.Status.Target.Version == v
}

// readyOn: Ready, serving and following version v.
func readyOn(md *v1alpha1.ModelDeployment, v string) bool {
	return md != nil && meta.IsStatusConditionTrue(md.Status.Conditions, v1alpha1.ConditionReady) &&
		md.Status.Serving != nil && md.Status.Serving.Version == v && targetIs(md, v)
}

// productionOn tells whether production runs version v alone and
// completely: every production Deployment that asks for replicas has v's
// template and finished rolling it out (observed, all replicas updated,
// ready and available), and every live production pod (not terminating,
// not failed) is of v and Ready, as many as the Deployments ask for.
func productionOn(s view, v string) bool {
	want := int32(0)
	for _, d := range s.deps {
		if d.Spec.Template.Labels[v1alpha1.LabelRole] != v1alpha1.RoleProduction {
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
		if p.Labels[v1alpha1.LabelRole] != v1alpha1.RoleProduction || !podLive(p) {
			continue
		}
		if p.Labels[v1alpha1.LabelModelVersion] != v || !podReady(p) {
			return false
		}
		live++
	}
	return live >= want
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
