package controllers

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1alpha1 "github.com/mlflow-operator/mlflow-operator/api/v1alpha1"
	"github.com/mlflow-operator/mlflow-operator/internal/metrics"
	"github.com/mlflow-operator/mlflow-operator/internal/text"
)

// maxFailedVersions bounds status.failedVersions.
const maxFailedVersions = 20

// targetFailed tells whether the target version failed with the current
// spec and was not retried since. The retry annotation, set to a version,
// clears that version's failure once.
func (r *ModelDeploymentReconciler) targetFailed(s *scope) (bool, string) {
	md := s.md
	if retry := md.Annotations[v1alpha1.AnnotationRetry]; retry != "" && retry != md.Status.LastRetry {
		md.Status.LastRetry = retry
		kept := md.Status.FailedVersions[:0]
		for _, f := range md.Status.FailedVersions {
			if f.Version != retry {
				kept = append(kept, f)
			}
		}
		md.Status.FailedVersions = kept
		r.event(md, corev1.EventTypeNormal, v1alpha1.ReasonRetry, v1alpha1.ActionRetry, "retrying version "+retry+" as the annotation asks")
	}
	t := md.Status.Target
	if t == nil {
		return false, ""
	}
	for _, f := range md.Status.FailedVersions {
		if f.Version == t.Version && f.ObservedGeneration == md.Generation {
			return true, string(f.Reason) + ": " + f.Message
		}
	}
	return false, ""
}

// recordFailure adds the version to status.failedVersions and closes its
// history entry.
func (r *ModelDeploymentReconciler) recordFailure(s *scope, v v1alpha1.ModelVersionRef, reason v1alpha1.Reason, msg string, outcome v1alpha1.HistoryOutcome) {
	md := s.md
	entry := v1alpha1.FailedVersion{Version: v.Version, Image: v.Image, Reason: reason, Message: text.Shorten(msg, maxMessage),
		Time: metav1.NewTime(s.now), ObservedGeneration: md.Generation}
	out := []v1alpha1.FailedVersion{entry}
	for _, f := range md.Status.FailedVersions {
		if f.Version != v.Version && len(out) < maxFailedVersions {
			out = append(out, f)
		}
	}
	md.Status.FailedVersions = out
	if reason != v1alpha1.ReasonAborted {
		// A person's abort is no failure to alert on: its event says so.
		s.onCommit(func() { metrics.VersionHeld(string(reason)) })
	}
	r.endHistory(s, v.Image, outcome, reason)
}

// startHistory opens a history entry for v, unless one is open for it.
func (r *ModelDeploymentReconciler) startHistory(s *scope, v v1alpha1.ModelVersionRef) {
	md := s.md
	if len(md.Status.History) > 0 && md.Status.History[0].Image == v.Image && md.Status.History[0].Outcome == v1alpha1.OutcomeInProgress {
		return
	}
	h := append([]v1alpha1.HistoryEntry{{Version: v.Version, Image: v.Image, Start: metav1.NewTime(s.now), Outcome: v1alpha1.OutcomeInProgress}}, md.Status.History...)
	if limit := int(md.Spec.HistoryLimit()); len(h) > limit {
		h = h[:limit]
	}
	md.Status.History = h
}

// endHistory closes the open entry of image.
func (r *ModelDeploymentReconciler) endHistory(s *scope, image string, outcome v1alpha1.HistoryOutcome, reason v1alpha1.Reason) {
	for i := range s.md.Status.History {
		h := &s.md.Status.History[i]
		if h.Image == image && h.Outcome == v1alpha1.OutcomeInProgress {
			end := metav1.NewTime(s.now)
			h.End, h.Outcome, h.Reason = &end, outcome, reason
			s.rolloutEnded(outcome)
			return
		}
	}
}
