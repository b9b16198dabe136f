package monitoring

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
)

// exported are the series names the operator's own metric families expose:
// a counter's or gauge's name, a histogram's _bucket, _sum and _count.
func exported(t *testing.T) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	for name, typ := range ourFamilies(t) {
		if typ == dto.MetricType_HISTOGRAM {
			for _, suffix := range []string{"_bucket", "_sum", "_count"} {
				out[name+suffix] = true
			}
			continue
		}
		out[name] = true
	}
	return out
}

// checkQuery fails when expr names a metric the operator does not export.
func checkQuery(t *testing.T, where, expr string, known map[string]bool) int {
	t.Helper()
	names, err := metricNames(expr)
	if err != nil {
		t.Errorf("%s: %v", where, err)
		return 0
	}
	if len(names) == 0 {
		t.Errorf("%s: %q names no metric", where, expr)
	}
	for _, n := range names {
		if !known[n] {
			t.Errorf("%s: %q names %s, which the operator does not export", where, expr, n)
		}
	}
	return len(names)
}

// TestAlertsNameExportedMetrics: every alert's expression selects only
// metrics the operator exports.
func TestAlertsNameExportedMetrics(t *testing.T) {
	known := exported(t)
	for _, a := range alerts(t) {
		checkQuery(t, "alert "+a.Alert, a.Expr, known)
	}
}

// TestDashboardNamesExportedMetrics: every query of the Grafana dashboard
// (each panel target's expr, and the template variables' label_values)
// selects only metrics the operator exports, and every panel has a query.
func TestDashboardNamesExportedMetrics(t *testing.T) {
	known := exported(t)
	var dash struct {
		Title  string `json:"title"`
		UID    string `json:"uid"`
		Panels []struct {
			Type    string `json:"type"`
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
			Panels []json.RawMessage `json:"panels"`
		} `json:"panels"`
		Templating struct {
			List []struct {
				Name       string `json:"name"`
				Type       string `json:"type"`
				Definition string `json:"definition"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(repoFile(t, "config/grafana/mlflow-operator.json"), &dash); err != nil {
		t.Fatalf("config/grafana/mlflow-operator.json: %v", err)
	}
	if dash.UID == "" || dash.Title == "" {
		t.Errorf("the dashboard has no uid or title")
	}
	queries, used := 0, map[string]bool{}
	for _, p := range dash.Panels {
		if p.Type == "row" {
			if len(p.Panels) > 0 {
				t.Errorf("row %q holds collapsed panels, which this test does not read", p.Title)
			}
			continue
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, target := range p.Targets {
			queries += checkQuery(t, "panel "+p.Title, target.Expr, known)
			names, _ := metricNames(target.Expr)
			for _, n := range names {
				used[strings.TrimSuffix(strings.TrimSuffix(n, "_bucket"), "_count")] = true
			}
		}
	}
	labelValues := regexp.MustCompile(`^label_values\(\s*([a-zA-Z_:][a-zA-Z0-9_:]*)\s*,\s*[a-zA-Z_][a-zA-Z0-9_]*\s*\)$`)
	for _, v := range dash.Templating.List {
		if v.Type != "query" {
			continue
		}
		m := labelValues.FindStringSubmatch(v.Definition)
		if m == nil {
			t.Errorf("variable %s: %q is not label_values(metric, label)", v.Name, v.Definition)
			continue
		}
		checkQuery(t, "variable "+v.Name, m[1], known)
	}
	if queries < 10 {
		t.Errorf("only %d metric selections in the dashboard", queries)
	}
	// Every family is on the dashboard somewhere.
	for name := range ourFamilies(t) {
		if !used[name] {
			t.Errorf("the dashboard shows nothing of %s", name)
		}
	}
}
