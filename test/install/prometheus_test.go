package install

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	v1alpha1 "github.com/mlflow-operator/mlflow-operator/api/v1alpha1"
	"github.com/mlflow-operator/mlflow-operator/test/harness/mlflowserver"
	"github.com/mlflow-operator/mlflow-operator/test/harness/procs"
	"github.com/mlflow-operator/mlflow-operator/test/harness/testenv"
)

// prometheus is a real Prometheus (hack/prometheus.sh builds it) scraping
// the operator in the cluster with the scrape job docs ship for a
// Prometheus without the Prometheus Operator
// (config/prometheus/scrape-operator.yaml) and evaluating the shipped
// alerts (config/prometheus/alerts.yaml).
type prometheus struct {
	api string
}

// startPrometheus runs Prometheus until the test ends. It authenticates to
// the operator's secure metrics endpoint with the token of a ServiceAccount
// bound to the chart's metrics-reader ClusterRole (release name
// mlflow-operator), as the docs tell users to. A second job scrapes the same
// endpoints without a token: it must be refused.
func startPrometheus(t *testing.T) *prometheus {
	t.Helper()
	bin := os.Getenv("PROMETHEUS")
	if bin == "" {
		t.Fatal("PROMETHEUS is not set: run with make test (hack/prometheus.sh builds it)")
	}
	ctx := context.Background()
	dir := t.TempDir()

	const ns = "monitoring"
	namespace(t, ns)
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "prometheus"}}
	binding := &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "prometheus-mlflow-operator-metrics"},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "mlflow-operator-metrics-reader"},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: ns, Name: sa.Name}}}
	if err := k8s.Create(ctx, sa); err != nil {
		t.Fatal(err)
	}
	if err := k8s.Create(ctx, binding); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = k8s.Delete(context.Background(), binding) })
	tr := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr(int64(3600))}}
	if err := k8s.SubResource("token").Create(ctx, sa, tr); err != nil {
		t.Fatal(err)
	}
	token := filepath.Join(dir, "token")
	if err := os.WriteFile(token, []byte(tr.Status.Token), 0o600); err != nil {
		t.Fatal(err)
	}

	// The shipped job, with what differs outside a pod: where the token is,
	// the kubeconfig service discovery needs, a short interval.
	var jobs []map[string]any
	if err := yaml.Unmarshal(repoFile(t, "config/prometheus/scrape-operator.yaml"), &jobs); err != nil || len(jobs) != 1 {
		t.Fatalf("config/prometheus/scrape-operator.yaml: %v (%d jobs)", err, len(jobs))
	}
	job := jobs[0]
	job["authorization"] = map[string]any{"credentials_file": token}
	job["scrape_interval"], job["scrape_timeout"] = "2s", "2s"
	sd := job["kubernetes_sd_configs"].([]any)[0].(map[string]any)
	sd["kubeconfig_file"] = st.Cluster.Kubeconfig
	anonymous := map[string]any{}
	for k, v := range job {
		anonymous[k] = v
	}
	anonymous["job_name"] = "anonymous"
	delete(anonymous, "authorization")

	// The model pods' request metrics, as the PodMonitor would scrape them.
	var modelJobs []map[string]any
	if err := yaml.Unmarshal(repoFile(t, "config/prometheus/scrape-model-pods.yaml"), &modelJobs); err != nil || len(modelJobs) != 1 {
		t.Fatalf("config/prometheus/scrape-model-pods.yaml: %v (%d jobs)", err, len(modelJobs))
	}
	models := modelJobs[0]
	models["scrape_interval"], models["scrape_timeout"] = "2s", "2s"
	models["kubernetes_sd_configs"].([]any)[0].(map[string]any)["kubeconfig_file"] = st.Cluster.Kubeconfig

	var rule struct {
		Spec struct {
			Groups []any `json:"groups"`
		} `json:"spec"`
	}
	if err := yaml.Unmarshal(repoFile(t, "config/prometheus/alerts.yaml"), &rule); err != nil || len(rule.Spec.Groups) == 0 {
		t.Fatalf("config/prometheus/alerts.yaml: %v", err)
	}
	rules := filepath.Join(dir, "alerts.yaml")
	writeYAML(t, rules, map[string]any{"groups": rule.Spec.Groups})
	cfg := filepath.Join(dir, "prometheus.yml")
	writeYAML(t, cfg, map[string]any{
		"global":         map[string]any{"scrape_interval": "2s", "evaluation_interval": "2s"},
		"rule_files":     []string{rules},
		"scrape_configs": []any{job, anonymous, models},
	})

	port, err := procs.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	cmd := exec.Command(bin, "--config.file="+cfg, "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr, "--log.level=warn")
	log := &procs.Buffer{}
	cmd.Stdout, cmd.Stderr = log, log
	p, err := procs.Start(cmd)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.Stop(10 * time.Second)
		if t.Failed() {
			t.Logf("prometheus log:\n%s", log.String())
		}
	})
	prom := &prometheus{api: "http://" + addr}
	testenv.Eventually(t, time.Minute, "Prometheus ready", func() error {
		resp, err := http.Get(prom.api + "/-/ready")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("/-/ready: %s", resp.Status)
		}
		return nil
	})
	return prom
}

// query runs an instant PromQL query and returns its samples' values.
func (p *prometheus) query(q string) ([]float64, error) {
	resp, err := http.Get(p.api + "/api/v1/query?query=" + url.QueryEscape(q))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var out struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			Result []struct {
				Value [2]any `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return nil, err
	}
	if out.Status != "success" {
		return nil, fmt.Errorf("%s: %s", q, out.Error)
	}
	var vals []float64
	for _, r := range out.Data.Result {
		s, _ := r.Value[1].(string)
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return nil, fmt.Errorf("%s: value %v", q, r.Value[1])
		}
		vals = append(vals, v)
	}
	return vals, nil
}

// waitFor waits until q returns exactly one sample that ok accepts.
func (p *prometheus) waitFor(t *testing.T, timeout time.Duration, q string, what string, ok func(float64) bool) float64 {
	t.Helper()
	var got float64
	testenv.Eventually(t, timeout, what+": "+q, func() error {
		vals, err := p.query(q)
		if err != nil {
			return err
		}
		if len(vals) != 1 || !ok(vals[0]) {
			return fmt.Errorf("got %v", vals)
		}
		got = vals[0]
		return nil
	})
	return got
}

func writeYAML(t *testing.T, path string, v any) {
	t.Helper()
	b, err := yaml.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func repoFile(t *testing.T, rel string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(procs.RepoRoot(), rel))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// checkMetrics: Prometheus scrapes both replicas with the token and is
// refused without it; the promotions of md (v2 and v3, by webhook) are in
// the metrics; then a version that dies in production is rolled back and
// the MLflowModelRolledBack alert fires.
func checkMetrics(t *testing.T, prom *prometheus, md *v1alpha1.ModelDeployment) {
	t.Helper()
	eq := func(want float64) func(float64) bool { return func(v float64) bool { return v == want } }
	atLeast := func(want float64) func(float64) bool { return func(v float64) bool { return v >= want } }
	prom.waitFor(t, time.Minute, `count(up{job="mlflow-operator"} == 1)`, "both replicas scraped with the token", eq(2))
	prom.waitFor(t, time.Minute, `count(up{job="anonymous"} == 0)`, "both replicas refuse a scrape without a token", eq(2))
	n := prom.waitFor(t, time.Minute, `sum(mlflow_operator_promotion_duration_seconds_count{trigger="webhook"})`,
		"the promotions to v2 and v3", atLeast(2))
	sum := prom.waitFor(t, time.Minute, `sum(mlflow_operator_promotion_duration_seconds_sum{trigger="webhook"})`, "their time", atLeast(0))
	t.Logf("MEASURED promotion latency from the operator's metrics: %d promotions by webhook, mean %.1fs", int(n), sum/n)
	prom.waitFor(t, time.Minute, fmt.Sprintf(`mlflow_operator_modeldeployment_info{namespace=%q,name=%q,model="charted",version="3"}`, md.Namespace, md.Name),
		"what serves", eq(1))
	prom.waitFor(t, time.Minute, fmt.Sprintf(`mlflow_operator_modeldeployment_ready{namespace=%q,name=%q}`, md.Namespace, md.Name), "Ready", eq(1))
	prom.waitFor(t, time.Minute, `sum(mlflow_operator_webhook_deliveries_total{result="relayed"})`, "the standby's relayed delivery", atLeast(1))
	checkRequestMetrics(t, prom, md)
	if firing, err := prom.query(`ALERTS{alertname="MLflowModelRolledBack"}`); err != nil || len(firing) != 0 {
		t.Fatalf("MLflowModelRolledBack before any rollback: %v %v", firing, err)
	}

	register(t, mlflowserver.Op{"op": "register", "model": "charted", "kind": "dying", "die_after": 0, "seed": 4, "alias": "champion"})
	testenv.Eventually(t, 6*time.Minute, "v4 rolled back to v3", func() error {
		m := &v1alpha1.ModelDeployment{}
		if err := k8s.Get(context.Background(), client.ObjectKeyFromObject(md), m); err != nil {
			return err
		}
		rb := meta.FindStatusCondition(m.Status.Conditions, v1alpha1.ConditionRolledBack)
		if rb == nil || rb.Status != metav1.ConditionTrue || m.Status.Serving == nil || m.Status.Serving.Version != "3" {
			return fmt.Errorf("RolledBack %+v, serving %+v", rb, m.Status.Serving)
		}
		return nil
	})
	rolledBack := time.Now()
	prom.waitFor(t, 2*time.Minute, `sum(mlflow_operator_rollbacks_total{reason="PodsFailing"})`, "the rollback counted", eq(1))
	prom.waitFor(t, 2*time.Minute, `ALERTS{alertname="MLflowModelRolledBack",alertstate="firing",reason="PodsFailing"}`, "the rollback alert firing", eq(1))
	t.Logf("MEASURED rollback -> MLflowModelRolledBack firing (2 s scrape and evaluation intervals): %s", time.Since(rolledBack).Round(time.Second))
}

// irisRows is a request the iris models of the fixture answer.
const irisRows = `{"dataframe_split": {"columns": ["sepal length (cm)", "sepal width (cm)", "petal length (cm)", "petal width (cm)"], "data": [[5.1, 3.5, 1.4, 0.2]]}}`

// checkRequestMetrics: predictions and a bad request sent through md's
// Service reach the model through the request-metrics sidecar, and
// Prometheus, scraping the model pods as the shipped PodMonitor does, counts
// them by code, with the model, version and ModelDeployment as labels.
func checkRequestMetrics(t *testing.T, prom *prometheus, md *v1alpha1.ModelDeployment) {
	t.Helper()
	svc := &corev1.Service{}
	if err := k8s.Get(context.Background(), client.ObjectKeyFromObject(md), svc); err != nil {
		t.Fatal(err)
	}
	servingPodsAre(t, md, svc)
	endpoint := fmt.Sprintf("http://%s:%d/invocations", svc.Spec.ClusterIP, svc.Spec.Ports[0].Port)
	// A connection each: a kept-alive one stays with the pod it was opened to.
	hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 30 * time.Second}
	const n = 20
	for i := 0; i < n; i++ {
		resp, err := hc.Post(endpoint, "application/json", strings.NewReader(irisRows))
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("prediction %d through the Service: %s", i, resp.Status)
		}
	}
	resp, err := hc.Post(endpoint, "application/json", strings.NewReader(`{"not": "a dataframe"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	bad := resp.StatusCode
	defer func() {
		if t.Failed() {
			prom.dump(t, "/api/v1/targets?state=any", `/api/v1/series?match[]=mlflow_model_requests_total`)
		}
	}()
	sel := fmt.Sprintf(`model="charted",modeldeployment=%q,namespace=%q,path="/invocations"`, md.Name, md.Namespace)
	prom.waitFor(t, 2*time.Minute, `sum(mlflow_model_requests_total{`+sel+`,code="200"})`, "the predictions counted", func(v float64) bool { return v >= n })
	prom.waitFor(t, time.Minute, fmt.Sprintf(`sum(mlflow_model_requests_total{%s,code="%d"})`, sel, bad), "the bad request counted by its code", func(v float64) bool { return v == 1 })
	// Production pods of the version that serves answered every one.
	prom.waitFor(t, time.Minute, `sum(mlflow_model_requests_total{`+sel+`,version="3",role="production",code="200"})`,
		"answered by version 3's production pods", func(v float64) bool { return v == n })
	p50 := prom.waitFor(t, time.Minute, `histogram_quantile(0.5, sum by (le) (rate(mlflow_model_request_duration_seconds_bucket{`+sel+`}[5m])))`,
		"the latency", func(v float64) bool { return v > 0 })
	t.Logf("MEASURED model request latency p50 through the sidecar (from its histogram): %.0f ms; the bad request answered %d", p50*1000, bad)
}

// servingPodsAre: once md is Ready, every pod behind its Service that is
// not terminating runs the version and image the status says serve. The old
// version's pods drain (preStop) for a few seconds after Ready; a
// connection opened before they were marked terminating (or kept alive)
// may still reach them. The test waits for them to go, so that what
// answers next can only be the new version.
func servingPodsAre(t *testing.T, md *v1alpha1.ModelDeployment, svc *corev1.Service) {
	t.Helper()
	m := &v1alpha1.ModelDeployment{}
	if err := k8s.Get(context.Background(), client.ObjectKeyFromObject(md), m); err != nil || m.Status.Serving == nil {
		t.Fatalf("status.serving of %s: %v", md.Name, err)
	}
	want := m.Status.Serving
	pods := func() []corev1.Pod {
		l := &corev1.PodList{}
		if err := k8s.List(context.Background(), l, client.InNamespace(md.Namespace), client.MatchingLabels(svc.Spec.Selector)); err != nil {
			t.Fatal(err)
		}
		return l.Items
	}
	terminating := 0
	for _, p := range pods() {
		if p.DeletionTimestamp != nil {
			terminating++
			continue
		}
		if v := p.Labels[v1alpha1.LabelModelVersion]; v != want.Version || p.Spec.Containers[0].Image != want.Image {
			t.Errorf("pod %s behind the Service serves version %s (%s) while the status says %s (%s)",
				p.Name, v, p.Spec.Containers[0].Image, want.Version, want.Image)
		}
	}
	t.Logf("at Ready on version %s: %d old pods draining", want.Version, terminating)
	testenv.Eventually(t, 2*time.Minute, "the old version's pods gone", func() error {
		for _, p := range pods() {
			if p.DeletionTimestamp != nil {
				return fmt.Errorf("pod %s (version %s) still terminating", p.Name, p.Labels[v1alpha1.LabelModelVersion])
			}
		}
		return nil
	})
}

// dump logs what the Prometheus API answers on paths, for a failed test.
func (p *prometheus) dump(t *testing.T, paths ...string) {
	for _, path := range paths {
		resp, err := http.Get(p.api + path)
		if err != nil {
			t.Logf("%s: %v", path, err)
			continue
		}
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		t.Logf("%s:\n%s", path, b)
	}
}
