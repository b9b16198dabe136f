package rollout

import (
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	v1alpha1 "github.com/mlflow-operator/mlflow-operator/api/v1alpha1"
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

func TestSetSummary(t *testing.T) {
	tests := []struct {
		name                 string
		before               []string // condition types present before
		o                    Outcome
		ready                metav1.ConditionStatus
		reconciling, stalled bool
	}{
		{"ready clears reconciling and stalled", []string{v1alpha1.ConditionReconciling, v1alpha1.ConditionStalled}, Outcome{Ready: true, Reason: "RolloutComplete", Message: "m"}, metav1.ConditionTrue, false, false},
		{"in progress", nil, Outcome{Reason: "Building", Message: "m"}, metav1.ConditionUnknown, true, false},
		{"failing step retried", []string{v1alpha1.ConditionStalled}, Outcome{Failing: true, Reason: "MLflowUnreachable", Message: "m"}, metav1.ConditionFalse, true, false},
		{"stalled clears reconciling", []string{v1alpha1.ConditionReconciling}, Outcome{Stalled: true, Reason: "InvalidSpec", Message: "m"}, metav1.ConditionFalse, false, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var conds []metav1.Condition
			for _, c := range tc.before {
				meta.SetStatusCondition(&conds, metav1.Condition{Type: c, Status: metav1.ConditionTrue, Reason: "Before"})
			}
			SetSummary(&conds, 7, tc.o)
			ready := meta.FindStatusCondition(conds, v1alpha1.ConditionReady)
			if ready == nil || ready.Status != tc.ready || ready.Reason != tc.o.Reason || ready.ObservedGeneration != 7 {
				t.Fatalf("Ready = %+v, want %s/%s at generation 7", ready, tc.ready, tc.o.Reason)
			}
			if got := meta.IsStatusConditionTrue(conds, v1alpha1.ConditionReconciling); got != tc.reconciling {
				t.Errorf("Reconciling = %v, want %v", got, tc.reconciling)
			}
			if got := meta.IsStatusConditionTrue(conds, v1alpha1.ConditionStalled); got != tc.stalled {
				t.Errorf("Stalled = %v, want %v", got, tc.stalled)
			}
			if meta.FindStatusCondition(conds, v1alpha1.ConditionReconciling) != nil && meta.FindStatusCondition(conds, v1alpha1.ConditionStalled) != nil {
				t.Error("Reconciling and Stalled are both present")
			}
		})
	}
}
