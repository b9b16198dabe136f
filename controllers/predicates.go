package controllers

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
)

// Which changes of the objects the operator watches start a reconcile. The
// kubelet updates a pod's status many times while it starts (and the HPA and
// disruption controllers their objects' status on every pass); a reconcile
// for each costs a worker and requests, and at 1,000 ModelDeployments keeps
// the queue full of passes that change nothing. Creations and deletions
// always count.

// modelDeploymentChanged: a ModelDeployment's spec changed (its generation),
// or its annotations: they carry requests (retry-version, approve, abort,
// Flux's reconcile.fluxcd.io/requestedAt) that must be acted on now. Its
// status, which the operator writes itself, does not count.
var modelDeploymentChanged = predicate.Or(predicate.GenerationChangedPredicate{}, predicate.AnnotationChangedPredicate{})

// specOrMetadataChanged: a spec change (the generation), or a label or
// annotation change: drift to correct. Status-only updates are skipped.
var specOrMetadataChanged = predicate.Or(predicate.GenerationChangedPredicate{},
	predicate.LabelChangedPredicate{}, predicate.AnnotationChangedPredicate{})

// podChanged: a pod update counts only when something the reconciler reads
// of pods changed (podSummary).
var podChanged = predicate.Funcs{UpdateFunc: func(e event.UpdateEvent) bool {
	old, ok := e.ObjectOld.(*corev1.Pod)
	updated, ok2 := e.ObjectNew.(*corev1.Pod)
	if !ok || !ok2 {
		return true
	}
	return podSummary(old) != podSummary(updated)
}}

// podSummary is what the reconciler reads of a pod (workloads.go, the smoke
// test): its labels, whether it is going, its phase, readiness and IP, and
// per container its image, readiness, restarts and why it waits or ended.
func podSummary(p *corev1.Pod) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%v|%t|%s|%t|%s|", p.Labels, p.DeletionTimestamp != nil, p.Status.Phase, podReady(p), p.Status.PodIP)
	for _, c := range p.Spec.Containers {
		fmt.Fprintf(&b, "%s=%s,", c.Name, c.Image)
	}
	for _, list := range [][]corev1.ContainerStatus{p.Status.InitContainerStatuses, p.Status.ContainerStatuses} {
		for _, cs := range list {
			fmt.Fprintf(&b, "|%s:%t:%d", cs.Name, cs.Ready, cs.RestartCount)
			if w := cs.State.Waiting; w != nil {
				b.WriteString(":waiting:" + w.Reason)
			}
			if t := cs.State.Terminated; t != nil {
				b.WriteString(":terminated:" + t.Reason)
			}
		}
	}
	return b.String()
}
