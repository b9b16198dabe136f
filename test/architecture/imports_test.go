// Package architecture checks the import rules docs/development.md states,
// so that the layout keeps showing the design: imports point down
// (cmd -> controllers -> internal/* -> api), the pure packages stay pure, and
// the adapters to MLflow, registries and Python packaging know nothing of
// Kubernetes.
package architecture

import (
	"errors"
	"go/build"
	"io/fs"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

const module = "github.com/mlflow-operator/mlflow-operator/"

func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// imports lists the non-test imports of the package in dir (relative to the
// repository).
func imports(t *testing.T, dir string) []string {
	t.Helper()
	pkg, err := build.ImportDir(filepath.Join(repoRoot(), dir), 0)
	if err != nil {
		t.Fatalf("%s: %v", dir, err)
	}
	return pkg.Imports
}

func ours(path string) (string, bool) {
	if strings.HasPrefix(path, module) {
		return strings.TrimPrefix(path, module), true
	}
	return "", false
}

func TestImportRules(t *testing.T) {
	pure := []string{"resources", "rollout", "status"}
	adapters := []string{"mlflow", "imagebuild", "pydeps", "smoketest", "analysis", "registryauth", "failure", "text"}
	rules := []struct {
		dir string
		// allowed: the only packages of ours it may import.
		allowed []string
		// forbidden: outside packages it must not import (prefixes).
		forbidden []string
	}{
		{dir: "cmd", allowed: []string{"api/v1alpha1", "controllers"}},
		{dir: "api/v1alpha1", allowed: []string{}},
		{dir: "controllers", allowed: []string{"api/v1alpha1", "internal/"}},
		// Notifications: the API's words, the message rule and the metrics,
		// nothing of the reconciler's adapters.
		{dir: "internal/notify", allowed: []string{"api/v1alpha1", "internal/text", "internal/metrics"}},
		// The request-metrics sidecar runs in every model pod: a proxy and
		// its metrics, nothing of Kubernetes (TestSidecarKnowsNoKubernetes
		// checks its whole dependency tree).
		{dir: "cmd/request-metrics", allowed: []string{"internal/requestmetrics"}, forbidden: []string{"sigs.k8s.io", "k8s.io"}},
		{dir: "internal/requestmetrics", allowed: []string{}, forbidden: []string{"sigs.k8s.io", "k8s.io"}},
	}
	for _, p := range pure {
		rules = append(rules, struct {
			dir                string
			allowed, forbidden []string
		}{"internal/" + p, []string{"api/v1alpha1", "internal/text"},
			[]string{"sigs.k8s.io/controller-runtime", "k8s.io/client-go", "net/http", "net", "github.com/prometheus"}})
	}
	for _, p := range adapters {
		rules = append(rules, struct {
			dir                string
			allowed, forbidden []string
		}{"internal/" + p, []string{"internal/failure", "internal/text"},
			[]string{"sigs.k8s.io/controller-runtime", "k8s.io/client-go", "github.com/prometheus"}})
	}
	// The metrics are defined in one place, which depends on nothing of
	// ours but the error vocabulary (its result labels).
	rules = append(rules, struct {
		dir                string
		allowed, forbidden []string
	}{"internal/metrics", []string{"internal/failure"}, nil}, struct {
		dir                string
		allowed, forbidden []string
	}{"internal/metrics/metricstest", []string{}, nil})
	for _, p := range []string{"resolver", "builds", "webhook"} {
		rules = append(rules, struct {
			dir                string
			allowed, forbidden []string
		}{"internal/" + p, []string{"api/v1alpha1", "internal/"}, nil})
	}
	for _, r := range rules {
		for _, imp := range imports(t, r.dir) {
			if own, ok := ours(imp); ok {
				allowed := false
				for _, a := range r.allowed {
					if own == a || (strings.HasSuffix(a, "/") && strings.HasPrefix(own, a)) {
						allowed = true
					}
				}
				if !allowed || strings.HasPrefix(own, "test/") || strings.HasPrefix(own, "hack/") {
					t.Errorf("%s imports %s; it may import only %v of ours", r.dir, own, r.allowed)
				}
				continue
			}
			for _, f := range r.forbidden {
				if imp == f || strings.HasPrefix(imp, f+"/") {
					t.Errorf("%s imports %s, which it must not (%v)", r.dir, imp, r.forbidden)
				}
			}
		}
	}
}

// TestSidecarKnowsNoKubernetes: cmd/request-metrics runs in every model pod
// and must stay a small binary; nothing it links, directly or not, is of
// Kubernetes (client-go, controller-runtime, apimachinery).
func TestSidecarKnowsNoKubernetes(t *testing.T) {
	cmd := exec.Command("go", "list", "-deps", "./cmd/request-metrics")
	cmd.Dir = repoRoot()
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 10 {
		t.Fatalf("go list -deps listed only %v", deps)
	}
	for _, d := range deps {
		if strings.HasPrefix(d, "k8s.io/") || strings.HasPrefix(d, "sigs.k8s.io/") {
			t.Errorf("cmd/request-metrics depends on %s: the sidecar must not link Kubernetes libraries", d)
		}
	}
}

// TestPrometheusOnlyInMetrics: internal/metrics alone defines metrics; the
// packages that record them call it, so no other package imports the
// Prometheus client (tests may, to read them back).
func TestPrometheusOnlyInMetrics(t *testing.T) {
	root := repoRoot()
	checked := 0
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			return nil
		}
		rel, _ := filepath.Rel(root, path)
		if rel != "." && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata" || rel == "bin" || rel == "dist") {
			return filepath.SkipDir
		}
		pkg, err := build.ImportDir(path, 0)
		var noGo *build.NoGoError
		if errors.As(err, &noGo) {
			return nil
		}
		if err != nil {
			return err
		}
		checked++
		if rel == "internal/metrics" || strings.HasPrefix(rel, "internal/metrics/") {
			return nil
		}
		// The request-metrics sidecar is a separate binary in the model's
		// pods (cmd/request-metrics) with a registry of its own: its
		// metrics are the model's, not the operator's, and nothing of
		// internal/metrics (controller-runtime's registry) belongs there.
		if rel == "internal/requestmetrics" {
			return nil
		}
		for _, imp := range pkg.Imports {
			if strings.HasPrefix(imp, "github.com/prometheus/") {
				t.Errorf("%s imports %s: metrics belong in internal/metrics", rel, imp)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if checked < 20 {
		t.Fatalf("checked only %d packages", checked)
	}
}
