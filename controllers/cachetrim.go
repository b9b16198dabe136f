package controllers

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/client-go/tools/cache"
)

// lastApplied is kubectl's copy of the whole object as last applied: as
// large as the spec, and read by nothing of the operator.
const lastApplied = "kubectl.kubernetes.io/last-applied-configuration"

// trimCached is the cache's transform for every object: nothing of the
// operator reads the managed fields or kubectl's last applied copy, and
// they are a large part of each object (server-side apply writes one
// managed-fields entry per field manager). Writes never start from the
// cached copy's metadata alone (status and metadata patches are computed
// from a diff of two copies), so what is dropped here is never dropped on
// the server.
func trimCached(obj any) (any, error) {
	if tomb, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		return tomb, nil
	}
	if m, err := meta.Accessor(obj); err == nil {
		m.SetManagedFields(nil)
		if a := m.GetAnnotations(); a[lastApplied] != "" {
			delete(a, lastApplied)
			m.SetAnnotations(a)
		}
	}
	if p, ok := obj.(*corev1.Pod); ok {
		return trimPod(p), nil
	}
	return obj, nil
}

// trimPod keeps of a serving pod what the operator reads (the rollout's
// view of pods: workloads.go, podSummary): its identity, labels and owner,
// whether it is terminating, the name and image of each container, its IP,
// phase and conditions, and each container's state. A thousand
// ModelDeployments mean thousands of pods in the cache; their volumes,
// probes, environment and security contexts are most of each, and are the
// operator's own template (held in the Deployment) anyway.
func trimPod(p *corev1.Pod) *corev1.Pod {
	out := &corev1.Pod{TypeMeta: p.TypeMeta}
	out.Name, out.Namespace, out.UID, out.ResourceVersion = p.Name, p.Namespace, p.UID, p.ResourceVersion
	out.Labels, out.OwnerReferences, out.DeletionTimestamp, out.CreationTimestamp = p.Labels, p.OwnerReferences, p.DeletionTimestamp, p.CreationTimestamp
	out.Generation = p.Generation
	out.Spec.NodeName = p.Spec.NodeName
	out.Spec.Containers = nameAndImage(p.Spec.Containers)
	out.Spec.InitContainers = nameAndImage(p.Spec.InitContainers)
	out.Status = corev1.PodStatus{
		Phase: p.Status.Phase, Reason: p.Status.Reason, Message: p.Status.Message,
		PodIP: p.Status.PodIP, PodIPs: p.Status.PodIPs, Conditions: p.Status.Conditions,
		ContainerStatuses:     containerStates(p.Status.ContainerStatuses),
		InitContainerStatuses: containerStates(p.Status.InitContainerStatuses),
	}
	return out
}

func nameAndImage(cs []corev1.Container) []corev1.Container {
	if cs == nil {
		return nil
	}
	out := make([]corev1.Container, len(cs))
	for i, c := range cs {
		out[i] = corev1.Container{Name: c.Name, Image: c.Image}
	}
	return out
}

func containerStates(ss []corev1.ContainerStatus) []corev1.ContainerStatus {
	if ss == nil {
		return nil
	}
	out := make([]corev1.ContainerStatus, len(ss))
	for i, s := range ss {
		out[i] = corev1.ContainerStatus{Name: s.Name, Image: s.Image, Ready: s.Ready, Started: s.Started,
			RestartCount: s.RestartCount, State: s.State}
	}
	return out
}
