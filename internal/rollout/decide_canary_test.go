package rollout

import (
	"testing"
	"time"

	v1alpha1 "github.com/mlflow-operator/mlflow-operator/api/v1alpha1"
)

// TestDecideCanary: the canary set is verified unexposed like BlueGreen's
// preview; then it moves through its steps, each held for its pause once
// Ready and analysed when asked; the last step is the switch. A failing
// pod, a step not Ready in time, a failed analysis and the abort
// annotation fail the version.
func TestDecideCanary(t *testing.T) {
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	pause := time.Minute
	// at is a canary of v2 at step i of 2, reached (Ready) ago (or not
	// Ready when negative), started a minute before.
	at := func(i int, reached time.Duration, mut ...func(*CanaryInput)) func(*Input) {
		return func(in *Input) {
			in.Candidate = Candidate{Exists: true, Image: v2.Image, Ready: true, Verified: true, Created: now.Add(-5 * time.Minute)}
			ci := &CanaryInput{Steps: 2, Step: i, StepStarted: now.Add(-time.Minute), Pause: pause}
			if reached >= 0 {
				ci.Reached = now.Add(-reached)
			}
			for _, m := range mut {
				m(ci)
			}
			in.Canary = ci
		}
	}
	base := func(mut ...func(*Input)) Input {
		canary := func(in *Input) {
			in.BlueGreen, in.ScaleDownDelay = true, 30*time.Second
			in.Canary = &CanaryInput{Steps: 2, Step: -1}
		}
		return servingV1(now, append([]func(*Input){canary}, mut...)...)
	}
	set := func(ready bool) func(*Input) {
		return func(in *Input) {
			in.Candidate = Candidate{Exists: true, Image: v2.Image, Ready: ready, Created: now.Add(-time.Minute)}
		}
	}
	smokeOK := func(in *Input) { in.Smoke = Smoke{Ran: true, OK: true} }
	analyzed := func(ok bool, msg string) func(*CanaryInput) {
		return func(ci *CanaryInput) { ci.Analyze, ci.Analysis = true, Analysis{Ran: true, OK: ok, Message: msg} }
	}

	checkDecisions(t, []decision{
		{"no canary set yet", base(), ActionCreateCandidate, v1alpha1.ReasonCandidateStarting, 0, "canary set of version 2"},
		{"set starting", base(set(false)), ActionWait, v1alpha1.ReasonCandidateStarting, 9 * time.Minute, ""},
		{"set ready: smoke test first, unexposed", base(set(true)), ActionSmokeTest, v1alpha1.ReasonCandidateStarting, 0, ""},
		{"verified but blocked by a stray", base(set(true), smokeOK, func(in *Input) { in.Canary.Blocked = true }),
			ActionWait, v1alpha1.ReasonCanaryStep, 2 * time.Second, "previous strategy"},
		{"first version: a switch, no steps", base(set(true), smokeOK, func(in *Input) {
			in.LastGood, in.ProductionImage, in.Production = Version{}, "", DeploymentState{Phase: PhaseMissing}
		}), ActionPromote, v1alpha1.ReasonVerified, 0, "switching the Service"},
		{"served before: a switch back, no steps", base(set(true), func(in *Input) { in.PreviouslyServed = true }),
			ActionPromote, v1alpha1.ReasonPreviouslyServed, 0, "switching the Service"},

		{"step not Ready yet", base(at(0, -1)), ActionWait, v1alpha1.ReasonCanaryStep, 9 * time.Minute, "step 1 of 2: waiting for its pods"},
		{"step not Ready at the deadline", base(at(0, -1, func(ci *CanaryInput) { ci.StepStarted = now.Add(-10 * time.Minute) })),
			ActionFailCandidate, v1alpha1.ReasonCanaryNotReady, 0, "back on production alone"},
		{"step pausing", base(at(0, 20*time.Second)), ActionWait, v1alpha1.ReasonCanaryStep, 40 * time.Second, "holding for 40s more"},
		{"canary pod failing mid-step", base(at(1, 10*time.Second), func(in *Input) {
			in.Candidate.Failed, in.Candidate.FailMessage = true, "pod x: container model restarted 3 times"
		}), ActionFailCandidate, v1alpha1.ReasonCandidateFailed, 0, "step 2 of 2: pod x"},
		{"abort annotation mid-step", base(at(0, 10*time.Second), func(in *Input) { in.Aborted = true }),
			ActionFailCandidate, v1alpha1.ReasonAborted, 0, "abort annotation"},
		{"pause over, analysis to run", base(at(0, pause, func(ci *CanaryInput) { ci.Analyze = true })),
			ActionAnalyze, v1alpha1.ReasonCanaryStep, 0, "analysing"},
		{"analysis failed", base(at(0, pause, analyzed(false, "probe: 7 of 10 requests answered"))),
			ActionFailCandidate, v1alpha1.ReasonAnalysisFailed, 0, "7 of 10"},
		{"the full set Ready: switch", base(at(2, 0)), ActionPromote, v1alpha1.ReasonVerified, 0, "passed its 2 steps"},
		{"the full set growing", base(at(2, -1)), ActionWait, v1alpha1.ReasonCanaryStep, 9 * time.Minute, "the full set"},
	})

	// The steps move one at a time, to the next index.
	for _, tc := range []struct {
		name string
		in   Input
		want int
	}{
		{"verified: step 1", base(set(true), smokeOK), 0},
		{"approved after waiting: step 1", base(set(true), func(in *Input) {
			in.Candidate.Verified, in.ApprovalRequired, in.Approved = true, true, true
		}), 0},
		{"pause over, no analysis: next step", base(at(0, pause)), 1},
		{"analysis passed: next step", base(at(0, 2*pause, analyzed(true, "probe: 10 of 10"))), 1},
		{"last step passed: the full set", base(at(1, pause)), 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := Decide(tc.in)
			if d.Action != ActionCanaryStep || d.Step != tc.want {
				t.Fatalf("Decide = %s step %d (%s), want %s step %d", d.Action, d.Step, d.Message, ActionCanaryStep, tc.want)
			}
		})
	}

	// With approval Manual the verified canary waits before any traffic;
	// once in its steps it does not wait again.
	held := base(set(true), func(in *Input) { in.Candidate.Verified, in.ApprovalRequired = true, true })
	if d := Decide(held); d.Action != ActionAwaitApproval || d.Message == "" {
		t.Fatalf("manual approval: Decide = %s (%s), want %s", d.Action, d.Message, ActionAwaitApproval)
	}
	inSteps := base(at(0, pause), func(in *Input) { in.ApprovalRequired = true })
	if d := Decide(inSteps); d.Action != ActionCanaryStep {
		t.Fatalf("manual approval, in steps: Decide = %s (%s), want %s", d.Action, d.Message, ActionCanaryStep)
	}
}

// TestCanaryReplicas: a step's weight by replica ratio, bounded by
// production's size.
func TestCanaryReplicas(t *testing.T) {
	for _, tc := range []struct {
		replicas, weight, want, share int32
	}{
		{3, 25, 1, 25},
		{4, 20, 1, 20},
		{10, 20, 3, 23}, // ceil(2.5)
		{3, 50, 3, 50},
		{3, 80, 3, 50}, // at most production's size
		{1, 10, 1, 50}, // one pod cannot carry less than half
		{0, 20, 1, 50}, // no production count: one
		{9, 10, 1, 10},
	} {
		got := CanaryReplicas(tc.replicas, tc.weight)
		if got != tc.want {
			t.Errorf("CanaryReplicas(%d, %d) = %d, want %d", tc.replicas, tc.weight, got, tc.want)
		}
		if share := CanaryWeight(max(tc.replicas, 1), got); share != tc.share {
			t.Errorf("CanaryWeight(%d, %d) = %d, want %d", tc.replicas, got, share, tc.share)
		}
	}
}
