// Package samples checks what a person sees with kubectl: the shipped samples
// are accepted, the invalid ones refused with a readable message, the fields
// documented in `kubectl explain`, and the printer columns shown. It runs the
// kubectl built by hack/controlplane.sh against a real API server.
package samples

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/mlflow-operator/mlflow-operator/test/harness/procs"
	"github.com/mlflow-operator/mlflow-operator/test/harness/testenv"
)

var (
	env        *testenv.Env
	kubeconfig string
	kubectlBin string
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	kubectlBin = os.Getenv("KUBECTL")
	if kubectlBin == "" {
		kubectlBin = filepath.Join(os.Getenv("KUBEBUILDER_ASSETS"), "kubectl")
	}
	if _, err := os.Stat(kubectlBin); err != nil {
		fmt.Fprintf(os.Stderr, "kubectl not found at %s: run `make test` (it builds kubectl from source)\n", kubectlBin)
		return 1
	}
	var err error
	env, err = testenv.Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() { _ = env.Stop() }()
	admin, err := env.ControlPlane.AddUser(envtest.User{Name: "admin", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	data, err := admin.KubeConfig()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	dir, err := os.MkdirTemp("", "kubeconfig")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	kubeconfig = filepath.Join(dir, "config")
	if err := os.WriteFile(kubeconfig, data, 0o600); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return m.Run()
}

func kubectl(args ...string) (string, error) {
	cmd := exec.CommandContext(context.Background(), kubectlBin, append([]string{"--kubeconfig", kubeconfig}, args...)...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func TestSamplesAccepted(t *testing.T) {
	root := procs.RepoRoot()
	out, err := kubectl("apply", "--server-side", "-n", "default", "-k", filepath.Join(root, "config", "samples"))
	if err != nil {
		t.Fatalf("kubectl apply -k config/samples refused: %v\n%s", err, out)
	}
	files, _ := filepath.Glob(filepath.Join(root, "config", "samples", "*.yaml"))
	n := 0
	for _, f := range files {
		if filepath.Base(f) != "kustomization.yaml" {
			n++
		}
	}
	if got := strings.Count(out, "serverside-applied"); got != n || n < 3 {
		t.Errorf("%d of %d samples applied:\n%s", got, n, out)
	}

	// `kubectl get modeldeployments` (and the short name) shows the printer
	// columns; -o wide adds the image and the endpoint.
	out, err = kubectl("get", "md", "-n", "default")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	header := strings.Fields(strings.SplitN(out, "\n", 2)[0])
	if want := []string{"NAME", "MODEL", "TARGET", "SERVING", "READY", "REASON", "AGE"}; strings.Join(header, " ") != strings.Join(want, " ") {
		t.Errorf("columns %v, want %v", header, want)
	}
	if !strings.Contains(out, "churn-classifier") {
		t.Errorf("model names not shown:\n%s", out)
	}
	out, err = kubectl("get", "modeldeployments", "-n", "default", "-o", "wide")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if h := strings.SplitN(out, "\n", 2)[0]; !strings.Contains(h, "IMAGE") || !strings.Contains(h, "ENDPOINT") {
		t.Errorf("-o wide columns: %s", h)
	}
	// The `all` category.
	out, err = kubectl("get", "all", "-n", "default")
	if err != nil || !strings.Contains(out, "modeldeployment.serving.mlflow-operator.io/iris") {
		t.Errorf("kubectl get all does not list ModelDeployments: %v\n%s", err, out)
	}
}

func TestInvalidSamplesRefused(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(procs.RepoRoot(), "test", "config", "samples", "invalid", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no invalid samples: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			want := wantLine(t, f)
			out, err := kubectl("apply", "--server-side", "-n", "default", "-f", f)
			if err == nil {
				t.Fatalf("accepted:\n%s", out)
			}
			if !strings.Contains(out, want) {
				t.Errorf("message does not say %q:\n%s", want, out)
			}
			t.Logf("%s", strings.TrimSpace(out))
		})
	}
}

// wantLine reads the "# want: ..." line of an invalid sample.
func wantLine(t *testing.T, file string) string {
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if w, ok := strings.CutPrefix(s.Text(), "# want: "); ok {
			return w
		}
	}
	t.Fatalf("%s has no '# want:' line", file)
	return ""
}

func TestExplain(t *testing.T) {
	for field, want := range map[string]string{
		"modeldeployment":                           "serves a registered MLflow model",
		"modeldeployment.spec.model.alias":          "Alias to follow",
		"modeldeployment.spec.mlflow.trackingURI":   "http(s) URL of the MLflow tracking server",
		"modeldeployment.spec.image.tagTemplate":    "{version}",
		"modeldeployment.spec.disruption":           "never blocked",
		"modeldeployment.status.lastGood":           "rollbacks",
		"modeldeployment.spec.rollout.autoRollback": "last good version",
		"modeldeployment.spec.rollout.approval":     "who promotes a verified version",
		"modeldeployment.status.awaitingApproval":   "waits for a person's approval",
	} {
		out, err := kubectl("explain", field)
		if err != nil {
			t.Errorf("kubectl explain %s: %v\n%s", field, err, out)
			continue
		}
		if !strings.Contains(strings.Join(strings.Fields(out), " "), want) {
			t.Errorf("kubectl explain %s lacks %q:\n%s", field, want, out)
		}
	}
}
