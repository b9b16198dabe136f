package main

import (
	"fmt"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
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
// benchmark runs them. A variant of a strategy is added with one more
// entry here: its name and a func that sets the fields choosing it. The
// probes follow status.activeSlot (the production pods are those of its
// role, whatever Deployment runs them); what BlueGreen is measured with
// (a switch back as its rollback, a dying version held) follows from the
// spec (measure); so does Canary's (its steps, canary.go). RollingUpdate
// is what a ModelDeployment does when nothing chooses otherwise, so its
// entry sets nothing.
var strategies = []strategy{
	{name: "RollingUpdate", apply: func(*v1alpha1.ModelDeployment) {}},
	// The rolling update with spec.rollout.maxSurge 100%: the whole new
	// set starts at once beside the old one.
	{name: "RollingUpdate-surge100", apply: func(md *v1alpha1.ModelDeployment) {
		md.Spec.Rollout.MaxSurge = ptr.To(intstr.FromString("100%"))
	}},
	// The old set is kept for 2 minutes after a switch, not the default
	// 30 s: the rollback scenario moves the alias back after the
	// promotion's Ready, and between them are the fixture's Python
	// process (an MLflow import, seconds on a busy machine), the webhook
	// and the resolution; past the delay the old set is deleted and going
	// back starts its pods, which is not the switch being measured. A
	// longer delay costs nothing here: each new version deletes the kept
	// set in its slot before starting its preview.
	{name: "BlueGreen", apply: func(md *v1alpha1.ModelDeployment) {
		md.Spec.Rollout.Strategy = v1alpha1.StrategyBlueGreen
		md.Spec.Rollout.BlueGreen = &v1alpha1.BlueGreenSpec{ScaleDownDelay: &metav1.Duration{Duration: 2 * time.Minute}}
	}},
	{name: "Canary", apply: canary},
}

// canary chooses the Canary strategy with two short steps, each analysed
// by the operator's own requests, and BlueGreen's 2-minute scale-down
// delay (for the same reason). A step's share is by replica ratio beside
// production's pods (3, the default minReplicas): 25% is 1 canary pod
// beside 3, 50% is 3 beside 3 (a weight above 50 would act as 50), so the
// second step grows the set and the growth to production's size before
// the switch has nothing left to start. 5 s pauses keep the run short
// while each step still holds traffic for a while.
func canary(md *v1alpha1.ModelDeployment) {
	md.Spec.Rollout.Strategy = v1alpha1.StrategyCanary
	pause := func() *metav1.Duration { return &metav1.Duration{Duration: 5 * time.Second} }
	md.Spec.Rollout.Canary = &v1alpha1.CanarySpec{
		Steps:          []v1alpha1.CanaryStep{{Weight: 25, Pause: pause()}, {Weight: 50, Pause: pause()}},
		Analysis:       &v1alpha1.CanaryAnalysis{Probe: &v1alpha1.ProbeAnalysis{Requests: 5, MinSuccessPercent: 100}},
		ScaleDownDelay: &metav1.Duration{Duration: 2 * time.Minute},
	}
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
