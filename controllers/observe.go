package controllers

import (
	"context"
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1alpha1 "github.com/mlflow-operator/mlflow-operator/api/v1alpha1"
	"github.com/mlflow-operator/mlflow-operator/internal/rollout"
)

// observeServing reads the production Deployment as the API server answered
// this pass's apply: RolledOut, the replica counts, and whether the target
// is still on its way.
func (r *ModelDeploymentReconciler) observeServing(_ context.Context, s *scope) (bool, error) {
	md := s.md
	state := rollout.ObserveDeployment(s.w.production)
	md.Status.Replicas, md.Status.ReadyReplicas = state.Replicas, state.ReadyReplicas

	switch state.Phase {
	case rollout.PhaseComplete:
		setCondition(md, v1alpha1.ConditionRolledOut, metav1.ConditionTrue, v1alpha1.ReasonRolloutComplete,
			fmt.Sprintf("version %s: %s", s.version, state.Message))
		sv := md.Status.Serving
		s.served = sv != nil && sv.Version != "" && sv.Version == s.version && sv.Image == s.image &&
			templateImage(s.w.production) == sv.Image && md.Status.Promoting == nil
		if md.Status.Promoting != nil {
			// Complete, but recorded by the next pass's rollout decision.
			s.wait(v1alpha1.ReasonRollingOut, "recording the completed rollout")
			s.requeue(time.Second)
		}
	case rollout.PhaseFailed:
		// The rollout step rolls back, or marks the version failed.
		setCondition(md, v1alpha1.ConditionRolledOut, metav1.ConditionFalse, v1alpha1.ReasonProgressDeadline,
			fmt.Sprintf("version %s: %s", s.version, state.Message))
	default:
		msg := fmt.Sprintf("version %s: %s", s.version, state.Message)
		setCondition(md, v1alpha1.ConditionRolledOut, metav1.ConditionFalse, v1alpha1.ReasonRollingOut, msg)
		s.wait(v1alpha1.ReasonRollingOut, msg)
	}
	if t := md.Status.Target; t != nil && s.problem == nil && s.waiting == nil && s.paused == nil && t.Version != s.version {
		s.wait(v1alpha1.ReasonProgressing, fmt.Sprintf("version %s serves, version %s is on its way", s.version, t.Version))
	}
	return true, nil
}
