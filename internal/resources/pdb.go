package resources

import (
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	v1alpha1 "github.com/mlflow-operator/mlflow-operator/api/v1alpha1"
)

// PodDisruptionBudget limits voluntary evictions of the production pods. By
// default it keeps 2 pods available; when minReplicas is 2 or less that would
// block every eviction at the lowest scale (a node drain would hang), so it
// allows one eviction at a time instead. Pods that are not Ready may always
// be evicted, so a crashing revision never blocks a drain.
func PodDisruptionBudget(md *v1alpha1.ModelDeployment) *policyv1.PodDisruptionBudget {
	spec := policyv1.PodDisruptionBudgetSpec{
		Selector:                   &metav1.LabelSelector{MatchLabels: SelectorLabels(md)},
		UnhealthyPodEvictionPolicy: ptr.To(policyv1.AlwaysAllow),
	}
	d := md.Spec.Disruption
	switch {
	case d.MinAvailable != nil:
		spec.MinAvailable = ptr.To(*d.MinAvailable)
	case d.MaxUnavailable != nil:
		spec.MaxUnavailable = ptr.To(*d.MaxUnavailable)
	case md.Spec.MinReplicas() > v1alpha1.DefaultMinAvailable:
		spec.MinAvailable = ptr.To(intstr.FromInt32(v1alpha1.DefaultMinAvailable))
	default:
		spec.MaxUnavailable = ptr.To(intstr.FromInt32(1))
	}
	return &policyv1.PodDisruptionBudget{
		TypeMeta:   metav1.TypeMeta{APIVersion: policyv1.SchemeGroupVersion.String(), Kind: "PodDisruptionBudget"},
		ObjectMeta: objectMeta(md, md.Name),
		Spec:       spec,
	}
}
