package controllers

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1alpha1 "github.com/mlflow-operator/mlflow-operator/api/v1alpha1"
	"github.com/mlflow-operator/mlflow-operator/internal/resolver"
	"github.com/mlflow-operator/mlflow-operator/internal/status"
)

// resolveTimeout bounds the registry's answer: a slow or hostile MLflow
// server holds a reconcile worker no longer than this.
const resolveTimeout = 30 * time.Second

// reconcileVersion asks the model registry which version the model reference
// means now and records it as status.target. A failure is reported in
// ModelResolved and the summary, but the reconcile goes on: the version
// already serving keeps being served and its objects kept as declared.
func (r *ModelDeploymentReconciler) reconcileVersion(ctx context.Context, s *scope) (bool, error) {
	md := s.md
	following := md.Spec.Model.Following()

	if r.Resolver == nil {
		s.requeue(resolver.Jitter(md.Spec.PollInterval()))
		msg := "this operator build has no model registry client"
		setCondition(md, v1alpha1.ConditionModelResolved, metav1.ConditionFalse, v1alpha1.ReasonResolverMissing, msg)
		s.fail(status.Outcome{Stalled: true, Reason: v1alpha1.ReasonResolverMissing, Message: msg})
		return true, nil
	}

	rctx, cancel := context.WithTimeout(ctx, resolveTimeout)
	v, err := r.Resolver.Resolve(rctx, md)
	cancel()
	answered := v.AnsweredAt
	if answered.IsZero() || answered.After(s.now) {
		answered = s.now
	}
	// When the registry was asked, for this object or another that shares
	// the answer.
	polled := metav1.NewTime(answered)
	md.Status.LastPolled = &polled
	s.requeue(resolver.NextPoll(answered, s.now, md.Spec.PollInterval(), rand.Float64()))
	if err != nil {
		reason, terminal := reasonOf(err, v1alpha1.ReasonMLflowError)
		msg := fmt.Sprintf("cannot resolve %s of model %q: %v", following, md.Spec.Model.Name, err)
		if setCondition(md, v1alpha1.ConditionModelResolved, metav1.ConditionFalse, reason, msg) {
			r.event(md, corev1.EventTypeWarning, reason, v1alpha1.ActionResolve, msg)
		}
		s.log.Info("Model reference not resolved", "reason", reason, "error", err.Error())
		s.fail(status.Outcome{Stalled: terminal, Reason: reason, Message: msg})
		return true, nil
	}

	r.sawRegistryChange(s, v.Version, v.ChangedAt, answered)
	if md.Status.Target == nil || md.Status.Target.Version != v.Version {
		msg := fmt.Sprintf("%s of model %q is version %s", following, md.Spec.Model.Name, v.Version)
		r.event(md, corev1.EventTypeNormal, v1alpha1.ReasonResolved, v1alpha1.ActionResolve, msg)
		s.log.Info("Resolved new target version", "modelVersion", v.Version, "runID", v.RunID)
		md.Status.Target = &v1alpha1.ModelVersionRef{Version: v.Version, RunID: v.RunID, Source: v.Source}
	} else {
		md.Status.Target.RunID, md.Status.Target.Source = v.RunID, v.Source
	}
	setCondition(md, v1alpha1.ConditionModelResolved, metav1.ConditionTrue, v1alpha1.ReasonResolved,
		fmt.Sprintf("%s of model %q is version %s", following, md.Spec.Model.Name, v.Version))
	return true, nil
}
