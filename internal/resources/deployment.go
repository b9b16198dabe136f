package resources

import (
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	v1alpha1 "github.com/mlflow-operator/mlflow-operator/api/v1alpha1"
)

// Workload is what a pod template serves: an image, by digest, and the model
// version inside it.
type Workload struct {
	// Image is the image reference, repository@sha256:....
	Image string
	// ModelVersion is the MLflow model version the image carries.
	ModelVersion string
	// RequestMetricsImage, when set, adds the request-metrics sidecar from
	// this image (the operator's own). The caller sets it only when the
	// spec asks for request metrics.
	RequestMetricsImage string
}

// Timings of the serving pods.
const (
	TerminationGracePeriodSeconds int64 = 30
	// PreStopSleepSeconds keeps a terminating pod serving while the endpoints
	// controller and the proxies stop sending it traffic.
	PreStopSleepSeconds int64 = 5
	// The startup probe asks every StartupPeriodSeconds, and allows
	// StartupFailureThreshold*StartupPeriodSeconds (5 minutes) for the
	// model to load before liveness takes over. A short period matters: a
	// pod is Ready at the first probe after its server listens (the
	// kubelet runs the readiness probe at once when the startup probe
	// passes), so with 5 s a server up in 5.1 s was Ready at 10 s; each new
	// pod of a promotion waited 2.5 s on average for nothing.
	StartupPeriodSeconds    int32 = 1
	StartupFailureThreshold int32 = 300
	// The readiness probe's period once started.
	ProbePeriodSeconds int32 = 5
)

// Resources the serving container gets when the spec requests no CPU.
var (
	DefaultCPURequest    = resource.MustParse("250m")
	DefaultMemoryRequest = resource.MustParse("512Mi")
	DefaultMemoryLimit   = resource.MustParse("1Gi")
)

// Deployment is the production Deployment serving w, in the active slot.
// Its replica count is only the initial one: after creation the
// HorizontalPodAutoscaler owns it, so the caller sets it on create and
// leaves it out when applying.
func Deployment(md *v1alpha1.ModelDeployment, w Workload) *appsv1.Deployment {
	return SlotDeployment(md, md.Status.ActiveSlot, w)
}

// SlotDeployment is the production Deployment of slot serving w.
func SlotDeployment(md *v1alpha1.ModelDeployment, slot v1alpha1.Slot, w Workload) *appsv1.Deployment {
	selector := SlotSelectorLabels(md, slot)
	return &appsv1.Deployment{
		TypeMeta:   metav1.TypeMeta{APIVersion: appsv1.SchemeGroupVersion.String(), Kind: "Deployment"},
		ObjectMeta: objectMeta(md, SlotName(md, slot)),
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(md.Spec.MinReplicas()),
			Selector: &metav1.LabelSelector{MatchLabels: selector},
			Strategy: appsv1.DeploymentStrategy{
				Type: appsv1.RollingUpdateDeploymentStrategyType,
				RollingUpdate: &appsv1.RollingUpdateDeployment{
					// Never fewer ready pods than wanted while rolling.
					MaxUnavailable: ptr.To(intstr.FromInt32(0)),
					MaxSurge:       ptr.To(md.Spec.MaxSurge()),
				},
			},
			ProgressDeadlineSeconds: ptr.To(int32(md.Spec.ProgressDeadline().Seconds())),
			RevisionHistoryLimit:    ptr.To(int32(5)),
			Template:                PodTemplate(md, w, selector),
		},
	}
}

// PodTemplate is the pod template serving w, labelled with selector (the
// production or a candidate's selector) and the model version.
func PodTemplate(md *v1alpha1.ModelDeployment, w Workload, selector map[string]string) corev1.PodTemplateSpec {
	spec := md.Spec.Serving
	port := md.Spec.ServingPort()
	labels := mergeLabels(spec.PodLabels, Labels(md), selector, map[string]string{
		v1alpha1.LabelModelVersion: w.ModelVersion,
	})
	annotations := spec.PodAnnotations
	modelPort := PortName
	var initContainers []corev1.Container
	if w.RequestMetricsImage != "" {
		// The sidecar takes the Service's port name; the probes still
		// ask the model itself.
		modelPort = ModelPortName
		initContainers = append(initContainers, requestMetricsSidecar(md, w.RequestMetricsImage))
		labels[v1alpha1.LabelRequestMetrics] = "true"
		annotations = mergeLabels(annotations, map[string]string{v1alpha1.AnnotationModelName: md.Spec.Model.Name})
	}

	probe := func(period, failures int32) *corev1.Probe {
		return &corev1.Probe{
			ProbeHandler: corev1.ProbeHandler{
				HTTPGet: &corev1.HTTPGetAction{Path: "/ping", Port: intstr.FromString(modelPort)},
			},
			PeriodSeconds:    period,
			TimeoutSeconds:   3,
			FailureThreshold: failures,
		}
	}

	container := corev1.Container{
		Name:            ContainerName,
		Image:           w.Image,
		ImagePullPolicy: corev1.PullIfNotPresent,
		Command:         spec.Command,
		Args:            spec.Args,
		Ports: []corev1.ContainerPort{{
			Name: modelPort, ContainerPort: port, Protocol: corev1.ProtocolTCP,
		}},
		Env:            spec.Env,
		Resources:      containerResources(spec.Resources),
		StartupProbe:   probe(StartupPeriodSeconds, StartupFailureThreshold),
		ReadinessProbe: probe(ProbePeriodSeconds, 3),
		LivenessProbe:  probe(10, 3),
		Lifecycle: &corev1.Lifecycle{
			PreStop: &corev1.LifecycleHandler{Sleep: &corev1.SleepAction{Seconds: PreStopSleepSeconds}},
		},
		SecurityContext:          restricted(ServingUID),
		TerminationMessagePolicy: corev1.TerminationMessageFallbackToLogsOnError,
		VolumeMounts:             []corev1.VolumeMount{{Name: "tmp", MountPath: "/tmp"}},
	}

	return corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{
			Labels:      labels,
			Annotations: annotations,
		},
		Spec: corev1.PodSpec{
			InitContainers:                initContainers,
			Containers:                    []corev1.Container{container},
			ServiceAccountName:            spec.ServiceAccountName,
			AutomountServiceAccountToken:  ptr.To(false),
			ImagePullSecrets:              spec.ImagePullSecrets,
			NodeSelector:                  spec.NodeSelector,
			Tolerations:                   spec.Tolerations,
			Affinity:                      spec.Affinity,
			PriorityClassName:             spec.PriorityClassName,
			TerminationGracePeriodSeconds: ptr.To(TerminationGracePeriodSeconds),
			EnableServiceLinks:            ptr.To(false),
			SecurityContext: &corev1.PodSecurityContext{
				RunAsNonRoot:   ptr.To(true),
				RunAsUser:      ptr.To(ServingUID),
				RunAsGroup:     ptr.To(ServingUID),
				FSGroup:        ptr.To(ServingUID),
				SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
			},
			TopologySpreadConstraints: spread(selector),
			Volumes: []corev1.Volume{{
				Name: "tmp",
				VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{
					SizeLimit: ptr.To(resource.MustParse("1Gi")),
				}},
			}},
		},
	}
}

// spread prefers spreading the pods of one revision over nodes and zones.
// ScheduleAnyway: a single-node cluster still runs every replica.
func spread(selector map[string]string) []corev1.TopologySpreadConstraint {
	var out []corev1.TopologySpreadConstraint
	for _, key := range []string{corev1.LabelHostname, corev1.LabelTopologyZone} {
		out = append(out, corev1.TopologySpreadConstraint{
			MaxSkew:           1,
			TopologyKey:       key,
			WhenUnsatisfiable: corev1.ScheduleAnyway,
			LabelSelector:     &metav1.LabelSelector{MatchLabels: selector},
			MatchLabelKeys:    []string{appsv1.DefaultDeploymentUniqueLabelKey},
		})
	}
	return out
}

// containerResources fills in a CPU and memory request (and a memory limit)
// when the spec requests no CPU: the autoscaler's CPU target needs a request.
func containerResources(in corev1.ResourceRequirements) corev1.ResourceRequirements {
	out := *in.DeepCopy()
	if _, ok := out.Requests[corev1.ResourceCPU]; ok {
		return out
	}
	if out.Requests == nil {
		out.Requests = corev1.ResourceList{}
	}
	out.Requests[corev1.ResourceCPU] = DefaultCPURequest
	if _, ok := out.Requests[corev1.ResourceMemory]; !ok {
		out.Requests[corev1.ResourceMemory] = DefaultMemoryRequest
	}
	if _, ok := out.Limits[corev1.ResourceMemory]; !ok {
		if out.Limits == nil {
			out.Limits = corev1.ResourceList{}
		}
		limit := DefaultMemoryLimit
		if req := out.Requests[corev1.ResourceMemory]; req.Cmp(limit) > 0 {
			limit = req
		}
		out.Limits[corev1.ResourceMemory] = limit
	}
	return out
}

// restricted is the security context of every container of a serving pod:
// non-root as uid (and gid) uid, read-only root filesystem, no privilege
// escalation, every capability dropped, seccomp RuntimeDefault.
func restricted(uid int64) *corev1.SecurityContext {
	return &corev1.SecurityContext{
		RunAsNonRoot:             ptr.To(true),
		RunAsUser:                ptr.To(uid),
		RunAsGroup:               ptr.To(uid),
		ReadOnlyRootFilesystem:   ptr.To(true),
		AllowPrivilegeEscalation: ptr.To(false),
		Privileged:               ptr.To(false),
		Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
		SeccompProfile:           &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
	}
}
