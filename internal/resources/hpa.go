package resources

import (
	"strconv"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	v1alpha1 "github.com/mlflow-operator/mlflow-operator/api/v1alpha1"
)

// HorizontalPodAutoscaler scales the production Deployment (the active
// slot's) between minReplicas and maxReplicas on CPU (and, when asked,
// memory) utilization.
func HorizontalPodAutoscaler(md *v1alpha1.ModelDeployment) *autoscalingv2.HorizontalPodAutoscaler {
	utilization := func(name corev1.ResourceName, percent int32) autoscalingv2.MetricSpec {
		return autoscalingv2.MetricSpec{
			Type: autoscalingv2.ResourceMetricSourceType,
			Resource: &autoscalingv2.ResourceMetricSource{
				Name: name,
				Target: autoscalingv2.MetricTarget{
					Type:               autoscalingv2.UtilizationMetricType,
					AverageUtilization: ptr.To(percent),
				},
			},
		}
	}
	metrics := []autoscalingv2.MetricSpec{utilization(corev1.ResourceCPU, md.Spec.TargetCPUUtilization())}
	if m := md.Spec.Scaling.TargetMemoryUtilization; m != nil {
		metrics = append(metrics, utilization(corev1.ResourceMemory, *m))
	}
	return &autoscalingv2.HorizontalPodAutoscaler{
		TypeMeta:   metav1.TypeMeta{APIVersion: autoscalingv2.SchemeGroupVersion.String(), Kind: "HorizontalPodAutoscaler"},
		ObjectMeta: objectMeta(md, md.Name),
		Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
			ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{
				APIVersion: "apps/v1", Kind: "Deployment", Name: ProductionName(md),
			},
			MinReplicas: ptr.To(md.Spec.MinReplicas()),
			MaxReplicas: md.Spec.MaxReplicas(),
			Metrics:     metrics,
		},
	}
}

func itoa(i int32) string { return strconv.Itoa(int(i)) }
