package controllers

import (
	"context"
	"fmt"
	"math/rand/v2"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1alpha1 "github.com/mlflow-operator/mlflow-operator/api/v1alpha1"
	"github.com/mlflow-operator/mlflow-operator/internal/rollout"
)

// resolve asks the registry which version the model reference means now and
// records it as status.target. A failure is reported in ModelResolved and the
// summary, but the reconcile goes on: the version already serving keeps
// being served and its objects kept as declared.
func (r *ModelDeploymentReconciler) resolve(ctx context.Context, s *scope) (bool, error) {
	md := s.md
	following := md.Spec.Model.Following()

	if r.Resolver == nil {
		s.requeue(jitter(md.Spec.PollInterval()))
		setCondition(md, v1alpha1.ConditionModelResolved, metav1.ConditionFalse, v1alpha1.ReasonResolverMissing,
			"this operator build has no model registry client")
		s.fail(rollout.Outcome{Stalled: true, Reason: v1alpha1.ReasonResolverMissing,
			Message: "this operator build has no model registry client"})
		return true, nil
	}

	v, err := r.Resolver.Resolve(ctx, md)
	answered := v.AnsweredAt
	if answered.IsZero() || answered.After(s.now) {
		answered = s.now
	}
	// When the registry was asked, for this object or another that shares
	// the answer.
	polled := metav1.NewTime(answered)
	md.Status.LastPolled = &polled
	s.requeue(NextPoll(answered, s.now, md.Spec.PollInterval(), rand.Float64()))
	if err != nil {
		reason, terminal := reasonOf(err, v1alpha1.ReasonMLflowError)
		msg := fmt.Sprintf("cannot resolve %s of model %q: %v", following, md.Spec.Model.Name, err)
		if changed := setCondition(md, v1alpha1.ConditionModelResolved, metav1.ConditionFalse, reason, msg); changed {
			r.event(md, corev1.EventTypeWarning, reason, "Resolve", msg)
		}
		s.log.Info("Model reference not resolved", "reason", reason, "error", err.Error())
		s.fail(rollout.Outcome{Stalled: terminal, Reason: reason, Message: msg})
		return true, nil
	}

	if md.Status.Target == nil || md.Status.Target.Version != v.Version {
		msg := fmt.Sprintf("%s of model %q is version %s", following, md.Spec.Model.Name, v.Version)
		r.event(md, corev1.EventTypeNormal, v1alpha1.ReasonResolved, "Resolve", msg)
		s.log.Info("Resolved new target version", "modelVersion", v.Version, "runID", v.RunID)
		md.Status.Target = &v1alpha1.ModelVersionRef{Version: v.Version, RunID: v.RunID, Source: v.Source}
	} else {
		md.Status.Target.RunID, md.Status.Target.Source = v.RunID, v.Source
	}
	setCondition(md, v1alpha1.ConditionModelResolved, metav1.ConditionTrue, v1alpha1.ReasonResolved,
		fmt.Sprintf("%s of model %q is version %s", following, md.Spec.Model.Name, v.Version))
	return true, nil
}

// setCondition sets a domain condition at the object's generation and tells
// whether its status or reason changed (a transition worth an event).
func setCondition(md *v1alpha1.ModelDeployment, t string, status metav1.ConditionStatus, reason, msg string) bool {
	old := meta.FindStatusCondition(md.Status.Conditions, t)
	changed := old == nil || old.Status != status || old.Reason != reason
	meta.SetStatusCondition(&md.Status.Conditions, metav1.Condition{
		Type: t, Status: status, Reason: reason, Message: msg, ObservedGeneration: md.Generation,
	})
	return changed
}

// event records an event when the reconciler has a recorder.
func (r *ModelDeploymentReconciler) event(md *v1alpha1.ModelDeployment, eventType, reason, action, note string) {
	if r.Recorder != nil {
		r.Recorder.Eventf(md, nil, eventType, reason, action, "%s", note)
	}
}
