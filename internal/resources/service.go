package resources

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	v1alpha1 "github.com/mlflow-operator/mlflow-operator/api/v1alpha1"
)

// Service is the ClusterIP Service in front of the production pods (never a
// candidate's), and of a Canary rollout's canary pods while it takes
// traffic.
func Service(md *v1alpha1.ModelDeployment) *corev1.Service {
	return &corev1.Service{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: objectMeta(md, md.Name),
		Spec: corev1.ServiceSpec{
			Type:     corev1.ServiceTypeClusterIP,
			Selector: ServiceSelectorLabels(md),
			Ports: []corev1.ServicePort{{
				Name:       PortName,
				Protocol:   corev1.ProtocolTCP,
				Port:       md.Spec.ServingPort(),
				TargetPort: intstr.FromString(PortName),
			}},
		},
	}
}

// Endpoint is the in-cluster URL of the Service.
func Endpoint(md *v1alpha1.ModelDeployment) string {
	return "http://" + md.Name + "." + md.Namespace + ".svc:" + itoa(md.Spec.ServingPort())
}
