package controllers

import (
	"context"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1alpha1 "github.com/mlflow-operator/mlflow-operator/api/v1alpha1"
	"github.com/mlflow-operator/mlflow-operator/internal/builds"
	"github.com/mlflow-operator/mlflow-operator/internal/resolver"
	"github.com/mlflow-operator/mlflow-operator/internal/status"
)

// buildPollInterval is how often a running build is looked at again.
const buildPollInterval = 5 * time.Second

// reconcileImage makes sure the target version has an image: reused from
// the registry, or built and pushed off the reconcile workers. Whether and
// when it reaches production is the rollout step's decision.
func (r *ModelDeploymentReconciler) reconcileImage(ctx context.Context, s *scope) (bool, error) {
	md := s.md
	target := md.Status.Target
	if target == nil {
		// Nothing resolved yet: the workload keeps what serves, if anything.
		return true, nil
	}
	if target.Image == "" {
		if r.Images == nil {
			msg := "this operator build has no image builder"
			setCondition(md, v1alpha1.ConditionImageReady, metav1.ConditionFalse, v1alpha1.ReasonBuilderMissing, msg)
			s.fail(status.Outcome{Stalled: true, Reason: v1alpha1.ReasonBuilderMissing, Message: msg})
			return true, nil
		}
		res, err := r.Images.Image(ctx, md, resolver.ModelVersion{Version: target.Version, RunID: target.RunID, Source: target.Source})
		setDependencies(md, res.Dependencies)
		if !res.RetryAt.IsZero() {
			s.requeue(res.RetryAt.Sub(s.now))
		}
		if res.Deferred {
			// Failed before this operator started: the condition still says
			// how; the retry waits for its backoff.
			if c := meta.FindStatusCondition(md.Status.Conditions, v1alpha1.ConditionImageReady); c != nil {
				s.fail(status.Outcome{Reason: v1alpha1.Reason(c.Reason), Message: c.Message})
			}
			return true, nil
		}
		if err != nil {
			reason, terminal := reasonOf(err, v1alpha1.ReasonBuildFailed)
			msg := fmt.Sprintf("image of version %s: %v", target.Version, err)
			if setCondition(md, v1alpha1.ConditionImageReady, metav1.ConditionFalse, reason, msg) {
				r.event(md, corev1.EventTypeWarning, reason, v1alpha1.ActionBuild, msg)
			}
			s.fail(status.Outcome{Stalled: terminal, Reason: reason, Message: msg})
			return true, nil
		}
		if res.Image == "" {
			msg := fmt.Sprintf("building the image of version %s", target.Version)
			if res.Message != "" {
				msg += ": " + res.Message
			}
			setCondition(md, v1alpha1.ConditionImageReady, metav1.ConditionFalse, v1alpha1.ReasonBuilding, msg)
			s.wait(v1alpha1.ReasonBuilding, msg)
			s.requeue(buildPollInterval)
			return true, nil
		}
		target.Image = res.Image
		reason, msg := v1alpha1.ReasonPushed, fmt.Sprintf("image of version %s is %s, built and pushed", target.Version, res.Image)
		if res.Reused {
			reason, msg = v1alpha1.ReasonReused, fmt.Sprintf("image of version %s is %s, found in the registry: nothing was built or pushed", target.Version, res.Image)
		}
		r.event(md, corev1.EventTypeNormal, reason, v1alpha1.ActionBuild, msg)
		setCondition(md, v1alpha1.ConditionImageReady, metav1.ConditionTrue, reason, msg)
		return true, nil
	}
	// Known from an earlier pass: the condition set then says how it came.
	if c := meta.FindStatusCondition(md.Status.Conditions, v1alpha1.ConditionImageReady); c == nil || c.Status != metav1.ConditionTrue ||
		!strings.Contains(c.Message, target.Image) {
		setCondition(md, v1alpha1.ConditionImageReady, metav1.ConditionTrue, v1alpha1.ReasonImageAvailable,
			fmt.Sprintf("image of version %s is %s", target.Version, target.Image))
	}
	return true, nil
}

// setDependencies records the dependency check's verdict, when one came.
func setDependencies(md *v1alpha1.ModelDeployment, d *builds.Dependencies) {
	if d == nil {
		return
	}
	st, reason := metav1.ConditionTrue, v1alpha1.ReasonDependenciesSatisfied
	switch {
	case d.Skipped:
		reason = v1alpha1.ReasonDependencyCheckSkipped
	case !d.Satisfied:
		st, reason = metav1.ConditionFalse, v1alpha1.ReasonDependenciesNotSatisfied
	}
	setCondition(md, v1alpha1.ConditionDependenciesSatisfied, st, reason, d.Message)
}
