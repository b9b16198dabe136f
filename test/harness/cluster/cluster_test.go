package cluster

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"syscall"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/mlflow-operator/mlflow-operator/test/harness/testenv"
)

func deployment(name, image string, replicas int32, podLabels map[string]string) *appsv1.Deployment {
	labels := map[string]string{"app": name}
	tmplLabels := map[string]string{"app": name}
	for k, v := range podLabels {
		tmplLabels[k] = v
	}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(replicas),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Strategy: appsv1.DeploymentStrategy{Type: appsv1.RollingUpdateDeploymentStrategyType},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: tmplLabels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: image}}},
			},
		},
	}
}

// TestLocalCluster brings a whole cluster up from the source-built binaries
// and checks what the end-to-end tests rely on: Deployments roll out on kwok
// nodes, pods get loopback IPs, the garbage collector works, the chaos label
// fails pods, and Stop leaves nothing behind.
func TestLocalCluster(t *testing.T) {
	ctx := context.Background()
	start := time.Now()
	c, err := Start(ctx, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("MEASURED local cluster up in %s", time.Since(start).Round(time.Millisecond))
	stopped := false
	defer func() {
		if !stopped {
			c.Stop()
		}
	}()
	defer func() {
		if t.Failed() {
			t.Logf("component logs:\n%s", c.Logs())
		}
	}()
	k := c.Client

	d := deployment("web", "example.com/web:1", 3, nil)
	if err := k.Create(ctx, d); err != nil {
		t.Fatal(err)
	}
	rolledOut := func(image string) func() error {
		return func() error {
			if err := k.Get(ctx, client.ObjectKeyFromObject(d), d); err != nil {
				return err
			}
			s := d.Status
			if d.Spec.Template.Spec.Containers[0].Image != image || s.ObservedGeneration < d.Generation ||
				s.UpdatedReplicas != 3 || s.AvailableReplicas != 3 || s.Replicas != 3 {
				return fmt.Errorf("status %+v", s)
			}
			return nil
		}
	}
	testenv.Eventually(t, 60*time.Second, "3 pods available", rolledOut("example.com/web:1"))

	pods := &corev1.PodList{}
	if err := k.List(ctx, pods, client.InNamespace("default"), client.MatchingLabels{"app": "web"}); err != nil {
		t.Fatal(err)
	}
	_, loop, _ := net.ParseCIDR("127.1.0.0/16")
	nodes := map[string]bool{}
	for _, p := range pods.Items {
		if ip := net.ParseIP(p.Status.PodIP); ip == nil || !loop.Contains(ip) {
			t.Errorf("pod %s has IP %q, want one in 127.1.0.0/16", p.Name, p.Status.PodIP)
		}
		nodes[p.Spec.NodeName] = true
	}
	if len(nodes) < 2 {
		t.Logf("pods on %d node(s): %v", len(nodes), nodes)
	}

	// A rolling update finishes.
	d.Spec.Template.Spec.Containers[0].Image = "example.com/web:2"
	if err := k.Update(ctx, d); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 60*time.Second, "rolled out to :2", rolledOut("example.com/web:2"))

	// The chaos label fails a pod's container.
	chaos := deployment("chaos", "example.com/broken:1", 1, map[string]string{ChaosLabel: "true"})
	if err := k.Create(ctx, chaos); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 60*time.Second, "chaos pod fails", func() error {
		pods := &corev1.PodList{}
		if err := k.List(ctx, pods, client.InNamespace("default"), client.MatchingLabels{"app": "chaos"}); err != nil {
			return err
		}
		for _, p := range pods.Items {
			for _, cs := range p.Status.ContainerStatuses {
				if cs.State.Terminated != nil || cs.State.Waiting != nil || cs.RestartCount > 0 {
					return nil
				}
			}
		}
		return fmt.Errorf("no failed container yet")
	})

	// The crash-version label fails the production pods of that version
	// only: not another version's, not a candidate's.
	const version, role = "serving.mlflow-operator.io/model-version", "serving.mlflow-operator.io/role"
	crashing := map[string]map[string]string{
		"v3-production": {CrashVersionLabel: "3", version: "3", role: "production"},
		"v2-production": {CrashVersionLabel: "3", version: "2", role: "production"},
		"v3-candidate":  {CrashVersionLabel: "3", version: "3", role: "candidate"},
	}
	for name, labels := range crashing {
		if err := k.Create(ctx, deployment(name, "example.com/model:1", 1, labels)); err != nil {
			t.Fatal(err)
		}
	}
	phaseOf := func(app string) (corev1.PodPhase, error) {
		pods := &corev1.PodList{}
		if err := k.List(ctx, pods, client.InNamespace("default"), client.MatchingLabels{"app": app}); err != nil {
			return "", err
		}
		for _, p := range pods.Items {
			if p.Status.Phase == corev1.PodFailed {
				return corev1.PodFailed, nil
			}
		}
		if len(pods.Items) == 0 {
			return "", fmt.Errorf("no pod of %s yet", app)
		}
		return pods.Items[0].Status.Phase, nil
	}
	testenv.Eventually(t, 60*time.Second, "the crash version's production pod fails", func() error {
		if p, err := phaseOf("v3-production"); err != nil || p != corev1.PodFailed {
			return fmt.Errorf("phase %q %v", p, err)
		}
		return nil
	})
	// The others run (kwok starts pods after a random delay, longer when
	// the machine is busy), and keep running while the crash version's pod
	// has failed: the chaos stage picks only that one.
	for _, app := range []string{"v2-production", "v3-candidate"} {
		testenv.Eventually(t, 60*time.Second, app+" running", func() error {
			if p, err := phaseOf(app); err != nil || p != corev1.PodRunning {
				return fmt.Errorf("phase %q %v", p, err)
			}
			return nil
		})
	}
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		for _, app := range []string{"v2-production", "v3-candidate"} {
			if p, err := phaseOf(app); err != nil || p != corev1.PodRunning {
				t.Fatalf("%s: phase %q (%v), want Running", app, p, err)
			}
		}
		time.Sleep(200 * time.Millisecond)
	}

	// The garbage collector removes what a deleted Deployment owned.
	if err := k.Delete(ctx, d, client.PropagationPolicy(metav1.DeletePropagationForeground)); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 60*time.Second, "pods collected", func() error {
		rs := &appsv1.ReplicaSetList{}
		if err := k.List(ctx, rs, client.InNamespace("default"), client.MatchingLabels{"app": "web"}); err != nil {
			return err
		}
		pods := &corev1.PodList{}
		if err := k.List(ctx, pods, client.InNamespace("default"), client.MatchingLabels{"app": "web"}); err != nil {
			return err
		}
		if len(rs.Items)+len(pods.Items) > 0 {
			return fmt.Errorf("%d replica sets and %d pods left", len(rs.Items), len(pods.Items))
		}
		if err := k.Get(ctx, client.ObjectKeyFromObject(d), &appsv1.Deployment{}); !apierrors.IsNotFound(err) {
			return fmt.Errorf("deployment still there: %v", err)
		}
		return nil
	})

	pids := c.PIDs()
	dir := c.Dir
	apiURL, err := url.Parse(c.Config.Host)
	if err != nil {
		t.Fatal(err)
	}
	c.Stop()
	stopped = true
	for _, pid := range pids {
		if err := syscall.Kill(pid, 0); err == nil {
			t.Errorf("process %d still runs after Stop", pid)
		}
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("%s left behind", dir)
	}
	// The API server's port is free again.
	l, err := net.Listen("tcp", apiURL.Host)
	if err != nil {
		t.Errorf("the kube-apiserver's address %s is still taken after Stop: %v", apiURL.Host, err)
	} else {
		l.Close()
	}
}
