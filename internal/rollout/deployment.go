package rollout

import (
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"
)

// Phase of a Deployment's rollout.
type Phase string

const (
	// PhaseMissing: the Deployment does not exist (yet).
	PhaseMissing Phase = "Missing"
	// PhaseProgressing: the rollout is under way.
	PhaseProgressing Phase = "Progressing"
	// PhaseComplete: every replica runs the current template and is available.
	PhaseComplete Phase = "Complete"
	// PhaseFailed: the deployment controller gave up (progress deadline).
	PhaseFailed Phase = "Failed"
)

// DeploymentState is what a Deployment's status says about its rollout.
type DeploymentState struct {
	Phase Phase
	// Message says, for a person, where the rollout is.
	Message string
	// Replicas wanted, and ready ones.
	Replicas, ReadyReplicas, AvailableReplicas, UpdatedReplicas int32
}

// ObserveDeployment reads a Deployment's rollout from its status, the way
// `kubectl rollout status` does: complete when the controller has seen the
// current generation and every wanted replica is updated and available, with
// no old replica left.
func ObserveDeployment(d *appsv1.Deployment) DeploymentState {
	if d == nil {
		return DeploymentState{Phase: PhaseMissing, Message: "the Deployment does not exist yet"}
	}
	want := ptr.Deref(d.Spec.Replicas, 1)
	s := DeploymentState{
		Replicas:          want,
		ReadyReplicas:     d.Status.ReadyReplicas,
		AvailableReplicas: d.Status.AvailableReplicas,
		UpdatedReplicas:   d.Status.UpdatedReplicas,
		Phase:             PhaseProgressing,
	}
	if d.Status.ObservedGeneration < d.Generation {
		s.Message = fmt.Sprintf("waiting for the deployment controller to observe generation %d", d.Generation)
		return s
	}
	for _, c := range d.Status.Conditions {
		if c.Type == appsv1.DeploymentProgressing && c.Status == corev1.ConditionFalse && c.Reason == "ProgressDeadlineExceeded" {
			s.Phase = PhaseFailed
			s.Message = fmt.Sprintf("rollout exceeded its progress deadline: %s", c.Message)
			return s
		}
	}
	switch {
	case d.Status.UpdatedReplicas < want:
		s.Message = fmt.Sprintf("%d of %d replicas updated", d.Status.UpdatedReplicas, want)
	case d.Status.Replicas > d.Status.UpdatedReplicas:
		s.Message = fmt.Sprintf("%d old replicas pending termination", d.Status.Replicas-d.Status.UpdatedReplicas)
	case d.Status.AvailableReplicas < d.Status.UpdatedReplicas:
		s.Message = fmt.Sprintf("%d of %d updated replicas available", d.Status.AvailableReplicas, d.Status.UpdatedReplicas)
	default:
		s.Phase = PhaseComplete
		s.Message = fmt.Sprintf("%d of %d replicas available", d.Status.AvailableReplicas, want)
	}
	return s
}
