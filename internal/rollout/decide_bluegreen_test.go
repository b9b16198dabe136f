package rollout

import (
	"strings"
	"testing"
	"time"

	v1alpha1 "github.com/mlflow-operator/mlflow-operator/api/v1alpha1"
)

// TestDecideBlueGreen: the candidate is the preview set beside production;
// a version that served before is promoted by switching to its set once
// every pod of it is Ready, without a smoke test; after a switch the old
// set stays until the scale-down time.
func TestDecideBlueGreen(t *testing.T) {
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	delay := 30 * time.Second
	base := func(mut ...func(*Input)) Input {
		blueGreen := func(in *Input) { in.BlueGreen, in.ScaleDownDelay = true, delay }
		return servingV1(now, append([]func(*Input){blueGreen}, mut...)...)
	}
	set := func(image string, ready bool) func(*Input) {
		return func(in *Input) {
			in.Candidate = Candidate{Exists: true, Image: image, Ready: ready, Created: now.Add(-time.Minute), ServedBefore: image == v1.Image}
		}
	}
	// v2 was switched to; v1's set is the one beside it.
	switched := func(in *Input) {
		in.ProductionImage, in.LastGood = v2.Image, v2
		set(v1.Image, true)(in)
	}
	servedBefore := func(in *Input) { in.PreviouslyServed = true }

	checkDecisions(t, []decision{
		{"no preview yet", base(), ActionCreateCandidate, v1alpha1.ReasonCandidateStarting, 0, "preview set of version 2"},
		{"the old set in the slot", base(set(v1.Image, true)), ActionCreateCandidate, v1alpha1.ReasonCandidateStarting, 0, ""},
		{"preview ready: smoke test", base(set(v2.Image, true)), ActionSmokeTest, v1alpha1.ReasonCandidateStarting, 0, ""},
		{"preview verified: switch", base(set(v2.Image, true), func(in *Input) { in.Smoke = Smoke{Ran: true, OK: true} }),
			ActionPromote, v1alpha1.ReasonVerified, 0, "switching the Service"},
		{"served before, no set: start it", base(servedBefore), ActionCreateCandidate, v1alpha1.ReasonCandidateStarting, 0, ""},
		{"served before, set starting: wait", base(servedBefore, set(v2.Image, false)), ActionWait, v1alpha1.ReasonCandidateStarting, 9 * time.Minute, ""},
		{"served before, set ready: switch without a test", base(servedBefore, set(v2.Image, true)),
			ActionPromote, v1alpha1.ReasonPreviouslyServed, 0, "switching the Service"},
		{"served before, set failing", base(servedBefore, func(in *Input) {
			in.Candidate = Candidate{Exists: true, Image: v2.Image, Failed: true, FailMessage: "CrashLoopBackOff", Created: now}
		}), ActionFailCandidate, v1alpha1.ReasonCandidateFailed, 0, "CrashLoopBackOff"},

		{"switched, not completed: old set kept", base(switched, func(in *Input) { in.Production.Phase = PhaseProgressing }),
			ActionWait, v1alpha1.ReasonRollingOut, delay, ""},
		{"switched and complete: old set kept until its time", base(switched, func(in *Input) { in.ScaleDownAt = now.Add(20 * time.Second) }),
			ActionComplete, v1alpha1.ReasonRolloutComplete, 20 * time.Second, ""},
		{"switched, complete, scale-down time unknown yet", base(switched), ActionComplete, v1alpha1.ReasonRolloutComplete, delay, ""},
		{"scale-down time reached", base(switched, func(in *Input) { in.ScaleDownAt = now }), ActionDeleteCandidate, v1alpha1.ReasonCandidateLeftOver, 0, "scale-down delay"},
		{"zero delay: the old set goes at the next look", base(switched, func(in *Input) { in.ScaleDownDelay, in.ScaleDownAt = 0, now.Add(-time.Second) }),
			ActionDeleteCandidate, v1alpha1.ReasonCandidateLeftOver, 0, ""},
		{"the target's image not known yet: the old set stays", base(switched, func(in *Input) { in.Target = Version{Version: "1"} }),
			ActionWait, v1alpha1.ReasonWaitingForImage, 0, ""},
		{"a set of the serving image beside it goes", base(switched, set(v2.Image, true)), ActionDeleteCandidate, v1alpha1.ReasonCandidateLeftOver, 0, ""},
		{"a preview abandoned before its switch goes at once", base(switched, func(in *Input) {
			in.Candidate = Candidate{Exists: true, Image: "reg/m@sha256:3", Ready: true, Created: now}
			in.ScaleDownAt = now.Add(time.Hour)
		}), ActionDeleteCandidate, v1alpha1.ReasonCandidateLeftOver, 0, "never promoted"},

		// RollingUpdate's behaviour is unchanged by the new fields when off.
		{"rolling update: served before promotes at once", base(servedBefore, func(in *Input) { in.BlueGreen = false }),
			ActionPromote, v1alpha1.ReasonPreviouslyServed, 0, "without a new candidate"},
		{"rolling update: candidate deleted after promotion", base(switched, func(in *Input) { in.BlueGreen = false }),
			ActionDeleteCandidate, v1alpha1.ReasonCandidateLeftOver, 0, "removing its candidate"},
	})
}

// TestBlueGreenApprovalHoldsTheSwitch: with Manual approval a verified
// preview waits, its set running, until approved.
func TestBlueGreenApprovalHoldsTheSwitch(t *testing.T) {
	in := Input{
		Now: time.Now(), Target: Version{Version: "2", Image: "i2"}, LastGood: Version{Version: "1", Image: "i1"},
		ProductionImage: "i1", Production: DeploymentState{Phase: PhaseComplete},
		Candidate:        Candidate{Exists: true, Image: "i2", Ready: true, Verified: true},
		SmokeTestEnabled: true, ProgressDeadline: time.Minute, BlueGreen: true, ApprovalRequired: true,
	}
	if d := Decide(in); d.Action != ActionAwaitApproval || !strings.Contains(d.Message, "switching the Service") {
		t.Fatalf("Decide = %s (%s), want %s saying how it would switch", d.Action, d.Message, ActionAwaitApproval)
	}
	in.Approved = true
	if d := Decide(in); d.Action != ActionPromote {
		t.Fatalf("approved: Decide = %s (%s), want %s", d.Action, d.Message, ActionPromote)
	}
}
