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

	"github.com/mlflow-operator/mlflow-operator/test/harness/procs"
)

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

// TestConfigPrometheusApplies: `kustomize build config/prometheus` gives a
// ServiceMonitor and a PrometheusRule the API server accepts (with the
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
	for _, kind := range []string{"ServiceMonitor", "PrometheusRule"} {
		if o := one(t, objs, kind); o.GetNamespace() != releaseNS || !strings.HasPrefix(o.GetName(), "mlflow-operator-") {
			t.Errorf("%s %s/%s: want it in %s, named mlflow-operator-...", kind, o.GetNamespace(), o.GetName(), releaseNS)
		}
	}
	if w := dryRunApply(t, c, objs); len(w) > 0 {
		t.Errorf("the API server warned: %v", w)
	}
}
