package resources

import (
	"reflect"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1alpha1 "github.com/mlflow-operator/mlflow-operator/api/v1alpha1"
)

const sidecarImage = "ghcr.io/mlflow-operator/mlflow-operator@sha256:abc"

func withRequestMetrics(md *v1alpha1.ModelDeployment) {
	md.Spec.Serving.RequestMetrics.Enabled = true
}

func TestRequestMetricsSidecar(t *testing.T) {
	md := newMD(withRequestMetrics)
	pod := Deployment(md, Workload{Image: testImage, ModelVersion: "7", RequestMetricsImage: sidecarImage}).Spec.Template

	if len(pod.Spec.InitContainers) != 1 {
		t.Fatalf("init containers %v, want the sidecar", pod.Spec.InitContainers)
	}
	sc := pod.Spec.InitContainers[0]
	if sc.Name != SidecarName || sc.Image != sidecarImage || !reflect.DeepEqual(sc.Command, []string{"/request-metrics"}) {
		t.Errorf("sidecar %s %s %v", sc.Name, sc.Image, sc.Command)
	}
	if sc.RestartPolicy == nil || *sc.RestartPolicy != corev1.ContainerRestartPolicyAlways {
		t.Error("the sidecar is no native sidecar (restartPolicy Always)")
	}
	want := []string{"--listen=:9101", "--metrics-listen=:9102", "--upstream=http://127.0.0.1:8080", "--drain-delay=5s"}
	if !reflect.DeepEqual(sc.Args, want) {
		t.Errorf("args %q, want %q", sc.Args, want)
	}
	ports := map[string]int32{}
	for _, p := range sc.Ports {
		ports[p.Name] = p.ContainerPort
	}
	if !reflect.DeepEqual(ports, map[string]int32{PortName: 9101, MetricsPortName: 9102}) {
		t.Errorf("sidecar ports %v", ports)
	}
	s := sc.SecurityContext
	if s == nil || !*s.RunAsNonRoot || *s.RunAsUser != 65532 || !*s.ReadOnlyRootFilesystem || *s.AllowPrivilegeEscalation ||
		!reflect.DeepEqual(s.Capabilities.Drop, []corev1.Capability{"ALL"}) || s.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("sidecar security context %+v is not restricted", s)
	}
	if sc.Resources.Limits.Memory().String() != "64Mi" || sc.Resources.Requests.Cpu().String() != "10m" {
		t.Errorf("sidecar resources %v", sc.Resources)
	}

	model := pod.Spec.Containers[0]
	if len(model.Ports) != 1 || model.Ports[0].Name != ModelPortName || model.Ports[0].ContainerPort != 8080 {
		t.Errorf("model ports %v, want %s 8080", model.Ports, ModelPortName)
	}
	for _, p := range []*corev1.Probe{model.StartupProbe, model.ReadinessProbe, model.LivenessProbe} {
		if p.HTTPGet.Port.String() != ModelPortName {
			t.Errorf("a model probe asks port %s, not the model's", p.HTTPGet.Port.String())
		}
	}
	if pod.Labels[v1alpha1.LabelRequestMetrics] != "true" || pod.Annotations[v1alpha1.AnnotationModelName] != "iris" ||
		pod.Labels[v1alpha1.LabelModelVersion] != "7" {
		t.Errorf("labels %v annotations %v: a PodMonitor cannot select or name the pods", pod.Labels, pod.Annotations)
	}
	// The Service targets the name, which the sidecar holds.
	if svc := Service(md); svc.Spec.Ports[0].TargetPort.String() != PortName {
		t.Errorf("service target %s", svc.Spec.Ports[0].TargetPort.String())
	}
}

// Without an image (the operator has none), or without the spec asking,
// the pod template is the one without the feature: existing Deployments do
// not roll out when the operator is upgraded.
func TestNoSidecarWithoutImage(t *testing.T) {
	plain := Deployment(newMD(), Workload{Image: testImage, ModelVersion: "7"}).Spec.Template
	noImage := Deployment(newMD(withRequestMetrics), Workload{Image: testImage, ModelVersion: "7"}).Spec.Template
	if !reflect.DeepEqual(plain, noImage) {
		t.Error("requestMetrics without an image changed the pod template")
	}
	if len(plain.Spec.InitContainers) != 0 || plain.Spec.Containers[0].Ports[0].Name != PortName ||
		plain.Spec.Containers[0].ReadinessProbe.HTTPGet.Port.String() != PortName {
		t.Errorf("the template without the sidecar changed: %+v", plain.Spec)
	}
}

func TestTrafficPortNeverCollides(t *testing.T) {
	for _, c := range []struct{ serving, metrics, want int32 }{
		{8080, 9102, 9101}, {9101, 9102, 9103}, {9101, 9103, 9102}, {9102, 9101, 9103}, {9101, 0, 9103},
	} {
		md := newMD(func(md *v1alpha1.ModelDeployment) {
			md.Spec.Serving.Port, md.Spec.Serving.RequestMetrics.Port = c.serving, c.metrics
		})
		if got := md.Spec.RequestMetricsTrafficPort(); got != c.want {
			t.Errorf("serving %d metrics %d: traffic port %d, want %d", c.serving, c.metrics, got, c.want)
		}
	}
}

func TestNetworkPolicyWithRequestMetrics(t *testing.T) {
	prom := networkingv1.NetworkPolicyPeer{NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/metadata.name": "monitoring"}}}
	for _, c := range []struct {
		name        string
		metricsFrom []networkingv1.NetworkPolicyPeer
		want        []networkingv1.NetworkPolicyPeer
	}{
		{"every namespace by default", nil, []networkingv1.NetworkPolicyPeer{{NamespaceSelector: &metav1.LabelSelector{}}}},
		{"configured scrapers", []networkingv1.NetworkPolicyPeer{prom}, []networkingv1.NetworkPolicyPeer{prom}},
	} {
		t.Run(c.name, func(t *testing.T) {
			md := newMD(withRequestMetrics, func(md *v1alpha1.ModelDeployment) { md.Spec.NetworkPolicy.MetricsFrom = c.metricsFrom })
			np := NetworkPolicy(md)
			if len(np.Spec.Ingress) != 2 {
				t.Fatalf("ingress %+v, want the traffic rule and the metrics rule", np.Spec.Ingress)
			}
			var traffic []string
			for _, p := range np.Spec.Ingress[0].Ports {
				traffic = append(traffic, p.Port.String())
			}
			// The model's port and the proxy's by number; by name, whichever holds it on a pod.
			if !slices.Equal(traffic, []string{"8080", PortName, "9101"}) {
				t.Errorf("traffic ports %v", traffic)
			}
			m := np.Spec.Ingress[1]
			if len(m.Ports) != 1 || m.Ports[0].Port.IntValue() != 9102 || !reflect.DeepEqual(m.From, c.want) {
				t.Errorf("metrics rule %+v, want port 9102 from %+v", m, c.want)
			}
		})
	}
}
