// Package stack starts everything the whole flow needs on this machine: a
// local cluster (source-built control plane, and a real node or kwok's fake
// ones), a real MLflow server with webhooks, a real registry, the operator's
// CRD, and the operator binary itself running against the cluster with its
// kubeconfig. The end-to-end tests and `make demo` use it.
//
// With a real node (the caller has entered test/harness/realnode's
// namespaces), the built images run for real, on the serving base image
// hack/baseimage.sh builds. With kwok nodes, the pod network stand-in
// (test/harness/podnet) answers pod IPs with a real scoring server of each
// pod's image, and the base image is random bytes.
package stack

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"go.uber.org/zap/zapcore"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/scheme"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	v1alpha1 "github.com/mlflow-operator/mlflow-operator/api/v1alpha1"
	"github.com/mlflow-operator/mlflow-operator/test/harness/cluster"
	"github.com/mlflow-operator/mlflow-operator/test/harness/imageregistry"
	"github.com/mlflow-operator/mlflow-operator/test/harness/mlflowserver"
	"github.com/mlflow-operator/mlflow-operator/test/harness/podnet"
	"github.com/mlflow-operator/mlflow-operator/test/harness/procs"
	"github.com/mlflow-operator/mlflow-operator/test/harness/realnode"
)

// WebhookSecret is the secret the stack's MLflow webhooks are signed with.
const WebhookSecret = "local-stack-webhook-secret"

// Options of a stack.
type Options struct {
	// Dir holds everything; a new temporary folder when empty.
	Dir string
	// Progress, when set, hears about each step, for a person watching.
	Progress func(string)
	// Node is what runs the pods: cluster.RealNode needs the process to be
	// inside realnode.Enter's namespaces.
	Node cluster.NodeKind
	// NoOperator leaves the operator out (the caller installs it in the
	// cluster): MLflow and the registry then listen on the real node's IP,
	// which its pods reach, and the stack's URLs name it.
	NoOperator bool
	// OperatorMetrics makes the operator serve its metrics over plain HTTP
	// on a loopback port, at Stack.MetricsURL; without it they are off.
	OperatorMetrics bool
	// OperatorUser, when set, runs the operator as a user of its own by
	// that name (in system:masters, as the admin it is otherwise), whose
	// requests the API server writes to its audit log (Cluster.AuditLog).
	OperatorUser string
	// OperatorArgs are added after the operator's flags (a later flag
	// wins).
	OperatorArgs []string
	// OperatorEnv are NAME=value pairs added to the operator's environment
	// (after this process's own, so they win): GOGC, MEMORY_LIMIT.
	OperatorEnv []string
}

// Stack is everything running.
type Stack struct {
	Dir        string
	Cluster    *cluster.Cluster
	MLflow     *mlflowserver.Server
	Registry   *imageregistry.Registry
	PodNet     *podnet.PodNet
	Operator   *procs.Process
	Kubectl    string
	BaseImage  string
	WebhookURL string
	// MetricsURL is the operator's metrics endpoint with
	// Options.OperatorMetrics, else empty.
	MetricsURL string
	// Node is what runs the pods.
	Node cluster.NodeKind
	// Progress receives one line per step, for a person watching.
	progress func(string)

	operatorArgs       []string
	operatorEnv        []string
	operatorKubeconfig string
	earlierLogs        string
}

// Start starts the stack.
func Start(ctx context.Context, o Options) (*Stack, error) {
	dir, progress := o.Dir, o.Progress
	if progress == nil {
		progress = func(string) {}
	}
	// The clients of the harness log through controller-runtime: errors only.
	ctrllog.SetLogger(zap.New(zap.WriteTo(os.Stderr), zap.Level(zapcore.ErrorLevel)))
	if err := v1alpha1.AddToScheme(scheme.Scheme); err != nil {
		return nil, err
	}
	var err error
	if dir == "" {
		if dir, err = os.MkdirTemp("", "mlflow-operator-stack-"); err != nil {
			return nil, err
		}
	}
	s := &Stack{Dir: dir, progress: progress, Node: o.Node}
	ok := false
	defer func() {
		if !ok {
			s.Stop()
		}
	}()
	step := func(msg string) func() {
		start := time.Now()
		progress(msg + " ...")
		return func() { progress(fmt.Sprintf("%s: done in %s", msg, time.Since(start).Round(100*time.Millisecond))) }
	}

	ip := ""
	if o.NoOperator {
		if o.Node != cluster.RealNode {
			return nil, fmt.Errorf("an operator in the cluster needs the real node")
		}
		ip = realnode.NodeIP
	}
	manager := filepath.Join(dir, "manager")
	if !o.NoOperator {
		done := step("building the operator binary")
		build := exec.Command("go", "build", "-o", manager, "./cmd")
		build.Dir = procs.RepoRoot()
		if out, err := build.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("build the operator: %v\n%s", err, out)
		}
		done()
	}

	done := step("starting the MLflow tracking server")
	if s.MLflow, err = mlflowserver.Start(mlflowserver.Options{Webhooks: true, IP: ip}); err != nil {
		return nil, err
	}
	done()

	done = step("starting the registry")
	if s.Registry, err = imageregistry.Start(imageregistry.Options{IP: ip}); err != nil {
		return nil, err
	}
	done()

	if o.Node == cluster.RealNode {
		done = step("pushing the serving base image (hack/baseimage.sh: Debian, Python, the pinned MLflow)")
		if s.BaseImage, err = pushBaseImage(ctx, s.Registry.Host+"/serving/mlflow:base"); err != nil {
			return nil, err
		}
		done()
		done = step("starting the local cluster (etcd, kube-apiserver, controller-manager, scheduler; a real node: containerd, kubelet, kube-proxy)")
	} else {
		img, _ := random.Image(1024, 1)
		s.BaseImage = s.Registry.Host + "/serving/base:1"
		ref, _ := name.ParseReference(s.BaseImage, name.Insecure)
		if err := remote.Write(ref, img); err != nil {
			return nil, err
		}
		done = step("starting the local cluster (etcd, kube-apiserver, controller-manager, scheduler, kwok)")
	}
	var audit []string
	if o.OperatorUser != "" {
		audit = []string{o.OperatorUser}
	}
	if s.Cluster, err = cluster.Start(ctx, cluster.Options{Dir: filepath.Join(dir, "cluster"), Node: o.Node,
		Registries: []string{s.Registry.Host}, AuditUsers: audit}); err != nil {
		return nil, err
	}
	done()
	s.operatorKubeconfig = s.Cluster.Kubeconfig
	if o.OperatorUser != "" {
		if s.operatorKubeconfig, err = s.Cluster.UserKubeconfig(o.OperatorUser); err != nil {
			return nil, err
		}
	}

	if o.Node != cluster.RealNode {
		py, err := mlflowserver.PythonEnv()
		if err != nil {
			return nil, err
		}
		port, err := procs.FreePort()
		if err != nil {
			return nil, err
		}
		if s.PodNet, err = podnet.Start(s.Cluster.Client, port, py, filepath.Join(dir, "models")); err != nil {
			return nil, err
		}
	}

	done = step("installing the ModelDeployment CRD")
	bin, err := exec.Command(filepath.Join(procs.RepoRoot(), "hack", "controlplane.sh"), "--print-dir").Output()
	if err != nil {
		return nil, err
	}
	s.Kubectl = filepath.Join(strings.TrimSpace(string(bin)), "kubectl")
	if out, err := s.KubectlRun("apply", "--server-side", "-f", filepath.Join(procs.RepoRoot(), "config", "crd", "bases")); err != nil {
		return nil, fmt.Errorf("install the CRD: %v\n%s", err, out)
	}
	if out, err := s.KubectlRun("wait", "--for=condition=Established", "--timeout=60s", "crd/modeldeployments.serving.mlflow-operator.io"); err != nil {
		return nil, fmt.Errorf("the CRD is not established: %v\n%s", err, out)
	}
	done()

	if o.NoOperator {
		ok = true
		return s, nil
	}
	done = step("starting the operator")
	secretFile := filepath.Join(dir, "webhook-secret")
	if err := os.WriteFile(secretFile, []byte(WebhookSecret), 0o600); err != nil {
		return nil, err
	}
	webhookPort, err := procs.FreePort()
	if err != nil {
		return nil, err
	}
	s.WebhookURL = fmt.Sprintf("http://127.0.0.1:%d/webhooks/mlflow", webhookPort)
	tmp := filepath.Join(dir, "tmp")
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return nil, err
	}
	metrics := []string{"--metrics-bind-address=0"}
	if o.OperatorMetrics {
		port, err := procs.FreePort()
		if err != nil {
			return nil, err
		}
		metrics = []string{fmt.Sprintf("--metrics-bind-address=127.0.0.1:%d", port), "--metrics-secure=false"}
		s.MetricsURL = fmt.Sprintf("http://127.0.0.1:%d/metrics", port)
	}
	s.operatorArgs = append([]string{manager, "--leader-elect=false", "--health-probe-bind-address=0",
		fmt.Sprintf("--webhook-bind-address=127.0.0.1:%d", webhookPort), "--webhook-secret-file=" + secretFile,
		"--temp-dir=" + tmp, "--zap-log-level=info"}, metrics...)
	s.operatorArgs = append(s.operatorArgs, o.OperatorArgs...)
	s.operatorEnv = o.OperatorEnv
	if err := s.StartOperator(); err != nil {
		return nil, err
	}
	done()
	ok = true
	return s, nil
}

// ModelDeployment is a ModelDeployment that works on this stack: its MLflow,
// an image repository models/<name> in its registry on its base image, and
// a smoke test timeout that leaves room for `mlflow models serve` to start
// cold. With kwok nodes, the port the pod network stand-in answers on; on
// the real node, small resource requests, so that the pods of several
// scenarios fit one 2-core node.
func (s *Stack) ModelDeployment(namespace, name string, ref v1alpha1.ModelReference, poll time.Duration) *v1alpha1.ModelDeployment {
	md := &v1alpha1.ModelDeployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace},
		Spec: v1alpha1.ModelDeploymentSpec{
			Model:   ref,
			MLflow:  v1alpha1.MLflowConnection{TrackingURI: s.MLflow.URL, PollInterval: &metav1.Duration{Duration: poll}},
			Image:   v1alpha1.ImageSpec{Repository: s.Registry.Host + "/models/" + name, BaseImage: s.BaseImage, InsecureRegistry: true},
			Rollout: v1alpha1.RolloutSpec{SmokeTest: v1alpha1.SmokeTestSpec{Timeout: &metav1.Duration{Duration: 3 * time.Minute}}},
		},
	}
	if s.PodNet != nil {
		md.Spec.Serving.Port = int32(s.PodNet.Port)
	} else {
		md.Spec.Serving.Resources = corev1.ResourceRequirements{
			Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("50m"), corev1.ResourceMemory: resource.MustParse("300Mi")},
			Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("1Gi")},
		}
	}
	return md
}

// pushBaseImage builds the serving base image when hack/baseimage.sh has
// not cached it yet, pushes it to ref and returns it by digest.
func pushBaseImage(ctx context.Context, ref string) (string, error) {
	cmd := exec.CommandContext(ctx, filepath.Join(procs.RepoRoot(), "hack", "baseimage.sh"), "--push", ref)
	var stderr procs.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("hack/baseimage.sh --push %s: %v\n%s", ref, err, stderr.String())
	}
	return strings.TrimSpace(string(out)), nil
}

// StartOperator starts the operator binary (again, after KillOperator). The
// logs of earlier runs stay in OperatorLogs.
func (s *Stack) StartOperator() error {
	if s.Operator != nil {
		if !s.Operator.Exited() {
			return fmt.Errorf("the operator is running")
		}
		s.earlierLogs += s.Operator.Logs.String() + "--- operator restarted ---\n"
	}
	cmd := exec.Command(s.operatorArgs[0], s.operatorArgs[1:]...)
	cmd.Env = append(append(os.Environ(), "KUBECONFIG="+s.operatorKubeconfig), s.operatorEnv...)
	p, err := procs.Start(cmd)
	if err != nil {
		return err
	}
	s.Operator = p
	time.Sleep(2 * time.Second)
	if p.Exited() {
		return fmt.Errorf("the operator exited:\n%s", p.Logs.String())
	}
	return nil
}

// KillOperator kills the operator with SIGKILL, as a node failure or an
// OOM kill would: no shutdown, no cleanup.
func (s *Stack) KillOperator() {
	_ = syscall.Kill(-s.Operator.Cmd.Process.Pid, syscall.SIGKILL)
	<-s.Operator.Done
}

// OperatorLogs is everything the operator printed, across restarts.
func (s *Stack) OperatorLogs() string {
	return s.earlierLogs + s.Operator.Logs.String()
}

// KubectlRun runs kubectl against the cluster.
func (s *Stack) KubectlRun(args ...string) (string, error) {
	out, err := exec.Command(s.Kubectl, append([]string{"--kubeconfig", s.Cluster.Kubeconfig}, args...)...).CombinedOutput()
	return string(out), err
}

// Stop stops everything, in reverse order.
func (s *Stack) Stop() {
	if s.Operator != nil {
		s.Operator.Stop(10 * time.Second)
	}
	if s.PodNet != nil {
		s.PodNet.Close()
	}
	if s.Cluster != nil {
		s.Cluster.Stop()
	}
	if s.Registry != nil {
		s.Registry.Close()
	}
	if s.MLflow != nil {
		s.MLflow.Close()
	}
}

// PIDs of every process the stack runs (each leads its process group), for
// `make demo-down` after a demo that did not stop cleanly.
func (s *Stack) PIDs() []int {
	var out []int
	if s.Operator != nil {
		out = append(out, s.Operator.Cmd.Process.Pid)
	}
	if s.PodNet != nil {
		out = append(out, s.PodNet.PIDs()...)
	}
	if s.Cluster != nil {
		out = append(out, s.Cluster.PIDs()...)
	}
	if s.Registry != nil {
		out = append(out, s.Registry.PID())
	}
	if s.MLflow != nil && s.MLflow.PID() != 0 {
		out = append(out, s.MLflow.PID())
	}
	return out
}
