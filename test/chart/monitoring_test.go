package chart

import (
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	v1alpha1 "github.com/mlflow-operator/mlflow-operator/api/v1alpha1"
	"github.com/mlflow-operator/mlflow-operator/internal/resources"
	"github.com/mlflow-operator/mlflow-operator/test/harness/procs"
)

// repoBytes reads a file of the repository.
func repoBytes(t *testing.T, rel string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(procs.RepoRoot(), rel))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// configObject reads one object of config/ as unstructured.
func configObject(t *testing.T, rel string) *unstructured.Unstructured {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(procs.RepoRoot(), rel))
	if err != nil {
		t.Fatal(err)
	}
	u := &unstructured.Unstructured{}
	if err := yaml.Unmarshal(data, &u.Object); err != nil {
		t.Fatalf("%s: %v", rel, err)
	}
	return u
}

// TestPrometheusRule: the chart's PrometheusRule is off by default and
// with metrics off; on, it holds exactly the rules of
// config/prometheus/alerts.yaml, with the chart's labels and the extra ones.
func TestPrometheusRule(t *testing.T) {
	requireHelm(t)
	if n := len(ofKind(parse(t, renderChart(t, chartDir, false)), "PrometheusRule")); n != 0 {
		t.Errorf("default values: %d PrometheusRules", n)
	}
	off := parse(t, renderChart(t, chartDir, false, "--set", "metrics.enabled=false,metrics.prometheusRule.enabled=true"))
	if n := len(ofKind(off, "PrometheusRule")); n != 0 {
		t.Errorf("metrics off: %d PrometheusRules", n)
	}
	objs := parse(t, renderChart(t, chartDir, false, "--set", "metrics.prometheusRule.enabled=true,metrics.prometheusRule.labels.release=prometheus"))
	rule := one(t, objs, "PrometheusRule")
	if rule.GetAPIVersion() != "monitoring.coreos.com/v1" || rule.GetNamespace() != releaseNS || rule.GetName() != "mlflow-operator" {
		t.Errorf("PrometheusRule %s %s/%s", rule.GetAPIVersion(), rule.GetNamespace(), rule.GetName())
	}
	labels := rule.GetLabels()
	if labels["release"] != "prometheus" || labels["app.kubernetes.io/name"] != "mlflow-operator" {
		t.Errorf("labels %v: want the chart's and release=prometheus", labels)
	}
	want := configObject(t, "config/prometheus/alerts.yaml").Object["spec"]
	if got := rule.Object["spec"]; !reflect.DeepEqual(got, want) {
		t.Errorf("the chart's rules differ from config/prometheus/alerts.yaml's:\n%v\nwant\n%v", got, want)
	}
}

// TestServiceMonitorMatchesConfig: config/prometheus/monitor.yaml scrapes
// the kustomize install as the chart's ServiceMonitor, with its defaults,
// scrapes the chart's: same path, interval, timeout, scheme, token, TLS and
// honorLabels, each on the port of its own metrics Service, which it
// selects.
func TestServiceMonitorMatchesConfig(t *testing.T) {
	requireHelm(t)
	chartSM := one(t, parse(t, renderChart(t, chartDir, false, "--set", "metrics.serviceMonitor.enabled=true")), "ServiceMonitor")
	configSM := configObject(t, "config/prometheus/monitor.yaml")
	endpoint := func(u *unstructured.Unstructured) map[string]any {
		eps, _, _ := unstructured.NestedSlice(u.Object, "spec", "endpoints")
		if len(eps) != 1 {
			t.Fatalf("%s: %d endpoints, want 1", u.GetName(), len(eps))
		}
		return eps[0].(map[string]any)
	}
	c, k := endpoint(chartSM), endpoint(configSM)
	if c["port"] != "metrics" || k["port"] != "https" {
		t.Errorf("ports: chart %v, config %v; want each metrics Service's port (metrics, https)", c["port"], k["port"])
	}
	delete(c, "port")
	delete(k, "port")
	if !reflect.DeepEqual(c, k) {
		t.Errorf("the ServiceMonitors scrape differently:\nchart  %v\nconfig %v", c, k)
	}
	if c["honorLabels"] != true {
		t.Errorf("honorLabels %v: the per-object series' namespace label would be renamed", c["honorLabels"])
	}
	svc := configObject(t, "config/default/metrics_service.yaml")
	selector, _, _ := unstructured.NestedStringMap(configSM.Object, "spec", "selector", "matchLabels")
	for key, v := range selector {
		if svc.GetLabels()[key] != v {
			t.Errorf("config's ServiceMonitor selects %s=%s, which the metrics Service's labels %v lack", key, v, svc.GetLabels())
		}
	}
	ports, _, _ := unstructured.NestedSlice(svc.Object, "spec", "ports")
	if len(ports) != 1 || ports[0].(map[string]any)["name"] != "https" {
		t.Errorf("config's metrics Service ports %v, want one named https", ports)
	}
}

// TestPodMonitorMatchesConfig: the chart's PodMonitor scrapes the model
// pods as config/prometheus/podmonitor.yaml does (selector, namespaces,
// endpoint, relabelling), and config/prometheus/scrape-model-pods.yaml,
// for a Prometheus without the operator, keeps the same pods and port and
// makes the same labels.
func TestPodMonitorMatchesConfig(t *testing.T) {
	requireHelm(t)
	chartPM := one(t, parse(t, renderChart(t, chartDir, false, "--set", "metrics.podMonitor.enabled=true")), "PodMonitor")
	configPM := configObject(t, "config/prometheus/podmonitor.yaml")
	for _, field := range [][]string{{"spec", "selector"}, {"spec", "namespaceSelector"}, {"spec", "podMetricsEndpoints"}} {
		c, _, _ := unstructured.NestedFieldNoCopy(chartPM.Object, field...)
		k, _, _ := unstructured.NestedFieldNoCopy(configPM.Object, field...)
		if c == nil || !reflect.DeepEqual(c, k) {
			t.Errorf("%s: chart %v, config %v", strings.Join(field, "."), c, k)
		}
	}
	selector, _, _ := unstructured.NestedStringMap(configPM.Object, "spec", "selector", "matchLabels")
	if !reflect.DeepEqual(selector, map[string]string{v1alpha1.LabelRequestMetrics: "true"}) {
		t.Errorf("the PodMonitor selects %v, not the label the operator puts on pods with the sidecar", selector)
	}
	eps, _, _ := unstructured.NestedSlice(configPM.Object, "spec", "podMetricsEndpoints")
	ep := eps[0].(map[string]any)
	if ep["port"] != resources.MetricsPortName {
		t.Errorf("the PodMonitor scrapes port %v, not the sidecar's %s", ep["port"], resources.MetricsPortName)
	}
	targets := map[string]string{}
	for _, r := range ep["relabelings"].([]any) {
		rl := r.(map[string]any)
		targets[rl["targetLabel"].(string)] = rl["sourceLabels"].([]any)[0].(string)
	}

	var jobs []struct {
		Relabel []struct {
			Source []string `json:"source_labels"`
			Regex  string   `json:"regex"`
			Action string   `json:"action"`
			Target string   `json:"target_label"`
		} `json:"relabel_configs"`
	}
	if err := yaml.Unmarshal(repoBytes(t, "config/prometheus/scrape-model-pods.yaml"), &jobs); err != nil || len(jobs) != 1 {
		t.Fatalf("config/prometheus/scrape-model-pods.yaml: %v (%d jobs)", err, len(jobs))
	}
	keep := false
	for _, r := range jobs[0].Relabel {
		switch {
		case r.Action == "keep":
			keep = r.Regex == "true;"+resources.MetricsPortName && len(r.Source) == 2 &&
				r.Source[0] == "__meta_kubernetes_pod_label_serving_mlflow_operator_io_request_metrics"
		case targets[r.Target] != "":
			if r.Source[0] != targets[r.Target] {
				t.Errorf("scrape job: %s from %v, the PodMonitor's from %s", r.Target, r.Source, targets[r.Target])
			}
			delete(targets, r.Target)
		}
	}
	if !keep {
		t.Error("the scrape job does not keep only the sidecar's metrics port of the pods with the label")
	}
	if len(targets) > 0 {
		t.Errorf("the scrape job lacks the PodMonitor's labels %v", targets)
	}
}

// TestConfigPrometheusApplies: `kustomize build config/prometheus` gives a
// ServiceMonitor, a PodMonitor and a PrometheusRule the API server accepts (with the
// stand-in CRDs), in the operator's namespace. It needs KUSTOMIZE.
func TestConfigPrometheusApplies(t *testing.T) {
	kustomize := os.Getenv("KUSTOMIZE")
	if kustomize == "" {
		t.Skip("KUSTOMIZE is not set: run `make test` or `make chart-test`")
	}
	c := apiServer(t)
	out, err := exec.Command(kustomize, "build", filepath.Join(procs.RepoRoot(), "config", "prometheus")).Output()
	if err != nil {
		t.Fatalf("kustomize build config/prometheus: %v", err)
	}
	objs := parse(t, string(out))
	for _, kind := range []string{"ServiceMonitor", "PrometheusRule", "PodMonitor"} {
		if o := one(t, objs, kind); o.GetNamespace() != releaseNS || !strings.HasPrefix(o.GetName(), "mlflow-operator-") {
			t.Errorf("%s %s/%s: want it in %s, named mlflow-operator-...", kind, o.GetNamespace(), o.GetName(), releaseNS)
		}
	}
	if w := dryRunApply(t, c, objs); len(w) > 0 {
		t.Errorf("the API server warned: %v", w)
	}
}
