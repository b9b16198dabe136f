package controllers_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/mlflow-operator/mlflow-operator/api/v1alpha1"
	"github.com/mlflow-operator/mlflow-operator/internal/resources"
	"github.com/mlflow-operator/mlflow-operator/test/harness/fixtures"
)

func enableRequestMetrics(md *v1alpha1.ModelDeployment) {
	md.Spec.Serving.RequestMetrics.Enabled = true
}

func sidecarOf(d *appsv1.Deployment) *corev1.Container {
	for i, c := range d.Spec.Template.Spec.InitContainers {
		if c.Name == resources.SidecarName {
			return &d.Spec.Template.Spec.InitContainers[i]
		}
	}
	return nil
}

// The API server takes the native sidecar; the Service's named target and
// the NetworkPolicy reach it; turning the feature off takes it away again.
func TestRequestMetricsSidecar(t *testing.T) {
	ctx := context.Background()
	md := setup(t, enableRequestMetrics)
	d := getDeployment(t, md)
	sc := sidecarOf(d)
	if sc == nil {
		t.Fatalf("no request-metrics sidecar in %+v", d.Spec.Template.Spec.InitContainers)
	}
	if sc.Image != sidecarImage || ptr.Deref(sc.RestartPolicy, "") != corev1.ContainerRestartPolicyAlways ||
		strings.Join(sc.Command, " ") != "/request-metrics" {
		t.Errorf("sidecar %s %v restartPolicy %v", sc.Image, sc.Command, sc.RestartPolicy)
	}
	ports := map[string]int32{}
	for _, p := range sc.Ports {
		ports[p.Name] = p.ContainerPort
	}
	if ports[resources.PortName] != 9101 || ports[resources.MetricsPortName] != 9102 {
		t.Errorf("sidecar ports %v", ports)
	}
	sec := sc.SecurityContext
	if sec == nil || !ptr.Deref(sec.RunAsNonRoot, false) || ptr.Deref(sec.RunAsUser, 0) != 65532 || !ptr.Deref(sec.ReadOnlyRootFilesystem, false) ||
		ptr.Deref(sec.AllowPrivilegeEscalation, true) || sec.Capabilities == nil || len(sec.Capabilities.Drop) != 1 || sec.Capabilities.Drop[0] != "ALL" ||
		sec.SeccompProfile == nil || sec.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("sidecar security context %+v", sec)
	}
	model := d.Spec.Template.Spec.Containers[0]
	if model.Ports[0].Name != resources.ModelPortName || model.ReadinessProbe.HTTPGet.Port.String() != resources.ModelPortName {
		t.Errorf("the model container's port %v and probe %v: want them on %q", model.Ports, model.ReadinessProbe.HTTPGet.Port, resources.ModelPortName)
	}
	if d.Spec.Template.Annotations[v1alpha1.AnnotationModelName] != md.Spec.Model.Name || d.Spec.Template.Labels[v1alpha1.LabelRequestMetrics] != "true" {
		t.Errorf("pod labels %v annotations %v", d.Spec.Template.Labels, d.Spec.Template.Annotations)
	}

	svc := &corev1.Service{}
	np := &networkingv1.NetworkPolicy{}
	key := client.ObjectKeyFromObject(md)
	eventually(t, "Service and NetworkPolicy", func() error {
		if err := k8s.Get(ctx, key, svc); err != nil {
			return err
		}
		return k8s.Get(ctx, key, np)
	})
	if svc.Spec.Ports[0].TargetPort.String() != resources.PortName {
		t.Errorf("the Service targets %s, not the name the sidecar holds", svc.Spec.Ports[0].TargetPort.String())
	}
	admitted := map[string]bool{}
	for _, r := range np.Spec.Ingress {
		for _, p := range r.Ports {
			admitted[p.Port.String()] = true
		}
	}
	for _, p := range []string{resources.PortName, "9101", "9102", "8080"} {
		if !admitted[p] {
			t.Errorf("the NetworkPolicy does not admit port %s: %+v", p, np.Spec.Ingress)
		}
	}
	eventually(t, "RequestMetrics condition True", func() error {
		return wantCondition(getMD(t, md), v1alpha1.ConditionRequestMetrics, metav1.ConditionTrue, v1alpha1.ReasonSidecarAdded)
	})

	updateMD(t, md, func(m *v1alpha1.ModelDeployment) { m.Spec.Serving.RequestMetrics.Enabled = false })
	eventually(t, "sidecar removed", func() error {
		if d := getDeployment(t, md); sidecarOf(d) != nil || d.Spec.Template.Spec.Containers[0].Ports[0].Name != resources.PortName {
			return fmt.Errorf("template still has the sidecar or the renamed port")
		}
		if c := condition(getMD(t, md), v1alpha1.ConditionRequestMetrics); c != nil {
			return fmt.Errorf("RequestMetrics condition %+v still there", c)
		}
		return nil
	})
}

// An operator without the sidecar's image serves the model anyway, and
// says why there are no request metrics.
func TestRequestMetricsWithoutImageStillServes(t *testing.T) {
	restartOperator(t, reconciler(""))
	md := setup(t, enableRequestMetrics)
	d := getDeployment(t, md)
	if len(d.Spec.Template.Spec.InitContainers) != 0 || d.Spec.Template.Spec.Containers[0].Ports[0].Name != resources.PortName ||
		image(d) != imageV1 {
		t.Errorf("without an image the template must be the plain one: %+v", d.Spec.Template.Spec)
	}
	eventually(t, "RequestMetrics False with the reason", func() error {
		m := getMD(t, md)
		if err := wantCondition(m, v1alpha1.ConditionRequestMetrics, metav1.ConditionFalse, v1alpha1.ReasonSidecarImageMissing); err != nil {
			return err
		}
		if c := condition(m, v1alpha1.ConditionRequestMetrics); !strings.Contains(c.Message, "--request-metrics-image") {
			return fmt.Errorf("message %q does not say what to set", c.Message)
		}
		if countEvents(t, md, v1alpha1.ReasonSidecarImageMissing) == 0 {
			return fmt.Errorf("no %s event", v1alpha1.ReasonSidecarImageMissing)
		}
		return nil
	})
	completeRollout(t, md)
	eventually(t, "Ready although the sidecar is missing", func() error {
		return wantCondition(getMD(t, md), v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonSucceeded)
	})
}

// The API server refuses a metrics port equal to the serving port.
func TestRequestMetricsPortMustDifferFromServingPort(t *testing.T) {
	md := fixtures.Valid(namespace(t), "iris")
	md.Spec.Serving.Port = 9000
	md.Spec.Serving.RequestMetrics = v1alpha1.RequestMetricsSpec{Enabled: true, Port: 9000}
	err := k8s.Create(context.Background(), md)
	if err == nil || !strings.Contains(err.Error(), "requestMetrics.port must differ from port") {
		t.Fatalf("created with the metrics port on the serving port: %v", err)
	}
}
