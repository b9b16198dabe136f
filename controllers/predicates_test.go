package controllers

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/event"
)

func TestPodChanged(t *testing.T) {
	base := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "iris-1", Labels: map[string]string{"role": "production"}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "model", Image: "r/iris:1"}}},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, PodIP: "10.88.0.5",
			Conditions:        []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionFalse}},
			ContainerStatuses: []corev1.ContainerStatus{{Name: "model", State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}}}},
	}
	cases := []struct {
		name   string
		change func(p *corev1.Pod)
		want   bool
	}{
		{"a probe time only", func(p *corev1.Pod) { p.Status.Conditions[0].LastProbeTime = metav1.NewTime(time.Now()) }, false},
		{"the resource version only", func(p *corev1.Pod) { p.ResourceVersion = "99" }, false},
		{"ready", func(p *corev1.Pod) { p.Status.Conditions[0].Status = corev1.ConditionTrue }, true},
		{"a restart", func(p *corev1.Pod) { p.Status.ContainerStatuses[0].RestartCount = 1 }, true},
		{"crash-looping", func(p *corev1.Pod) {
			p.Status.ContainerStatuses[0].State = corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff"}}
		}, true},
		{"going", func(p *corev1.Pod) { now := metav1.Now(); p.DeletionTimestamp = &now }, true},
		{"a label", func(p *corev1.Pod) { p.Labels["role"] = "candidate" }, true},
		{"failed", func(p *corev1.Pod) { p.Status.Phase = corev1.PodFailed }, true},
	}
	for _, c := range cases {
		updated := base.DeepCopy()
		c.change(updated)
		if got := podChanged.Update(event.UpdateEvent{ObjectOld: base, ObjectNew: updated}); got != c.want {
			t.Errorf("%s: reconcile %v, want %v", c.name, got, c.want)
		}
	}
}

// TestModelDeploymentChanged: the annotations that carry requests start a
// reconcile on their own; the operator's status writes do not.
func TestModelDeploymentChanged(t *testing.T) {
	base := modelDeploymentObject()
	base.SetName("iris")
	base.SetGeneration(3)
	base.SetAnnotations(map[string]string{"reconcile.fluxcd.io/requestedAt": "2026-11-25T12:00:00Z"})
	cases := []struct {
		name   string
		change func(u *unstructured.Unstructured)
		want   bool
	}{
		{"a new reconcile request", func(u *unstructured.Unstructured) {
			u.SetAnnotations(map[string]string{"reconcile.fluxcd.io/requestedAt": "2026-11-25T12:05:00Z"})
		}, true},
		{"an approval", func(u *unstructured.Unstructured) {
			u.SetAnnotations(map[string]string{"reconcile.fluxcd.io/requestedAt": "2026-11-25T12:00:00Z", "serving.mlflow-operator.io/approve": "2"})
		}, true},
		{"a spec change", func(u *unstructured.Unstructured) { u.SetGeneration(4) }, true},
		{"a status write", func(u *unstructured.Unstructured) {
			u.SetResourceVersion("99")
			_ = unstructured.SetNestedField(u.Object, "2026-11-25T12:00:00Z", "status", "lastHandledReconcileAt")
		}, false},
	}
	for _, c := range cases {
		updated := base.DeepCopy()
		c.change(updated)
		if got := modelDeploymentChanged.Update(event.UpdateEvent{ObjectOld: base, ObjectNew: updated}); got != c.want {
			t.Errorf("%s: reconcile %v, want %v", c.name, got, c.want)
		}
	}
}
