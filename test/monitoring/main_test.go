// Package monitoring tests what the operator ships for monitoring: the
// exposition of its metrics (`promtool check metrics` on what the metrics
// endpoint serves, every metric touched), the alerts of
// config/prometheus/alerts.yaml (`promtool check rules`, and `promtool test
// rules` with config/prometheus/tests), each alert's runbook in
// docs/operations.md, and that every query of the alerts and of the Grafana
// dashboard (config/grafana/mlflow-operator.json) names a metric the
// operator exports. It also runs a real Prometheus and asks it, through the
// client of the Canary analysis (internal/analysis), for the values and the
// failures a tenant's query can give.
//
// The promtool tests need PROMTOOL, the path of the promtool binary, and the
// analysis test PROMETHEUS, the Prometheus binary's (`make test` sets both
// from hack/prometheus.sh, which builds them); without them they are
// skipped, with a binary that does not run they fail. The others always
// run:
//
//	PROMTOOL=$(hack/prometheus.sh --print-path promtool) PROMETHEUS=$(hack/prometheus.sh --print-path prometheus) go test ./test/monitoring/
package monitoring

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mlflow-operator/mlflow-operator/test/harness/procs"
)

var (
	promtoolBin string
	promtoolErr error
	root        = procs.RepoRoot()
)

func TestMain(m *testing.M) {
	promtoolBin = os.Getenv("PROMTOOL")
	if promtoolBin != "" {
		if out, err := exec.Command(promtoolBin, "--version").CombinedOutput(); err != nil {
			promtoolErr = fmt.Errorf("PROMTOOL=%s does not run: %v\n%s", promtoolBin, err, out)
		}
	}
	os.Exit(m.Run())
}

// requirePromtool skips the test when PROMTOOL is unset and fails it when
// the binary is broken.
func requirePromtool(t *testing.T) {
	t.Helper()
	if promtoolBin == "" {
		t.Skip("PROMTOOL is not set: run `make test`, or PROMTOOL=$(hack/prometheus.sh --print-path promtool) go test ./test/monitoring/ (hack/prometheus.sh builds it)")
	}
	if promtoolErr != nil {
		t.Fatal(promtoolErr)
	}
}

// promtool runs promtool with args (in dir when set), stdin as its input,
// and returns its combined output.
func promtool(t *testing.T, dir string, stdin []byte, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(promtoolBin, args...)
	cmd.Dir = dir
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	out, err := cmd.CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

// repoFile reads a file of the repository.
func repoFile(t *testing.T, rel string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(root, rel))
	if err != nil {
		t.Fatal(err)
	}
	return data
}
