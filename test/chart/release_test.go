package chart

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"

	"github.com/mlflow-operator/mlflow-operator/test/harness/procs"
)

const (
	releaseVersion = "v1.2.3"
	releaseImage   = "registry.example.com/platform/mlflow-operator"
)

// releaseDigest stands in for the digest `make image-push` would write.
var releaseDigest = "sha256:" + strings.Repeat("c0ffee42", 8)

// runRelease runs hack/release.sh with the digest given (no image push)
// into out.
func runRelease(t *testing.T, out, version string) (string, error) {
	t.Helper()
	cmd := exec.Command(filepath.Join(procs.RepoRoot(), "hack", "release.sh"))
	cmd.Env = append(os.Environ(), "VERSION="+version, "IMG="+releaseImage,
		"RELEASE_DIGEST="+releaseDigest, "RELEASE_OUT_DIR="+out, "HELM="+helmBin)
	b, err := cmd.CombinedOutput()
	return string(b), err
}

// TestRelease runs the release script and checks the bundle: install.yaml
// parses, pins the image by digest in its one Deployment and is accepted by
// a real API server; SHA256SUMS matches; the chart lints and carries the
// version and the digest. Nothing tracked in git is changed.
func TestRelease(t *testing.T) {
	requireHelm(t)
	c := apiServer(t)
	root := procs.RepoRoot()
	tracked := []string{"config/manager/kustomization.yaml", "config/default/kustomization.yaml", "charts/mlflow-operator/values.yaml", "charts/mlflow-operator/Chart.yaml"}
	before := map[string]string{}
	for _, f := range tracked {
		before[f] = fileSum(t, filepath.Join(root, f))
	}

	out := t.TempDir()
	if log, err := runRelease(t, out, releaseVersion); err != nil {
		t.Fatalf("hack/release.sh: %v\n%s", err, log)
	}
	for _, f := range tracked {
		if fileSum(t, filepath.Join(root, f)) != before[f] {
			t.Errorf("hack/release.sh changed %s", f)
		}
	}
	const tgz = "mlflow-operator-1.2.3.tgz"
	entries, _ := os.ReadDir(out)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if want := []string{"SHA256SUMS", "install.yaml", tgz}; !slices.Equal(names, want) {
		t.Errorf("bundle holds %v, want %v", names, want)
	}

	t.Run("SHA256SUMS", func(t *testing.T) {
		f, err := os.Open(filepath.Join(out, "SHA256SUMS"))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		var listed []string
		s := bufio.NewScanner(f)
		for s.Scan() {
			sum, name, ok := strings.Cut(s.Text(), "  ")
			if !ok {
				t.Fatalf("line %q is not sha256sum's format", s.Text())
			}
			listed = append(listed, name)
			if got := fileSum(t, filepath.Join(out, name)); got != sum {
				t.Errorf("%s: SHA256SUMS says %s, the file's is %s", name, sum, got)
			}
		}
		slices.Sort(listed)
		if want := []string{"install.yaml", tgz}; !slices.Equal(listed, want) {
			t.Errorf("SHA256SUMS lists %v, want %v", listed, want)
		}
	})

	t.Run("install.yaml", func(t *testing.T) {
		data, err := os.ReadFile(filepath.Join(out, "install.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		objs := parse(t, string(data))
		d := deployment(t, objs) // exactly one
		pinned := releaseImage + "@" + releaseDigest
		for _, ctr := range append(d.Spec.Template.Spec.InitContainers, d.Spec.Template.Spec.Containers...) {
			if ctr.Image != pinned {
				t.Errorf("container %s runs %s, want %s", ctr.Name, ctr.Image, pinned)
			}
		}
		if got := sidecarImageEnv(d); got != pinned {
			t.Errorf("MLFLOW_OPERATOR_IMAGE (the request-metrics sidecar's image) is %q, want the pinned %s", got, pinned)
		}
		for _, kind := range []string{"CustomResourceDefinition", "Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding", "Service", "NetworkPolicy"} {
			if len(ofKind(objs, kind)) == 0 {
				t.Errorf("install.yaml has no %s", kind)
			}
		}
		for _, o := range objs {
			if o.GetLabels()["app.kubernetes.io/version"] != "1.2.3" {
				t.Errorf("%s %s lacks app.kubernetes.io/version=1.2.3", o.GetKind(), o.GetName())
			}
		}
		if w := dryRunApply(t, c, objs); len(w) > 0 {
			t.Errorf("the API server warned: %v", w)
		}
	})

	t.Run("chart", func(t *testing.T) {
		chart := filepath.Join(out, tgz)
		if o, err := helm("lint", "--strict", chart); err != nil {
			t.Fatalf("%v\n%s", err, o)
		}
		meta, err := helm("show", "chart", chart)
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"\nversion: 1.2.3\n", "\nappVersion: 1.2.3\n"} {
			if !strings.Contains("\n"+meta, want) {
				t.Errorf("Chart.yaml lacks %q:\n%s", strings.TrimSpace(want), meta)
			}
		}
		objs := parse(t, renderChart(t, chart, false))
		if img := deployment(t, objs).Spec.Template.Spec.Containers[0].Image; img != releaseImage+"@"+releaseDigest {
			t.Errorf("the chart's Deployment runs %s, want the pinned image", img)
		}
		if got := sidecarImageEnv(deployment(t, objs)); got != releaseImage+"@"+releaseDigest {
			t.Errorf("the chart's MLFLOW_OPERATOR_IMAGE is %q, want the pinned image", got)
		}
	})
}

// sidecarImageEnv is the manager's MLFLOW_OPERATOR_IMAGE: the image of the
// request-metrics sidecar, which must be the operator's own.
func sidecarImageEnv(d *appsv1.Deployment) string {
	for _, e := range d.Spec.Template.Spec.Containers[0].Env {
		if e.Name == "MLFLOW_OPERATOR_IMAGE" {
			return e.Value
		}
	}
	return ""
}

// TestReleaseRefusesBadVersions: VERSION must be semver with a leading v.
func TestReleaseRefusesBadVersions(t *testing.T) {
	requireHelm(t)
	for _, v := range []string{"", "1.2.3", "v1.2", "v1.2.3.4", "v01.2.3", "v1.2.3+build.1", "latest"} {
		out := t.TempDir()
		log, err := runRelease(t, out, v)
		if err == nil {
			t.Errorf("VERSION=%q accepted", v)
			continue
		}
		if !strings.Contains(log, "VERSION") || strings.Count(log, "\n") > 2 {
			t.Errorf("VERSION=%q: the message should name VERSION in a line or two:\n%s", v, log)
		}
		if entries, _ := os.ReadDir(out); len(entries) > 0 {
			t.Errorf("VERSION=%q: files written anyway", v)
		}
	}
}

func fileSum(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}
