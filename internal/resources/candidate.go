package resources

import (
	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	v1alpha1 "github.com/mlflow-operator/mlflow-operator/api/v1alpha1"
)

// CandidateSuffix ends the name of a ModelDeployment's candidate Deployment.
const CandidateSuffix = "-candidate"

// CandidateName is the name of md's candidate Deployment.
func CandidateName(md *v1alpha1.ModelDeployment) string { return md.Name + CandidateSuffix }

// CandidateSelectorLabels select a ModelDeployment's candidate pod: not the
// production Service's selector, so the candidate never takes traffic.
func CandidateSelectorLabels(md *v1alpha1.ModelDeployment) map[string]string {
	return map[string]string{
		v1alpha1.LabelName: md.Name,
		v1alpha1.LabelRole: v1alpha1.RoleCandidate,
	}
}

// CandidateDeployment is a one-replica Deployment of w with the production
// pod template but its own labels, so that it can be verified before it
// replaces anything.
func CandidateDeployment(md *v1alpha1.ModelDeployment, w Workload) *appsv1.Deployment {
	selector := CandidateSelectorLabels(md)
	meta := objectMeta(md, CandidateName(md))
	meta.Labels[v1alpha1.LabelRole] = v1alpha1.RoleCandidate
	return &appsv1.Deployment{
		TypeMeta:   metav1.TypeMeta{APIVersion: appsv1.SchemeGroupVersion.String(), Kind: "Deployment"},
		ObjectMeta: meta,
		Spec: appsv1.DeploymentSpec{
			Replicas:                ptr.To(int32(1)),
			Selector:                &metav1.LabelSelector{MatchLabels: selector},
			Strategy:                appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType},
			ProgressDeadlineSeconds: ptr.To(int32(md.Spec.ProgressDeadline().Seconds())),
			RevisionHistoryLimit:    ptr.To(int32(1)),
			Template:                PodTemplate(md, w, selector),
		},
	}
}
