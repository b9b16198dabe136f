// Package stack starts everything the whole flow needs on this machine: a
// local cluster (source-built control plane, kwok nodes), a real MLflow
// server with webhooks, a real registry, the pod network stand-in, the
// operator's CRD, and the operator binary itself running against the cluster
// with its kubeconfig. The end-to-end tests and `make demo` use it.
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
)

// WebhookSecret is the secret the stack's MLflow webhooks are signed with.
const WebhookSecret = "local-stack-webhook-secret"

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
	// Progress receives one line per step, for a person watching.
	progress func(string)

	operatorArgs []string
	earlierLogs  string
}

// Start starts the stack in dir (a new temporary folder when empty);
// progress, when set, hears about each step.
func Start(ctx context.Context, dir string, progress func(string)) (*Stack, error) {
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
	s := &Stack{Dir: dir, progress: progress}
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

	done := step("building the operator binary")
	manager := filepath.Join(dir, "manager")
	build := exec.Command("go", "build", "-o", manager, "./cmd")
	build.Dir = procs.RepoRoot()
	if out, err := build.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("build the operator: %v\n%s", err, out)
	}
	done()

	done = step("starting the MLflow tracking server")
	if s.MLflow, err = mlflowserver.Start(mlflowserver.Options{Webhooks: true}); err != nil {
		return nil, err
	}
	done()

	done = step("starting the registry")
	if s.Registry, err = imageregistry.Start(imageregistry.Options{}); err != nil {
		return nil, err
	}
	img, _ := random.Image(1024, 1)
	s.BaseImage = s.Registry.Host + "/serving/base:1"
	ref, _ := name.ParseReference(s.BaseImage, name.Insecure)
	if err := remote.Write(ref, img); err != nil {
		return nil, err
	}
	done()

	done = step("starting the local cluster (etcd, kube-apiserver, controller-manager, scheduler, kwok)")
	if s.Cluster, err = cluster.Start(ctx, cluster.Options{Dir: filepath.Join(dir, "cluster")}); err != nil {
		return nil, err
	}
	done()

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
	s.operatorArgs = []string{manager, "--leader-elect=false", "--metrics-bind-address=0", "--health-probe-bind-address=0",
		fmt.Sprintf("--webhook-bind-address=127.0.0.1:%d", webhookPort), "--webhook-secret-file=" + secretFile,
		"--temp-dir=" + tmp, "--zap-log-level=info"}
	if err := s.StartOperator(); err != nil {
		return nil, err
	}
	done()
	ok = true
	return s, nil
}

// ModelDeployment is a ModelDeployment that works on this stack: its MLflow,
// an image repository models/<name> in its registry on its base image, the
// port the pod network stand-in answers on, and a smoke test timeout that
// leaves room for `mlflow models serve` to start cold.
func (s *Stack) ModelDeployment(namespace, name string, ref v1alpha1.ModelReference, poll time.Duration) *v1alpha1.ModelDeployment {
	return &v1alpha1.ModelDeployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace},
		Spec: v1alpha1.ModelDeploymentSpec{
			Model:   ref,
			MLflow:  v1alpha1.MLflowConnection{TrackingURI: s.MLflow.URL, PollInterval: &metav1.Duration{Duration: poll}},
			Image:   v1alpha1.ImageSpec{Repository: s.Registry.Host + "/models/" + name, BaseImage: s.BaseImage, InsecureRegistry: true},
			Serving: v1alpha1.ServingSpec{Port: int32(s.PodNet.Port)},
			Rollout: v1alpha1.RolloutSpec{SmokeTest: v1alpha1.SmokeTestSpec{Timeout: &metav1.Duration{Duration: 3 * time.Minute}}},
		},
	}
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
	cmd.Env = append(os.Environ(), "KUBECONFIG="+s.Cluster.Kubeconfig)
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
