package controllers

import (
	"context"
	"fmt"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/mlflow-operator/mlflow-operator/api/v1alpha1"
	"github.com/mlflow-operator/mlflow-operator/internal/resources"
	"github.com/mlflow-operator/mlflow-operator/internal/rollout"
)

// observe reads the production Deployment's real state: RolledOut, the
// replica counts, and, once the rollout is complete, status.serving and
// status.lastGood.
func (r *ModelDeploymentReconciler) observe(ctx context.Context, s *scope) (bool, error) {
	md := s.md
	dep := &appsv1.Deployment{}
	if err := r.Get(ctx, client.ObjectKey{Namespace: md.Namespace, Name: md.Name}, dep); err != nil {
		if client.IgnoreNotFound(err) != nil {
			return false, err
		}
		dep = nil
	}
	state := rollout.ObserveDeployment(dep)
	md.Status.Replicas, md.Status.ReadyReplicas = state.Replicas, state.ReadyReplicas

	if dep != nil && state.Phase == rollout.PhaseComplete && templateImage(dep) != s.image {
		// The cache has not seen the apply yet.
		state.Phase, state.Message = rollout.PhaseProgressing, "waiting for the Deployment to run "+s.image
	}
	switch state.Phase {
	case rollout.PhaseComplete:
		setCondition(md, v1alpha1.ConditionRolledOut, metav1.ConditionTrue, v1alpha1.ReasonRolloutComplete,
			fmt.Sprintf("version %s: %s", s.version, state.Message))
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
	if t := md.Status.Target; t != nil && s.problem == nil && s.waiting == nil && t.Version != s.version {
		s.wait(v1alpha1.ReasonProgressing, fmt.Sprintf("version %s serves, version %s is on its way", s.version, t.Version))
	}
	return true, nil
}

func templateImage(dep *appsv1.Deployment) string {
	for _, c := range dep.Spec.Template.Spec.Containers {
		if c.Name == resources.ContainerName {
			return c.Image
		}
	}
	return ""
}
