package controllers

import (
	"encoding/json"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	v1alpha1 "github.com/mlflow-operator/mlflow-operator/api/v1alpha1"
	"github.com/mlflow-operator/mlflow-operator/internal/resources"
	"github.com/mlflow-operator/mlflow-operator/test/harness/fixtures"
)

// servingPod is a pod as the kubelet reports one of the operator's: the
// production template with the request-metrics sidecar, running.
func servingPod(waiting string, restarts int32) *corev1.Pod {
	md := fixtures.Valid("ml", "iris")
	md.UID = types.UID("uid-1")
	tmpl := resources.PodTemplate(md, resources.Workload{Image: "registry.example.com/models/iris@sha256:1111", ModelVersion: "3",
		RequestMetricsImage: "registry.example.com/op@sha256:2222"}, resources.SelectorLabels(md))
	p := &corev1.Pod{ObjectMeta: tmpl.ObjectMeta, Spec: tmpl.Spec}
	p.Name, p.Namespace, p.UID, p.ResourceVersion = "iris-abc", "ml", "pod-uid", "42"
	p.ManagedFields = []metav1.ManagedFieldsEntry{{Manager: "kubelet", Operation: metav1.ManagedFieldsOperationUpdate}}
	p.Status = corev1.PodStatus{Phase: corev1.PodRunning, PodIP: "10.88.0.7", PodIPs: []corev1.PodIP{{IP: "10.88.0.7"}},
		Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}},
		ContainerStatuses: []corev1.ContainerStatus{{Name: "model", Image: tmpl.Spec.Containers[0].Image, Ready: waiting == "",
			RestartCount: restarts, ImageID: "sha256:abcdef", VolumeMounts: []corev1.VolumeMountStatus{{Name: "tmp", MountPath: "/tmp"}},
			LastTerminationState: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 1, Message: "a long log tail"}}}},
		InitContainerStatuses: []corev1.ContainerStatus{{Name: "request-metrics", Ready: true}},
	}
	if waiting != "" {
		p.Status.ContainerStatuses[0].State.Waiting = &corev1.ContainerStateWaiting{Reason: waiting}
	} else {
		p.Status.ContainerStatuses[0].State.Running = &corev1.ContainerStateRunning{}
	}
	return p
}

// TestTrimmedPodAnswersTheSame: what the rollout reads of a pod is the
// same on the trimmed copy the cache keeps, and the copy is much smaller.
func TestTrimmedPodAnswersTheSame(t *testing.T) {
	for _, tc := range []struct {
		waiting  string
		restarts int32
	}{{"", 0}, {"CrashLoopBackOff", 0}, {"", 3}, {"ImagePullBackOff", 1}} {
		full := servingPod(tc.waiting, tc.restarts)
		image := full.Spec.Containers[0].Image
		trimmed, err := trimCached(full.DeepCopy())
		if err != nil {
			t.Fatal(err)
		}
		tp := trimmed.(*corev1.Pod)
		if podSummary(tp) != podSummary(full) {
			t.Errorf("summary %q, want %q", podSummary(tp), podSummary(full))
		}
		fa, fm := podsFailing([]corev1.Pod{*full}, image)
		ta, tm := podsFailing([]corev1.Pod{*tp}, image)
		if fa != ta || fm != tm {
			t.Errorf("podsFailing %v %q, want %v %q", ta, tm, fa, fm)
		}
		if runsImage(tp, image) != runsImage(full, image) || podReady(tp) != podReady(full) || tp.Status.PodIP != full.Status.PodIP ||
			tp.UID != full.UID || tp.Labels[v1alpha1.LabelModelVersion] != "3" {
			t.Errorf("trimmed pod reads differently: %+v", tp)
		}
		if len(tp.ManagedFields) != 0 {
			t.Error("managed fields kept")
		}
		fj, _ := json.Marshal(full)
		tj, _ := json.Marshal(tp)
		t.Logf("pod JSON: full %d bytes, trimmed %d", len(fj), len(tj))
		if len(tj)*3 > len(fj) {
			t.Errorf("trimmed pod is %d bytes of JSON, the full one %d: want under a third", len(tj), len(fj))
		}
	}
}

func TestTrimCachedDropsKubectlsCopy(t *testing.T) {
	d := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "x", Annotations: map[string]string{
		lastApplied: `{"a":"whole copy"}`, AppliedAnnotation: "abc"}}}
	out, _ := trimCached(d)
	a := out.(*corev1.Service).Annotations
	if _, ok := a[lastApplied]; ok || a[AppliedAnnotation] != "abc" {
		t.Errorf("annotations %v: want kubectl's copy gone, the operator's hash kept", a)
	}
}
