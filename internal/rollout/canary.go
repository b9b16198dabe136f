package rollout

import (
	"fmt"
	"time"

	v1alpha1 "github.com/mlflow-operator/mlflow-operator/api/v1alpha1"
)

// The Canary strategy's decisions. Its canary set is BlueGreen's preview
// (the Deployment of the slot beside production), verified unexposed like
// it; once verified (and approved, with approval Manual) it takes a share
// of the Service's pods step by step. Each step holds for its pause once
// its pods are Ready and may be analysed; after the last step the set
// grows to production's size and the promotion is BlueGreen's switch. A
// failing pod, a step not Ready in time, a failed analysis or the abort
// annotation fail the version: the Service goes back to production alone.

// CanaryInput is where a Canary rollout of the target stands.
type CanaryInput struct {
	// Steps is how many weighted steps the spec has.
	Steps int
	// Step is the step the target's canary is at: -1 while its traffic
	// has not started (the set is being verified), 0 to Steps-1 a
	// weighted step, Steps while the set grows to production's size
	// before the switch.
	Step int
	// StepStarted is when the step began; Reached when all its pods were
	// Ready (zero until then). The pause counts from Reached.
	StepStarted, Reached time.Time
	// Pause is the current step's.
	Pause time.Duration
	// Analyze: the step is analysed at the end of its pause; Analysis is
	// the outcome the reconciler got in this pass.
	Analyze  bool
	Analysis Analysis
	// Blocked: Deployments of another strategy that the Service would
	// select beside the canary still exist; traffic waits for their
	// removal.
	Blocked bool
}

// Analysis is the outcome of a canary step's analysis.
type Analysis struct {
	Ran, OK bool
	Message string
}

// canarySteps tells whether a verified target goes through canary steps:
// the strategy is Canary and production runs something (the first version
// has no traffic to share and is switched to at once).
func canarySteps(in Input) bool { return in.Canary != nil && in.ProductionImage != "" }

// startCanary turns the approval gate's promotion of a verified canary set
// into its first step; anything else the gate decided stands.
func startCanary(in Input, d Decision) Decision {
	if d.Action != ActionPromote {
		return d
	}
	if in.Canary.Blocked {
		return Decision{Action: ActionWait, Reason: v1alpha1.ReasonCanaryStep, RequeueAfter: 2 * time.Second,
			Message: fmt.Sprintf("canary of version %s verified; waiting for the Deployments of the previous strategy to go before it takes traffic", in.Target.Version)}
	}
	d.Action, d.Step = ActionCanaryStep, 0
	return d
}

// decideCanary: the target's canary set takes traffic; follow its steps.
func decideCanary(in Input) Decision {
	cs, c, v := in.Canary, in.Candidate, in.Target.Version
	step := CanaryStepName(cs.Step, cs.Steps)
	abort := func(reason v1alpha1.Reason, msg string) Decision {
		return Decision{Action: ActionFailCandidate, Reason: reason,
			Message: fmt.Sprintf("canary of version %s, %s: %s; the Service is back on production alone", v, step, msg)}
	}
	switch {
	case in.Aborted:
		d := abort(v1alpha1.ReasonAborted, "the abort annotation rejects it")
		d.Approval = v1alpha1.ReasonAborted
		return d
	case c.Failed:
		return abort(v1alpha1.ReasonCandidateFailed, c.FailMessage)
	case cs.Reached.IsZero():
		elapsed := max(in.Now.Sub(cs.StepStarted), 0)
		if elapsed >= in.ProgressDeadline {
			return abort(v1alpha1.ReasonCanaryNotReady, fmt.Sprintf("its pods were not all Ready after %s (progress deadline %s)", elapsed.Round(time.Second), in.ProgressDeadline))
		}
		return Decision{Action: ActionWait, Reason: v1alpha1.ReasonCanaryStep, RequeueAfter: in.ProgressDeadline - elapsed,
			Message: fmt.Sprintf("canary of version %s, %s: waiting for its pods to become Ready", v, step)}
	case cs.Step >= cs.Steps:
		return Decision{Action: ActionPromote, Reason: v1alpha1.ReasonVerified,
			Message: fmt.Sprintf("canary of version %s passed its %d steps; promoting by switching the Service to its set", v, cs.Steps)}
	case in.Now.Before(cs.Reached.Add(cs.Pause)):
		left := cs.Reached.Add(cs.Pause).Sub(in.Now)
		return Decision{Action: ActionWait, Reason: v1alpha1.ReasonCanaryStep, RequeueAfter: left,
			Message: fmt.Sprintf("canary of version %s, %s: holding for %s more", v, step, left.Round(time.Second))}
	case cs.Analyze && !cs.Analysis.Ran:
		return Decision{Action: ActionAnalyze, Reason: v1alpha1.ReasonCanaryStep,
			Message: fmt.Sprintf("canary of version %s, %s: analysing", v, step)}
	case cs.Analyze && !cs.Analysis.OK:
		return abort(v1alpha1.ReasonAnalysisFailed, "the analysis failed: "+cs.Analysis.Message)
	default:
		passed := fmt.Sprintf("canary of version %s passed %s", v, step)
		if cs.Analyze {
			passed += " (" + cs.Analysis.Message + ")"
		}
		return Decision{Action: ActionCanaryStep, Step: cs.Step + 1, Reason: v1alpha1.ReasonCanaryStep,
			Message: passed + "; moving to " + CanaryStepName(cs.Step+1, cs.Steps)}
	}
}

// CanaryStepName names step i of n for messages: "step 2 of 3", or "the
// full set" for the growth before the switch.
func CanaryStepName(i, n int) string {
	if i >= n {
		return "the full set"
	}
	return fmt.Sprintf("step %d of %d", i+1, n)
}

// CanaryReplicas is how many canary pods give a step of weight percent
// its share beside production's replicas pods: ceil(replicas*w/(100-w)),
// at least 1 and at most replicas (the replica ratio cannot give the
// canary more than half without shrinking production, which the
// autoscaler owns).
func CanaryReplicas(replicas, weight int32) int32 {
	replicas = max(replicas, 1)
	weight = min(max(weight, 1), 99)
	c := (replicas*weight + (100 - weight) - 1) / (100 - weight)
	return min(max(c, 1), replicas)
}

// CanaryWeight is the share, in percent rounded down, canary pods have
// beside production's replicas pods behind one Service.
func CanaryWeight(replicas, canary int32) int32 {
	if canary <= 0 {
		return 0
	}
	return 100 * canary / (max(replicas, 0) + canary)
}
