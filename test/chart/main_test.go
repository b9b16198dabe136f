// Package chart tests what charts/mlflow-operator and the release bundle
// ship: helm lint, golden `helm template` outputs for a matrix of values,
// semantic checks of the rendered objects, values refused by the schema,
// a server-side dry-run apply on a real kube-apiserver (envtest), and
// hack/release.sh end to end.
//
// It needs HELM, the path of the helm binary (`make test` sets it from
// hack/helm.sh); without it every test is skipped, with a helm that does not
// run every test fails. The apply tests need KUBEBUILDER_ASSETS.
//
// Regenerate the golden files after a deliberate change:
//
//	HELM=$(hack/helm.sh --print-path) go test ./test/chart/ -run TestGolden -args -update
package chart

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"

	"github.com/mlflow-operator/mlflow-operator/test/harness/procs"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the current chart")

var (
	helmBin  string
	helmErr  error
	chartDir string
	helmHome string
)

// The release name and namespace every rendering uses.
const (
	releaseName = "mlflow-operator"
	releaseNS   = "mlflow-operator-system"
)

func TestMain(m *testing.M) {
	flag.Parse()
	os.Exit(run(m))
}

func run(m *testing.M) int {
	chartDir = filepath.Join(procs.RepoRoot(), "charts", "mlflow-operator")
	helmBin = os.Getenv("HELM")
	if helmBin != "" {
		dir, err := os.MkdirTemp("", "helm-home")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		helmHome = dir
		// A set HELM that does not run fails every test (requireHelm).
		if out, err := exec.Command(helmBin, "version", "--short").CombinedOutput(); err != nil {
			helmErr = fmt.Errorf("HELM=%s does not run: %v\n%s", helmBin, err, out)
		}
	}
	code := m.Run()
	stopEnv()
	return code
}

// requireHelm skips the test when HELM is unset and fails it when the
// binary is broken.
func requireHelm(t *testing.T) {
	t.Helper()
	if helmBin == "" {
		t.Skip("HELM is not set: run `make test`, or HELM=$(hack/helm.sh --print-path) go test ./test/chart/ (hack/helm.sh builds it)")
	}
	if helmErr != nil {
		t.Fatal(helmErr)
	}
}

// helm runs the helm binary with its cache and configuration in a
// temporary folder, and returns stdout; a failure returns stderr in the
// error.
func helm(args ...string) (string, error) {
	cmd := exec.CommandContext(context.Background(), helmBin, args...)
	cmd.Env = append(os.Environ(),
		"HELM_CACHE_HOME="+filepath.Join(helmHome, "cache"),
		"HELM_CONFIG_HOME="+filepath.Join(helmHome, "config"),
		"HELM_DATA_HOME="+filepath.Join(helmHome, "data"))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("helm %s: %v\n%s%s", strings.Join(args, " "), err, stderr.String(), stdout.String())
	}
	return stdout.String(), nil
}

// scenario is one values file of the matrix: testdata/values/<name>.yaml,
// rendered into testdata/<name>.golden.
type scenario struct{ name string }

var scenarios = []scenario{
	{"default"},
	{"namespaced"},
	{"azure-workload-identity"},
	{"webhook-existing-secret"},
	{"webhook-created-secret"},
	{"servicemonitor"},
	{"podmonitor"},
	{"replicas-placement"},
}

func (s scenario) valuesFile() string {
	return filepath.Join("testdata", "values", s.name+".yaml")
}

// render runs helm template for a scenario (without the CRDs unless
// withCRDs).
func (s scenario) render(t *testing.T, withCRDs bool) string {
	t.Helper()
	return renderChart(t, chartDir, withCRDs, "-f", s.valuesFile())
}

func renderChart(t *testing.T, chart string, withCRDs bool, extra ...string) string {
	t.Helper()
	args := []string{"template", releaseName, chart, "--namespace", releaseNS}
	if withCRDs {
		args = append(args, "--include-crds")
	}
	out, err := helm(append(args, extra...)...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// parse splits multi-document YAML into objects, skipping empty documents.
func parse(t *testing.T, manifest string) []*unstructured.Unstructured {
	t.Helper()
	objs, err := parseManifest(manifest)
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

func parseManifest(manifest string) ([]*unstructured.Unstructured, error) {
	var objs []*unstructured.Unstructured
	dec := utilyaml.NewYAMLOrJSONDecoder(strings.NewReader(manifest), 4096)
	for {
		u := &unstructured.Unstructured{}
		err := dec.Decode(&u.Object)
		if errors.Is(err, io.EOF) {
			return objs, nil
		}
		if err != nil {
			return nil, fmt.Errorf("manifest does not parse: %w", err)
		}
		if len(u.Object) == 0 {
			continue
		}
		if u.GetKind() == "" || u.GetAPIVersion() == "" {
			return nil, fmt.Errorf("object without kind or apiVersion: %v", u.Object)
		}
		objs = append(objs, u)
	}
}

// ofKind returns the objects of one kind.
func ofKind(objs []*unstructured.Unstructured, kind string) []*unstructured.Unstructured {
	var out []*unstructured.Unstructured
	for _, o := range objs {
		if o.GetKind() == kind {
			out = append(out, o)
		}
	}
	return out
}

// one returns the single object of a kind, failing otherwise.
func one(t *testing.T, objs []*unstructured.Unstructured, kind string) *unstructured.Unstructured {
	t.Helper()
	found := ofKind(objs, kind)
	if len(found) != 1 {
		t.Fatalf("%d objects of kind %s, want 1", len(found), kind)
	}
	return found[0]
}
