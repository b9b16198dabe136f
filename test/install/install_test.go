// Package install installs the operator the way a platform team would, on
// the local cluster's real node, and runs the whole flow through it: the
// operator's own image (make image-push, built without Docker) running as a
// pod, first from the release bundle (install.yaml), then from the Helm
// chart with two replicas, a namespace-scoped install and the MLflow webhook
// taken by whichever replica the Service picks.
package install

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/mlflow-operator/mlflow-operator/api/v1alpha1"
	"github.com/mlflow-operator/mlflow-operator/test/harness/cluster"
	"github.com/mlflow-operator/mlflow-operator/test/harness/mlflowserver"
	"github.com/mlflow-operator/mlflow-operator/test/harness/procs"
	"github.com/mlflow-operator/mlflow-operator/test/harness/stack"
	"github.com/mlflow-operator/mlflow-operator/test/harness/testenv"
)

var (
	st  *stack.Stack
	k8s client.Client
	// skip is why the suite cannot run here (no real node).
	skip string
)

func TestMain(m *testing.M) { os.Exit(run(m)) }

func run(m *testing.M) int {
	// make test-e2e GOTESTFLAGS='-run TestX' runs this package too: start
	// nothing for a run that selects none of its tests.
	flag.Parse()
	if f := flag.Lookup("test.run"); f != nil && f.Value.String() != "" {
		if re, err := regexp.Compile(f.Value.String()); err == nil && !re.MatchString("TestInstall") {
			return m.Run()
		}
	}
	node, _, why, err := stack.EnterNode(os.Getenv("E2E_REQUIRE_REAL_NODE") != "")
	if err != nil {
		fmt.Fprintln(os.Stderr, "install:", err)
		return 1
	}
	if node != cluster.RealNode {
		skip = "the operator's pod needs the real node: " + why
		return m.Run()
	}
	if os.Getenv("HELM") == "" {
		fmt.Fprintln(os.Stderr, "install: HELM is not set: run with make test (it builds helm)")
		return 1
	}
	work, err := os.MkdirTemp("", "install-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "install:", err)
		return 1
	}
	defer os.RemoveAll(work)
	st, err = stack.Start(context.Background(), stack.Options{Dir: work, Node: node, NoOperator: true,
		Progress: func(s string) { fmt.Fprintln(os.Stderr, "install:", s) }})
	if err != nil {
		fmt.Fprintln(os.Stderr, "install:", err)
		return 1
	}
	defer st.Stop()
	k8s = st.Cluster.Client
	return m.Run()
}

// sh runs a command from the repository's root and returns its stdout.
func sh(t *testing.T, env []string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = procs.RepoRoot()
	cmd.Env = append(os.Environ(), env...)
	var stderr procs.Buffer
	cmd.Stderr = &stderr
	start := time.Now()
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s\n%s", name, strings.Join(args, " "), err, out, stderr.String())
	}
	t.Logf("%s %s: %s", filepath.Base(name), strings.Join(args, " "), time.Since(start).Round(100*time.Millisecond))
	return string(out)
}

func kubectl(t *testing.T, args ...string) string {
	t.Helper()
	out, err := st.KubectlRun(args...)
	if err != nil {
		t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// release pushes the operator's image to the stack's registry and writes
// the release bundle for it; it returns the bundle's folder.
func release(t *testing.T) (dir, image string) {
	t.Helper()
	repo := st.Registry.Host + "/mlflow-operator"
	sh(t, []string{"IMAGE_INSECURE=1"}, "make", "--no-print-directory", "-s", "image-push", "IMG="+repo+":v0.0.0-e2e")
	digest, err := os.ReadFile(filepath.Join(procs.RepoRoot(), "dist", "image.digest"))
	if err != nil {
		t.Fatal(err)
	}
	dir = t.TempDir()
	sh(t, []string{"VERSION=v0.0.0-e2e", "IMG=" + repo, "RELEASE_DIGEST=" + strings.TrimSpace(string(digest)),
		"RELEASE_OUT_DIR=" + dir, "HELM=" + os.Getenv("HELM"), "KUSTOMIZE=" + os.Getenv("KUSTOMIZE")},
		filepath.Join(procs.RepoRoot(), "hack", "release.sh"))
	return dir, repo + "@" + strings.TrimSpace(string(digest))
}

// waitAvailable waits until a Deployment has replicas available pods of
// its current template, and returns them. When it does not, the failure
// shows the pods' states and their containers' last logs.
func waitAvailable(t *testing.T, ns, name string, replicas int32) []corev1.Pod {
	t.Helper()
	var pods []corev1.Pod
	check := func() error {
		d := &appsv1.Deployment{}
		if err := k8s.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, d); err != nil {
			return err
		}
		if d.Status.AvailableReplicas != replicas || d.Status.UpdatedReplicas != replicas {
			return fmt.Errorf("available %d updated %d of %d; %s", d.Status.AvailableReplicas, d.Status.UpdatedReplicas, replicas, podStates(ns))
		}
		list := &corev1.PodList{}
		if err := k8s.List(context.Background(), list, client.InNamespace(ns), client.MatchingLabels(d.Spec.Selector.MatchLabels)); err != nil {
			return err
		}
		pods = pods[:0]
		for _, p := range list.Items {
			if p.DeletionTimestamp == nil {
				pods = append(pods, p)
			}
		}
		return nil
	}
	deadline := time.Now().Add(4 * time.Minute)
	for {
		err := check()
		if err == nil {
			return pods
		}
		if time.Now().After(deadline) {
			logs, _ := st.KubectlRun("logs", "-n", ns, "--all-containers", "--previous", "--tail=40", "-l", "app.kubernetes.io/name=mlflow-operator")
			current, _ := st.KubectlRun("logs", "-n", ns, "--all-containers", "--tail=40", "-l", "app.kubernetes.io/name=mlflow-operator")
			t.Fatalf("operator %s/%s not available after 4m: %v\nprevious containers' logs:\n%s\ncurrent:\n%s", ns, name, err, logs, current)
		}
		time.Sleep(time.Second)
	}
}

func podStates(ns string) string {
	list := &corev1.PodList{}
	if err := k8s.List(context.Background(), list, client.InNamespace(ns)); err != nil {
		return err.Error()
	}
	var out []string
	for _, p := range list.Items {
		s := string(p.Status.Phase)
		for _, cs := range p.Status.ContainerStatuses {
			if cs.State.Waiting != nil {
				s += "/" + cs.State.Waiting.Reason
			}
			s += fmt.Sprintf(" restarts=%d", cs.RestartCount)
		}
		out = append(out, p.Name+": "+s)
	}
	return strings.Join(out, ", ")
}

// modelDeployment creates a ModelDeployment following model@champion in ns.
func modelDeployment(t *testing.T, ns, model string, poll time.Duration, mutate ...func(*v1alpha1.ModelDeployment)) *v1alpha1.ModelDeployment {
	t.Helper()
	md := st.ModelDeployment(ns, model, v1alpha1.ModelReference{Name: model, Alias: "champion"}, poll)
	md.Spec.Scaling.MinReplicas, md.Spec.Scaling.MaxReplicas = ptr(int32(1)), ptr(int32(1))
	for _, f := range mutate {
		f(md)
	}
	if err := k8s.Create(context.Background(), md); err != nil {
		t.Fatal(err)
	}
	return md
}

func ptr[T any](v T) *T { return &v }

// containerPort is the number behind a Service's targetPort on pod (the
// chart names its ports).
func containerPort(t *testing.T, pod *corev1.Pod, target intstr.IntOrString) int32 {
	t.Helper()
	if target.Type == intstr.Int {
		return target.IntVal
	}
	for _, c := range pod.Spec.Containers {
		for _, p := range c.Ports {
			if p.Name == target.StrVal {
				return p.ContainerPort
			}
		}
	}
	t.Fatalf("pod %s has no port named %q", pod.Name, target.StrVal)
	return 0
}

func waitReady(t *testing.T, md *v1alpha1.ModelDeployment, version string, timeout time.Duration) {
	t.Helper()
	testenv.Eventually(t, timeout, md.Namespace+"/"+md.Name+" Ready on version "+version, func() error {
		m := &v1alpha1.ModelDeployment{}
		if err := k8s.Get(context.Background(), client.ObjectKeyFromObject(md), m); err != nil {
			return err
		}
		c := meta.FindStatusCondition(m.Status.Conditions, v1alpha1.ConditionReady)
		if c == nil || c.Status != metav1.ConditionTrue || m.Status.Serving == nil || m.Status.Serving.Version != version {
			return fmt.Errorf("Ready %+v serving %+v", c, m.Status.Serving)
		}
		return nil
	})
}

func register(t *testing.T, ops ...mlflowserver.Op) []mlflowserver.Result {
	t.Helper()
	res, err := st.MLflow.Fixture(context.Background(), ops...)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func namespace(t *testing.T, name string) {
	t.Helper()
	if err := k8s.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}); err != nil {
		t.Fatal(err)
	}
}

// leaderPod is the pod holding the operator's leader Lease in ns.
func leaderPod(t *testing.T, ns string) string {
	t.Helper()
	lease := &coordinationv1.Lease{}
	if err := k8s.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "mlflow-operator.serving.mlflow-operator.io"}, lease); err != nil {
		t.Fatal(err)
	}
	holder := ""
	if lease.Spec.HolderIdentity != nil {
		holder = *lease.Spec.HolderIdentity
	}
	// controller-runtime's identity is <hostname>_<uuid>; the hostname is the pod's name.
	name, _, _ := strings.Cut(holder, "_")
	return name
}

func TestInstall(t *testing.T) {
	if skip != "" {
		t.Skip(skip)
	}
	dir, image := release(t)
	register(t,
		mlflowserver.Op{"op": "register", "model": "bundled", "seed": 1, "alias": "champion"},
		mlflowserver.Op{"op": "register", "model": "charted", "seed": 1, "alias": "champion"},
		mlflowserver.Op{"op": "register", "model": "charted", "seed": 2},
		mlflowserver.Op{"op": "register", "model": "charted", "seed": 3},
	)

	t.Run("bundle", func(t *testing.T) {
		kubectl(t, "apply", "--server-side", "-f", filepath.Join(dir, "install.yaml"))
		// Whatever happens, the next install starts from a clean cluster.
		defer func() {
			_, _ = st.KubectlRun("delete", "--wait", "--timeout=3m", "--ignore-not-found", "-f", filepath.Join(dir, "install.yaml"))
		}()
		pods := waitAvailable(t, "mlflow-operator-system", "mlflow-operator-controller-manager", 1)
		if got := pods[0].Spec.Containers[0].Image; got != image {
			t.Errorf("the operator runs %s, want the released %s", got, image)
		}
		namespace(t, "bundle")
		md := modelDeployment(t, "bundle", "bundled", time.Minute)
		waitReady(t, md, "1", 5*time.Minute)
		logs := kubectl(t, "logs", "-n", "mlflow-operator-system", "deploy/mlflow-operator-controller-manager")
		if !strings.Contains(logs, "Starting the manager") {
			t.Errorf("the operator's log does not show it starting:\n%s", logs)
		}
	})

	t.Run("helm", func(t *testing.T) {
		for _, ns := range []string{"team-b", "team-c"} {
			namespace(t, ns)
		}
		const opNS = "ops"
		chart := filepath.Join(dir, "mlflow-operator-0.0.0-e2e.tgz")
		sh(t, nil, os.Getenv("HELM"), "--kubeconfig", st.Cluster.Kubeconfig, "install", "mlflow-operator", chart,
			"--namespace", opNS, "--create-namespace", "--wait", "--timeout", "5m",
			"--set", "replicaCount=2", "--set", "watchNamespaces={team-b}",
			"--set", "webhook.enabled=true", "--set", "webhook.secret="+stack.WebhookSecret)
		waitAvailable(t, opNS, "mlflow-operator", 2)
		prom := startPrometheus(t)

		// Secrets only where the operator works.
		sa := "system:serviceaccount:" + opNS + ":mlflow-operator"
		if out, _ := st.KubectlRun("auth", "can-i", "get", "secrets", "-n", "team-b", "--as", sa); strings.TrimSpace(out) != "yes" {
			t.Errorf("can-i get secrets in team-b: %q, want yes", out)
		}
		if out, _ := st.KubectlRun("auth", "can-i", "get", "secrets", "-n", "team-c", "--as", sa); strings.TrimSpace(out) != "no" {
			t.Errorf("can-i get secrets in team-c: %q, want no", out)
		}

		svc := &corev1.Service{}
		if err := k8s.Get(context.Background(), client.ObjectKey{Namespace: opNS, Name: "mlflow-operator-webhooks"}, svc); err != nil {
			t.Fatal(err)
		}
		url := fmt.Sprintf("http://%s:%d/webhooks/mlflow", svc.Spec.ClusterIP, svc.Spec.Ports[0].Port)
		hook := register(t, mlflowserver.Op{"op": "create_webhook", "name": "charted", "url": url, "secret": stack.WebhookSecret,
			"events": []string{"model_version_alias.created"}})

		// An hour between polls: only webhooks move the versions.
		// Its server dies in production pods of a "dying" version (the
		// role from the downward API), to be rolled back at the end.
		md := modelDeployment(t, "team-b", "charted", time.Hour, func(md *v1alpha1.ModelDeployment) {
			md.Spec.Serving.RequestMetrics.Enabled = true
			md.Spec.Serving.Env = []corev1.EnvVar{{Name: "POD_ROLE", ValueFrom: &corev1.EnvVarSource{
				FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.labels['" + v1alpha1.LabelRole + "']"}}}}
		})
		ignored := modelDeployment(t, "team-c", "charted", time.Hour)
		waitReady(t, md, "1", 5*time.Minute)

		moved := time.Now()
		register(t, mlflowserver.Op{"op": "set_alias", "model": "charted", "alias": "champion", "version": "2"})
		waitReady(t, md, "2", 4*time.Minute)
		t.Logf("MEASURED alias moved -> Ready on v2 through the webhook Service (2 replicas): %s", time.Since(moved).Round(time.Second))

		// A delivery that reaches the standby (the Service may pick
		// either): MLflow's webhook now names the standby pod itself, and
		// the Service's webhook goes, so that v3 can only arrive through
		// the relay (MLflow delivers in the background, in no set order).
		register(t, mlflowserver.Op{"op": "delete_webhook", "webhook_id": hook[0].WebhookID})
		leader := leaderPod(t, opNS)
		pods := waitAvailable(t, opNS, "mlflow-operator", 2)
		var standby *corev1.Pod
		for i := range pods {
			if pods[i].Name != leader {
				standby = &pods[i]
			}
		}
		if standby == nil || leader == "" {
			t.Fatalf("no standby: leader %q, pods %d", leader, len(pods))
		}
		register(t, mlflowserver.Op{"op": "create_webhook", "name": "standby", "url": fmt.Sprintf("http://%s:%d/webhooks/mlflow", standby.Status.PodIP, containerPort(t, standby, svc.Spec.Ports[0].TargetPort)),
			"secret": stack.WebhookSecret, "events": []string{"model_version_alias.created"}})
		moved = time.Now()
		register(t, mlflowserver.Op{"op": "set_alias", "model": "charted", "alias": "champion", "version": "3"})
		waitReady(t, md, "3", 4*time.Minute)
		t.Logf("MEASURED alias moved -> Ready on v3, delivered to the standby %s and relayed: %s", standby.Name, time.Since(moved).Round(time.Second))
		if logs := kubectl(t, "logs", "-n", opNS, standby.Name); !strings.Contains(logs, "relayed to the leader") {
			previous, _ := st.KubectlRun("logs", "-n", opNS, "--previous", "--tail=60", standby.Name)
			t.Errorf("the standby did not relay a delivery (pods: %s):\n%s\nprevious container:\n%s", podStates(opNS), logs, previous)
		}

		checkMetrics(t, prom, md)

		// team-c is not watched: its ModelDeployment was never touched.
		m := &v1alpha1.ModelDeployment{}
		if err := k8s.Get(context.Background(), client.ObjectKeyFromObject(ignored), m); err != nil {
			t.Fatal(err)
		}
		if len(m.Status.Conditions) != 0 || m.Status.ObservedGeneration != 0 {
			t.Errorf("a ModelDeployment outside the watched namespaces has a status: %+v", m.Status)
		}
		sh(t, nil, os.Getenv("HELM"), "--kubeconfig", st.Cluster.Kubeconfig, "uninstall", "mlflow-operator", "--namespace", opNS, "--wait")
	})
}
