// Package promserver runs a real Prometheus for a test: the binary `make
// test` builds (hack/prometheus.sh) and names in PROMETHEUS.
package promserver

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/mlflow-operator/mlflow-operator/test/harness/procs"
	"github.com/mlflow-operator/mlflow-operator/test/harness/testenv"
)

// Require returns the Prometheus binary: PROMETHEUS, which `make
// test` sets from hack/prometheus.sh. It skips the test when PROMETHEUS is
// unset and fails it when the binary does not run.
func Require(t *testing.T) string {
	t.Helper()
	bin := os.Getenv("PROMETHEUS")
	if bin == "" {
		t.Skip("PROMETHEUS is not set: run `make test`, or PROMETHEUS=$(hack/prometheus.sh --print-path prometheus) go test ... (hack/prometheus.sh builds it)")
	}
	if out, err := exec.Command(bin, "--version").CombinedOutput(); err != nil {
		t.Fatalf("PROMETHEUS=%s does not run: %v\n%s", bin, err, out)
	}
	return bin
}

// Start runs Prometheus until the test ends, scraping itself
// every second, on a free loopback port under routePrefix, and returns its
// base URL once it is ready. Its log is printed when the test fails.
func Start(t *testing.T, routePrefix string) string {
	t.Helper()
	bin := Require(t)
	dir := t.TempDir()
	port, err := procs.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	cfg := filepath.Join(dir, "prometheus.yml")
	config := fmt.Sprintf(`scrape_configs:
  - job_name: prometheus
    scrape_interval: 1s
    scrape_timeout: 1s
    metrics_path: %s/metrics
    static_configs:
      - targets: [%q]
`, routePrefix, addr)
	if err := os.WriteFile(cfg, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	p, err := procs.Start(exec.Command(bin, "--config.file="+cfg, "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr, "--web.route-prefix="+routePrefix, "--web.external-url=http://"+addr+routePrefix, "--log.level=warn"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.Stop(10 * time.Second)
		if t.Failed() {
			t.Logf("prometheus log:\n%s", p.Logs.String())
		}
	})
	base := "http://" + addr + routePrefix
	testenv.Eventually(t, time.Minute, "Prometheus ready", func() error {
		if p.Exited() {
			t.Fatalf("prometheus exited: %v\n%s", p.Cmd.ProcessState, p.Logs.String())
		}
		resp, err := http.Get(base + "/-/ready")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return errors.New("/-/ready: " + resp.Status)
		}
		return nil
	})
	return base
}
