package chart

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// envOf is the manager container's variables by name, and how many times
// a name appears more than once.
func envOf(c corev1.Container) (map[string]corev1.EnvVar, int) {
	m, dup := map[string]corev1.EnvVar{}, 0
	for _, e := range c.Env {
		if _, ok := m[e.Name]; ok {
			dup++
		}
		m[e.Name] = e
	}
	return m, dup
}

// TestGoMemorySettings: the chart gives the operator, as config/manager
// does, its container's memory limit in MEMORY_LIMIT (from which it sets
// its soft memory limit) and GOGC 50; gogc empty leaves GOGC out, and a
// variable of extraEnv replaces the chart's instead of appearing twice,
// which server-side apply refuses.
func TestGoMemorySettings(t *testing.T) {
	requireHelm(t)
	objs, err := parseManifest(string(repoBytes(t, "config/manager/manager.yaml")))
	if err != nil {
		t.Fatal(err)
	}
	config, _ := envOf(deployment(t, objs).Spec.Template.Spec.Containers[0])
	for _, c := range []struct {
		name       string
		args       []string
		gogc       string // "": no GOGC
		fromLimits bool   // MEMORY_LIMIT from the downward API
	}{
		{"defaults", nil, "50", true},
		{"gogc off", []string{"--set", "gogc=off"}, "off", true},
		{"gogc empty", []string{"--set-string", "gogc="}, "", true},
		{"extraEnv", []string{"--set-string", "extraEnv[0].name=GOGC,extraEnv[0].value=80,extraEnv[1].name=MEMORY_LIMIT,extraEnv[1].value=1Gi"}, "80", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			env, dup := envOf(deployment(t, parse(t, renderChart(t, chartDir, false, c.args...))).Spec.Template.Spec.Containers[0])
			if dup > 0 {
				t.Errorf("%d variables named twice", dup)
			}
			if g, ok := env["GOGC"]; g.Value != c.gogc || ok != (c.gogc != "") {
				t.Errorf("GOGC %+v, want %q", g, c.gogc)
			}
			limit := env["MEMORY_LIMIT"]
			fromLimits := limit.ValueFrom != nil && limit.ValueFrom.ResourceFieldRef != nil && limit.ValueFrom.ResourceFieldRef.Resource == "limits.memory"
			if fromLimits != c.fromLimits {
				t.Errorf("MEMORY_LIMIT %+v, want it from limits.memory: %t", limit, c.fromLimits)
			}
			if c.name == "defaults" {
				for _, name := range []string{"GOGC", "MEMORY_LIMIT"} {
					if a, b := env[name], config[name]; a.String() != b.String() {
						t.Errorf("%s is %v, config/manager's %v", name, a, b)
					}
				}
			}
		})
	}
}
