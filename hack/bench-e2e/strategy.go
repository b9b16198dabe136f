package main

import (
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	v1alpha1 "github.com/mlflow-operator/mlflow-operator/api/v1alpha1"
)

// strategy is one way of rolling a new version out to production: its name,
// as BENCH_STRATEGIES and the tables spell it, and what it sets on a
// ModelDeployment before the ModelDeployment is created.
type strategy struct {
	name  string
	apply func(*v1alpha1.ModelDeployment)
}

// strategies are the rollout strategies the API has, in the order the
// benchmark runs them. A strategy is added with one more entry here: its
// name and a func that sets the field choosing it, e.g. for a
// spec.rollout.strategy field,
//
//	{name: "BlueGreen", apply: func(md *v1alpha1.ModelDeployment) { md.Spec.Rollout.Strategy = "BlueGreen" }},
//
// Nothing else changes: every strategy is measured the same way (the
// production pods are those labelled role=production, whatever Deployment
// runs them). RollingUpdate is what a ModelDeployment does when nothing
// chooses otherwise, so its entry sets nothing.
var strategies = []strategy{
	{name: "RollingUpdate", apply: func(*v1alpha1.ModelDeployment) {}},
	// The rolling update with spec.rollout.maxSurge 100%: the whole new
	// set starts at once beside the old one.
	{name: "RollingUpdate-surge100", apply: func(md *v1alpha1.ModelDeployment) {
		md.Spec.Rollout.MaxSurge = ptr.To(intstr.FromString("100%"))
	}},
}

// pickStrategies reads BENCH_STRATEGIES: a comma-separated list of
// strategy names, in any case; every strategy when empty.
func pickStrategies(env string, known []strategy) ([]strategy, error) {
	if strings.TrimSpace(env) == "" {
		return known, nil
	}
	var out []strategy
	seen := map[string]bool{}
	for _, name := range strings.Split(env, ",") {
		name = strings.TrimSpace(name)
		if name == "" {
			continue
		}
		found := false
		for _, s := range known {
			if strings.EqualFold(s.name, name) {
				found = true
				if !seen[s.name] {
					seen[s.name] = true
					out = append(out, s)
				}
			}
		}
		if !found {
			var names []string
			for _, s := range known {
				names = append(names, s.name)
			}
			return nil, fmt.Errorf("BENCH_STRATEGIES: no strategy %q (the API has: %s)", name, strings.Join(names, ", "))
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("BENCH_STRATEGIES=%q names no strategy", env)
	}
	return out, nil
}
