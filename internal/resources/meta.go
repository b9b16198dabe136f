package resources

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1alpha1 "github.com/mlflow-operator/mlflow-operator/api/v1alpha1"
)

// ManagedBy is the app.kubernetes.io/managed-by label value of owned objects.
const ManagedBy = "mlflow-operator"

// ServingUID is the numeric user (and group) the serving pods run as. The
// image build gives the model files this owner, so the pods can read them
// with a read-only root filesystem and no privileges.
const ServingUID int64 = 1000

// PortName names the serving port on the container and the Service.
const PortName = "http"

// ContainerName is the serving container's name.
const ContainerName = "model"

// Labels are the labels every owned object carries.
func Labels(md *v1alpha1.ModelDeployment) map[string]string {
	return map[string]string{
		"app.kubernetes.io/name":       "mlflow-model",
		"app.kubernetes.io/instance":   md.Name,
		"app.kubernetes.io/component":  "model-server",
		"app.kubernetes.io/managed-by": ManagedBy,
		v1alpha1.LabelName:             md.Name,
	}
}

// objectMeta is the metadata of an owned object named name: common labels
// and the ModelDeployment as controller owner, so that garbage collection
// removes it with the ModelDeployment.
func objectMeta(md *v1alpha1.ModelDeployment, name string) metav1.ObjectMeta {
	return metav1.ObjectMeta{
		Name:            name,
		Namespace:       md.Namespace,
		Labels:          Labels(md),
		OwnerReferences: []metav1.OwnerReference{*OwnerReference(md)},
	}
}

// OwnerReference is the controller owner reference to md.
func OwnerReference(md *v1alpha1.ModelDeployment) *metav1.OwnerReference {
	return metav1.NewControllerRef(md, v1alpha1.GroupVersion.WithKind("ModelDeployment"))
}

func mergeLabels(maps ...map[string]string) map[string]string {
	out := map[string]string{}
	for _, m := range maps {
		for k, v := range m {
			out[k] = v
		}
	}
	return out
}
