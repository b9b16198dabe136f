package rollout

import (
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"
)

func dep(gen, observed int64, replicas int32, status appsv1.DeploymentStatus) *appsv1.Deployment {
	d := &appsv1.Deployment{}
	d.Generation = gen
	d.Spec.Replicas = ptr.To(replicas)
	status.ObservedGeneration = observed
	d.Status = status
	return d
}

func TestObserveDeployment(t *testing.T) {
	deadline := appsv1.DeploymentCondition{Type: appsv1.DeploymentProgressing, Status: corev1.ConditionFalse, Reason: "ProgressDeadlineExceeded", Message: "ReplicaSet x has timed out progressing."}
	progressing := appsv1.DeploymentCondition{Type: appsv1.DeploymentProgressing, Status: corev1.ConditionTrue, Reason: "ReplicaSetUpdated"}
	tests := []struct {
		name      string
		d         *appsv1.Deployment
		want      Phase
		wantReady int32
	}{
		{"missing", nil, PhaseMissing, 0},
		{"generation not observed", dep(2, 1, 3, appsv1.DeploymentStatus{Replicas: 3, UpdatedReplicas: 3, AvailableReplicas: 3, ReadyReplicas: 3}), PhaseProgressing, 3},
		{"fresh, nothing running", dep(1, 1, 3, appsv1.DeploymentStatus{}), PhaseProgressing, 0},
		{"some updated", dep(1, 1, 3, appsv1.DeploymentStatus{Replicas: 4, UpdatedReplicas: 1, AvailableReplicas: 3, ReadyReplicas: 3, Conditions: []appsv1.DeploymentCondition{progressing}}), PhaseProgressing, 3},
		{"old replicas terminating", dep(1, 1, 3, appsv1.DeploymentStatus{Replicas: 4, UpdatedReplicas: 3, AvailableReplicas: 3, ReadyReplicas: 4}), PhaseProgressing, 4},
		{"updated not yet available", dep(1, 1, 3, appsv1.DeploymentStatus{Replicas: 3, UpdatedReplicas: 3, AvailableReplicas: 2, ReadyReplicas: 2}), PhaseProgressing, 2},
		{"complete", dep(1, 1, 3, appsv1.DeploymentStatus{Replicas: 3, UpdatedReplicas: 3, AvailableReplicas: 3, ReadyReplicas: 3}), PhaseComplete, 3},
		{"complete with more available than wanted", dep(5, 5, 3, appsv1.DeploymentStatus{Replicas: 3, UpdatedReplicas: 3, AvailableReplicas: 3, ReadyReplicas: 3}), PhaseComplete, 3},
		{"progress deadline exceeded", dep(1, 1, 3, appsv1.DeploymentStatus{Replicas: 4, UpdatedReplicas: 1, AvailableReplicas: 3, Conditions: []appsv1.DeploymentCondition{deadline}}), PhaseFailed, 0},
		{"deadline of an older generation is not trusted", dep(3, 2, 3, appsv1.DeploymentStatus{Conditions: []appsv1.DeploymentCondition{deadline}}), PhaseProgressing, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := ObserveDeployment(tc.d)
			if got.Phase != tc.want {
				t.Errorf("phase %s (%s), want %s", got.Phase, got.Message, tc.want)
			}
			if got.Message == "" {
				t.Error("no message")
			}
			if got.ReadyReplicas != tc.wantReady {
				t.Errorf("ready %d, want %d", got.ReadyReplicas, tc.wantReady)
			}
		})
	}
}
