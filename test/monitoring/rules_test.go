package monitoring

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// rule is one rule of a PrometheusRule.
type rule struct {
	Alert       string            `json:"alert"`
	Record      string            `json:"record"`
	Expr        string            `json:"expr"`
	For         string            `json:"for"`
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
}

type ruleGroups struct {
	Groups []struct {
		Name  string `json:"name"`
		Rules []rule `json:"rules"`
	} `json:"groups"`
}

// alertsFile is the PrometheusRule config/prometheus ships (and the chart
// copies).
const alertsFile = "config/prometheus/alerts.yaml"

// prometheusRule reads alertsFile: its spec is a Prometheus rule file.
func prometheusRule(t *testing.T) (spec []byte, groups ruleGroups) {
	t.Helper()
	var obj struct {
		APIVersion string         `json:"apiVersion"`
		Kind       string         `json:"kind"`
		Metadata   map[string]any `json:"metadata"`
		Spec       map[string]any `json:"spec"`
	}
	if err := yaml.UnmarshalStrict(repoFile(t, alertsFile), &obj); err != nil {
		t.Fatalf("%s: %v", alertsFile, err)
	}
	if obj.APIVersion != "monitoring.coreos.com/v1" || obj.Kind != "PrometheusRule" {
		t.Fatalf("%s is a %s %s", alertsFile, obj.APIVersion, obj.Kind)
	}
	spec, err := yaml.Marshal(obj.Spec)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.UnmarshalStrict(spec, &groups); err != nil {
		t.Fatalf("%s: the spec is not a rule file: %v", alertsFile, err)
	}
	return spec, groups
}

func alerts(t *testing.T) []rule {
	t.Helper()
	_, groups := prometheusRule(t)
	var out []rule
	for _, g := range groups.Groups {
		out = append(out, g.Rules...)
	}
	if len(out) == 0 {
		t.Fatalf("%s holds no rules", alertsFile)
	}
	return out
}

// TestRulesPassPromtool: `promtool check rules` on the PrometheusRule's
// spec, then `promtool test rules` on every file of config/prometheus/tests
// (they read the spec as rules.yaml next to them).
func TestRulesPassPromtool(t *testing.T) {
	requirePromtool(t)
	spec, _ := prometheusRule(t)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "rules.yaml"), spec, 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := promtool(t, dir, nil, "check", "rules", "rules.yaml"); err != nil {
		t.Fatalf("promtool check rules: %v\n%s", err, out)
	}
	tests, err := filepath.Glob(filepath.Join(root, "config", "prometheus", "tests", "*.yaml"))
	if err != nil || len(tests) == 0 {
		t.Fatalf("no rule tests in config/prometheus/tests: %v", err)
	}
	for _, src := range tests {
		name := filepath.Base(src)
		data, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := promtool(t, dir, nil, "test", "rules", name)
		if err != nil {
			t.Errorf("promtool test rules %s: %v\n%s", name, err, out)
		} else {
			t.Logf("promtool test rules %s: %s", name, strings.ReplaceAll(out, "\n", " "))
		}
	}
}

// TestEveryAlertIsTested: each alert appears in the rule tests, firing.
func TestEveryAlertIsTested(t *testing.T) {
	tests, _ := filepath.Glob(filepath.Join(root, "config", "prometheus", "tests", "*.yaml"))
	var all strings.Builder
	for _, f := range tests {
		data, _ := os.ReadFile(f)
		all.Write(data)
	}
	for _, a := range alerts(t) {
		if a.Alert == "" {
			continue
		}
		fires := regexp.MustCompile(`alertname: ` + regexp.QuoteMeta(a.Alert) + `\n\s+exp_alerts:`)
		if !fires.MatchString(all.String()) {
			t.Errorf("alert %s has no rule test where it fires (config/prometheus/tests)", a.Alert)
		}
	}
}

// TestAlertsHaveRunbooks: every alert has a severity, a summary and a
// description, and a runbook_url pointing to a section of
// docs/operations.md that exists.
func TestAlertsHaveRunbooks(t *testing.T) {
	const prefix = "https://github.com/mlflow-operator/mlflow-operator/blob/main/docs/operations.md#"
	anchors := markdownAnchors(string(repoFile(t, "docs/operations.md")))
	for _, a := range alerts(t) {
		if a.Alert == "" {
			continue
		}
		switch a.Labels["severity"] {
		case "critical", "warning", "info":
		default:
			t.Errorf("%s: severity %q, want critical, warning or info", a.Alert, a.Labels["severity"])
		}
		if a.Annotations["summary"] == "" || a.Annotations["description"] == "" {
			t.Errorf("%s: no summary or description", a.Alert)
		}
		url := a.Annotations["runbook_url"]
		anchor, ok := strings.CutPrefix(url, prefix)
		if !ok {
			t.Errorf("%s: runbook_url %q is not a section of docs/operations.md (%s...)", a.Alert, url, prefix)
			continue
		}
		if anchor != strings.ToLower(a.Alert) {
			t.Errorf("%s: runbook_url anchor %q, want the alert's own section #%s", a.Alert, anchor, strings.ToLower(a.Alert))
		}
		if !anchors[anchor] {
			t.Errorf("%s: docs/operations.md has no section #%s", a.Alert, anchor)
		}
	}
}

// markdownAnchors are the anchors GitHub gives the headings of a Markdown
// document: lower case, spaces to hyphens, punctuation other than - and _
// dropped.
func markdownAnchors(doc string) map[string]bool {
	out := map[string]bool{}
	inCode := false
	for _, line := range strings.Split(doc, "\n") {
		if strings.HasPrefix(line, "```") {
			inCode = !inCode
		}
		if inCode || !strings.HasPrefix(line, "#") {
			continue
		}
		title := strings.TrimSpace(strings.TrimLeft(line, "#"))
		var b strings.Builder
		for _, r := range strings.ToLower(title) {
			switch {
			case r == ' ':
				b.WriteRune('-')
			case r == '-' || r == '_' || (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9'):
				b.WriteRune(r)
			}
		}
		out[b.String()] = true
	}
	return out
}
