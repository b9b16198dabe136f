package resources

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/utils/ptr"

	v1alpha1 "github.com/mlflow-operator/mlflow-operator/api/v1alpha1"
)

// The request-metrics sidecar (cmd/request-metrics) of the serving pods.
//
// It takes the container port name the Service targets (PortName) and the
// model container's port is renamed ModelPortName: the Service resolves the
// name per pod, so while the pods roll out after the feature is turned on or
// off, the old pods keep getting their traffic on the model's port and the
// new ones on the proxy's, with no request refused.
const (
	SidecarName = "request-metrics"
	// ModelPortName names the model container's port when the sidecar
	// takes PortName.
	ModelPortName = "model"
	// MetricsPortName names the sidecar's /metrics port (what a PodMonitor
	// selects).
	MetricsPortName = "metrics"
	// SidecarUID is the user of the sidecar: the operator image's nonroot.
	SidecarUID int64 = 65532
	// SidecarCommand is the sidecar's binary in the operator image.
	SidecarCommand = "/request-metrics"
)

// Resources of the sidecar: a proxy that holds no bodies.
var (
	SidecarCPURequest    = resource.MustParse("10m")
	SidecarMemoryRequest = resource.MustParse("32Mi")
	SidecarMemoryLimit   = resource.MustParse("64Mi")
)

// requestMetricsSidecar is the sidecar running image, as a native sidecar:
// an init container that restarts always, so the kubelet starts it before
// the model container and stops it after.
func requestMetricsSidecar(md *v1alpha1.ModelDeployment, image string) corev1.Container {
	return corev1.Container{
		Name:            SidecarName,
		Image:           image,
		ImagePullPolicy: corev1.PullIfNotPresent,
		RestartPolicy:   ptr.To(corev1.ContainerRestartPolicyAlways),
		Command:         []string{SidecarCommand},
		Args: []string{
			fmt.Sprintf("--listen=:%d", md.Spec.RequestMetricsTrafficPort()),
			fmt.Sprintf("--metrics-listen=:%d", md.Spec.RequestMetricsPort()),
			fmt.Sprintf("--upstream=http://127.0.0.1:%d", md.Spec.ServingPort()),
			// It is stopped after the model container; it keeps serving as
			// long as the model's preStop did, for a last scrape.
			fmt.Sprintf("--drain-delay=%ds", PreStopSleepSeconds),
		},
		Ports: []corev1.ContainerPort{
			{Name: PortName, ContainerPort: md.Spec.RequestMetricsTrafficPort(), Protocol: corev1.ProtocolTCP},
			{Name: MetricsPortName, ContainerPort: md.Spec.RequestMetricsPort(), Protocol: corev1.ProtocolTCP},
		},
		Resources: corev1.ResourceRequirements{
			Requests: corev1.ResourceList{corev1.ResourceCPU: SidecarCPURequest, corev1.ResourceMemory: SidecarMemoryRequest},
			Limits:   corev1.ResourceList{corev1.ResourceMemory: SidecarMemoryLimit},
		},
		SecurityContext:          restricted(SidecarUID),
		TerminationMessagePolicy: corev1.TerminationMessageFallbackToLogsOnError,
	}
}
