package realnode_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/mlflow-operator/mlflow-operator/test/harness/cluster"
	"github.com/mlflow-operator/mlflow-operator/test/harness/imageregistry"
	"github.com/mlflow-operator/mlflow-operator/test/harness/procs"
	"github.com/mlflow-operator/mlflow-operator/test/harness/realnode"
	"github.com/mlflow-operator/mlflow-operator/test/harness/testenv"
)

// TestRealNode runs a restricted workload from the test registry on a real
// kubelet + containerd + runc node and checks what the end-to-end tests will
// rely on: the node gets Ready, pods run and get Ready, a pod IP and a
// ClusterIP answer from the namespace, kubectl logs and exec reach the
// container, the container is really confined, and Stop leaves no process,
// mount or cgroup (Enter checks the host after the whole run).
func TestRealNode(t *testing.T) {
	ns := requireNamespace(t)
	ctx := context.Background()
	kubectl := controlPlaneBinary(t, "kubectl")
	server := buildHello(t)

	reg, err := imageregistry.Start(imageregistry.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	start := time.Now()
	c, err := cluster.Start(ctx, cluster.Options{Node: cluster.RealNode, Registries: []string{reg.Host}})
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	defer func() {
		if t.Failed() {
			t.Logf("component logs:\n%s", c.Logs())
		}
		if !stopped {
			c.Stop()
		}
	}()
	t.Logf("MEASURED cluster with a real node up in %s", time.Since(start).Round(time.Millisecond))
	for _, m := range c.Milestones {
		t.Logf("  %-22s at %s", m.Name, m.At.Round(time.Millisecond))
	}
	k := c.Client

	image := reg.Host + "/realnode-test/hello:v1"
	if _, err := realnode.PushBinary(ctx, image, server, v1.Config{User: "65532:65532", Env: []string{"HOME=/tmp"}}); err != nil {
		t.Fatal(err)
	}
	// The restricted Pod Security Standard is enforced on the namespace: the
	// API server refuses a pod that is not confined.
	namespace := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "realnode-test",
		Labels: map[string]string{"pod-security.kubernetes.io/enforce": "restricted"}}}
	if err := k.Create(ctx, namespace); err != nil {
		t.Fatal(err)
	}

	d := helloDeployment(namespace.Name, image, 2)
	coldStart := time.Now()
	if err := k.Create(ctx, d); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 120*time.Second, "2 pods Ready", readyReplicas(k, d, 2))
	t.Logf("MEASURED cold pod start (pause and image pulled): Deployment created -> 2/2 Ready in %s", time.Since(coldStart).Round(time.Millisecond))

	pods := &corev1.PodList{}
	if err := k.List(ctx, pods, client.InNamespace(namespace.Name), client.MatchingLabels{"app": "hello"}); err != nil {
		t.Fatal(err)
	}
	_, podNet, _ := net.ParseCIDR(realnode.PodCIDR)
	for _, p := range pods.Items {
		ip := net.ParseIP(p.Status.PodIP)
		if ip == nil || !podNet.Contains(ip) {
			t.Fatalf("pod %s has IP %q, want one in %s", p.Name, p.Status.PodIP, realnode.PodCIDR)
		}
		if body := get(t, "http://"+net.JoinHostPort(p.Status.PodIP, "8080")+"/", 10*time.Second); !strings.Contains(body, "hello from "+p.Name) {
			t.Errorf("pod %s answered %q", p.Name, body)
		}
	}
	pod := pods.Items[0].Name

	// The server runs as the pod says, really confined: checked on the
	// process itself, found through the node's cgroups.
	checkConfined(t, ns)
	out := run(t, kubectl, "--kubeconfig", c.Kubeconfig, "-n", namespace.Name, "exec", pod, "--", "/hello", "id")
	for _, want := range []string{"uid=65532 gid=65532", "Seccomp: 2", "CapEff: 0000000000000000", "NoNewPrivs: 1", "rootfs read-only"} {
		if !strings.Contains(out, want) {
			t.Errorf("kubectl exec %s -- /hello id: no %q in:\n%s", pod, want, out)
		}
	}

	// A ClusterIP Service answers through kube-proxy's rules.
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "hello", Namespace: namespace.Name},
		Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "hello"},
			Ports: []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromInt32(8080)}}}}
	if err := k.Create(ctx, svc); err != nil {
		t.Fatal(err)
	}
	serviceStart := time.Now()
	if body := get(t, "http://"+svc.Spec.ClusterIP+"/", 30*time.Second); !strings.HasPrefix(body, "hello from hello-") {
		t.Errorf("ClusterIP %s answered %q", svc.Spec.ClusterIP, body)
	}
	t.Logf("MEASURED ClusterIP %s answered %s after the Service was created", svc.Spec.ClusterIP, time.Since(serviceStart).Round(time.Millisecond))

	// kubectl logs: API server -> kubelet -> the container's log file.
	logs := run(t, kubectl, "--kubeconfig", c.Kubeconfig, "-n", namespace.Name, "logs", pod)
	if !strings.Contains(logs, "listening on :8080 as uid 65532") || !strings.Contains(logs, "GET / from") {
		t.Errorf("kubectl logs %s:\n%s", pod, logs)
	}

	// A warm start: image and sandbox image already on the node.
	warmStart := time.Now()
	if err := k.Patch(ctx, d, client.RawPatch("application/merge-patch+json", []byte(`{"spec":{"replicas":3}}`))); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 60*time.Second, "3 pods Ready", readyReplicas(k, d, 3))
	t.Logf("MEASURED warm pod start: scaled 2 -> 3, new pod Ready in %s", time.Since(warmStart).Round(time.Millisecond))

	// Stop leaves nothing in the namespace: no process of the node, no pod,
	// no mount in its folder, no cgroup below the root, no folder.
	pids := c.PIDs()
	dir := c.Dir
	c.Stop()
	stopped = true
	for _, pid := range pids {
		if err := syscall.Kill(pid, 0); err == nil {
			t.Errorf("process %d still runs after Stop", pid)
		}
	}
	if p := ns.Procs(""); len(p) > 0 {
		t.Errorf("processes left in the node's cgroups: %v", p)
	}
	if m := realnode.Mounts(dir); len(m) > 0 {
		t.Errorf("mounts left: %v", m)
	}
	for _, h := range ns.Hierarchies {
		if entries, _ := filepath.Glob(filepath.Join(h, ns.CgroupRoot, "*", "cgroup.procs")); len(entries) > 0 {
			t.Errorf("cgroups left below %s: %v", filepath.Join(h, ns.CgroupRoot), entries)
		}
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("%s left behind", dir)
	}
}

func helloDeployment(namespace, image string, replicas int32) *appsv1.Deployment {
	labels := map[string]string{"app": "hello"}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "hello", Namespace: namespace},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(replicas),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					TerminationGracePeriodSeconds: ptr.To[int64](5),
					SecurityContext: &corev1.PodSecurityContext{
						RunAsNonRoot: ptr.To(true), RunAsUser: ptr.To[int64](65532), RunAsGroup: ptr.To[int64](65532),
						SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
					},
					Containers: []corev1.Container{{
						Name: "hello", Image: image,
						Ports: []corev1.ContainerPort{{ContainerPort: 8080}},
						ReadinessProbe: &corev1.Probe{
							ProbeHandler:  corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: intstr.FromInt32(8080)}},
							PeriodSeconds: 1,
						},
						SecurityContext: &corev1.SecurityContext{
							AllowPrivilegeEscalation: ptr.To(false), ReadOnlyRootFilesystem: ptr.To(true),
							Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
						},
					}},
				},
			},
		},
	}
}

func readyReplicas(k client.Client, d *appsv1.Deployment, n int32) func() error {
	return func() error {
		if err := k.Get(context.Background(), client.ObjectKeyFromObject(d), d); err != nil {
			return err
		}
		if s := d.Status; s.ObservedGeneration < d.Generation || s.ReadyReplicas != n || s.UpdatedReplicas != n {
			return fmt.Errorf("status %+v", s)
		}
		return nil
	}
}

// get fetches url, retrying until it answers 200 or timeout passes. Each
// try is short: before kube-proxy's rules exist a SYN to a ClusterIP is
// dropped, and waiting for its retransmission would only blur the time
// measured.
func get(t *testing.T, url string, timeout time.Duration) string {
	t.Helper()
	hc := &http.Client{Timeout: 300 * time.Millisecond}
	var body string
	testenv.Eventually(t, timeout, "GET "+url, func() error {
		resp, err := hc.Get(url)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			return err
		}
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("%s: %s", resp.Status, b)
		}
		body = string(b)
		return nil
	})
	return body
}

// checkConfined reads /proc of the server processes in the node's pods:
// uid 65532, no capability, no new privileges, seccomp filtering.
func checkConfined(t *testing.T, ns *realnode.Namespace) {
	t.Helper()
	servers := 0
	for _, pid := range ns.Procs("kubepods") {
		if exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid)); exe != "/hello" {
			continue // the pause processes
		}
		servers++
		status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
		if err != nil {
			t.Fatal(err)
		}
		fields := map[string]string{}
		for _, l := range strings.Split(string(status), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok {
				fields[k] = strings.Join(strings.Fields(v), " ")
			}
		}
		for k, want := range map[string]string{"Uid": "65532 65532 65532 65532", "CapEff": "0000000000000000",
			"CapBnd": "0000000000000000", "NoNewPrivs": "1", "Seccomp": "2"} {
			if fields[k] != want {
				t.Errorf("server process %d: %s is %q, want %q", pid, k, fields[k], want)
			}
		}
	}
	if servers < 2 {
		t.Errorf("found %d server processes in the node's cgroups, want 2", servers)
	}
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", filepath.Base(name), strings.Join(args, " "), err, out)
	}
	return string(out)
}

func controlPlaneBinary(t *testing.T, name string) string {
	t.Helper()
	out, err := exec.Command(filepath.Join(procs.RepoRoot(), "hack", "controlplane.sh"), "--print-dir").Output()
	if err != nil {
		t.Fatalf("hack/controlplane.sh --print-dir: %v", err)
	}
	p := filepath.Join(strings.TrimSpace(string(out)), name)
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("%s is not built: run `make controlplane` or hack/controlplane.sh %s", name, name)
	}
	return p
}

// buildHello builds the workload, a static Go server, from testdata.
func buildHello(t *testing.T) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "hello")
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", out, "./testdata/hello")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./testdata/hello: %v\n%s", err, b)
	}
	return out
}
