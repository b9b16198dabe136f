package chart

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mlflow-operator/mlflow-operator/test/harness/procs"
)

// TestLint: helm lint, plain and --strict, with the defaults and with every
// values file of the matrix.
func TestLint(t *testing.T) {
	requireHelm(t)
	for _, strict := range []bool{false, true} {
		args := []string{"lint", chartDir}
		if strict {
			args = append(args, "--strict")
		}
		if out, err := helm(args...); err != nil {
			t.Errorf("%v\n%s", err, out)
		}
	}
	for _, s := range scenarios {
		if out, err := helm("lint", "--strict", chartDir, "-f", s.valuesFile()); err != nil {
			t.Errorf("%s: %v\n%s", s.name, err, out)
		}
	}
}

// TestGolden compares helm template's output for every scenario with
// testdata/<scenario>.golden (-update rewrites them).
func TestGolden(t *testing.T) {
	requireHelm(t)
	for _, s := range scenarios {
		t.Run(s.name, func(t *testing.T) {
			got := s.render(t, false)
			golden := filepath.Join("testdata", s.name+".golden")
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (create it with -args -update)", err)
			}
			if got != string(want) {
				t.Errorf("helm template differs from %s (rerun with -args -update after a deliberate change):\n%s", golden, firstDifference(string(want), got))
			}
		})
	}
}

// firstDifference shows the first differing line with some context.
func firstDifference(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := 0; i < max(len(w), len(g)); i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			from := max(0, i-3)
			var b strings.Builder
			for j := from; j < i; j++ {
				b.WriteString("  " + w[j] + "\n")
			}
			b.WriteString("- " + wl + "\n+ " + gl + "\n")
			return b.String()
		}
	}
	return "(no difference)"
}

// TestChartInSync: the chart's copies of files of config/ are current: the
// CRDs helm installs from crds/, the rules of the generated ClusterRole that
// templates/rbac.yaml renders, the rules in the operator's own namespace
// (leader election, webhook relay), and the alerts templates/prometheusrule.yaml
// renders.
func TestChartInSync(t *testing.T) {
	root := procs.RepoRoot()
	const fix = "run `make chart-sync` (it copies config/crd/bases, config/rbac/role.yaml, config/rbac/leader_election_role.yaml and config/prometheus/alerts.yaml into the chart) and commit"
	bases, err := filepath.Glob(filepath.Join(root, "config", "crd", "bases", "*.yaml"))
	if err != nil || len(bases) == 0 {
		t.Fatalf("no CRDs in config/crd/bases: %v", err)
	}
	copies, _ := filepath.Glob(filepath.Join(chartDir, "crds", "*.yaml"))
	names := func(paths []string) string {
		var n []string
		for _, p := range paths {
			n = append(n, filepath.Base(p))
		}
		return strings.Join(n, ", ")
	}
	if names(bases) != names(copies) {
		t.Errorf("chart CRDs [%s] are not config/crd/bases' [%s]: %s", names(copies), names(bases), fix)
	}
	same := func(a, b string) {
		x, err := os.ReadFile(a)
		if err != nil {
			t.Fatal(err)
		}
		y, err := os.ReadFile(b)
		if err != nil {
			t.Errorf("%v: %s", err, fix)
			return
		}
		if !bytes.Equal(x, y) {
			rel, _ := filepath.Rel(root, b)
			t.Errorf("%s differs from %s: %s", rel, strings.TrimPrefix(a, root+"/"), fix)
		}
	}
	for _, b := range bases {
		same(b, filepath.Join(chartDir, "crds", filepath.Base(b)))
	}
	same(filepath.Join(root, "config", "rbac", "role.yaml"), filepath.Join(chartDir, "files", "manager-role.yaml"))
	same(filepath.Join(root, "config", "rbac", "leader_election_role.yaml"), filepath.Join(chartDir, "files", "leader-election-role.yaml"))
	same(filepath.Join(root, "config", "prometheus", "alerts.yaml"), filepath.Join(chartDir, "files", "prometheus-rule.yaml"))
}
