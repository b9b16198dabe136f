package rollout

import (
	"strings"
	"testing"
	"time"

	v1alpha1 "github.com/mlflow-operator/mlflow-operator/api/v1alpha1"
)

// Versions of the decision tables.
var (
	v1 = Version{Version: "1", Image: "reg/m@sha256:1"}
	v2 = Version{Version: "2", Image: "reg/m@sha256:2"}
)

// servingV1 is the tables' starting point at now: v1 serves and is last
// good, v2 is the built target, nothing else; mut changes it.
func servingV1(now time.Time, mut ...func(*Input)) Input {
	in := Input{
		Now: now, Target: v2, LastGood: v1, ProductionImage: v1.Image,
		Production:       DeploymentState{Phase: PhaseComplete, Message: "3 of 3 replicas available"},
		SmokeTestEnabled: true, AutoRollback: true, ProgressDeadline: 10 * time.Minute,
	}
	for _, m := range mut {
		m(&in)
	}
	return in
}

func TestDecide(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	deadline := 10 * time.Minute
	base := func(mut ...func(*Input)) Input { return servingV1(now, mut...) }
	candidate := func(c Candidate) func(*Input) { return func(in *Input) { in.Candidate = c } }
	readyCandidate := Candidate{Exists: true, Image: v2.Image, Ready: true, Created: now.Add(-time.Minute)}
	promoted := func(in *Input) { in.ProductionImage = v2.Image }

	checkDecisions(t, []decision{
		// Nothing to deploy yet.
		{"target not built", base(func(in *Input) { in.Target = Version{Version: "2"} }), ActionWait, v1alpha1.ReasonWaitingForImage, 0, ""},
		{"target not built, stale candidate", base(func(in *Input) { in.Target = Version{} }, candidate(Candidate{Exists: true, Image: v1.Image})), ActionDeleteCandidate, v1alpha1.ReasonCandidateLeftOver, 0, ""},

		// Verification of a new image.
		{"no candidate yet", base(), ActionCreateCandidate, v1alpha1.ReasonCandidateStarting, 0, "version 2"},
		{"first version, no production", base(func(in *Input) {
			in.LastGood, in.ProductionImage, in.Production = Version{}, "", DeploymentState{Phase: PhaseMissing}
		}), ActionCreateCandidate, v1alpha1.ReasonCandidateStarting, 0, ""},
		{"candidate of an older target", base(candidate(Candidate{Exists: true, Image: "reg/m@sha256:0", Ready: true})), ActionCreateCandidate, v1alpha1.ReasonCandidateStarting, 0, ""},
		{"candidate starting", base(candidate(Candidate{Exists: true, Image: v2.Image, Created: now.Add(-2 * time.Minute)})), ActionWait, v1alpha1.ReasonCandidateStarting, 8 * time.Minute, ""},
		{"candidate one second before the deadline", base(candidate(Candidate{Exists: true, Image: v2.Image, Created: now.Add(-deadline + time.Second)})), ActionWait, v1alpha1.ReasonCandidateStarting, time.Second, ""},
		{"candidate exactly at the deadline", base(candidate(Candidate{Exists: true, Image: v2.Image, Created: now.Add(-deadline)})), ActionFailCandidate, v1alpha1.ReasonCandidateNotReady, 0, "not Ready after 10m0s"},
		{"candidate past the deadline", base(candidate(Candidate{Exists: true, Image: v2.Image, Created: now.Add(-time.Hour)})), ActionFailCandidate, v1alpha1.ReasonCandidateNotReady, 0, ""},
		{"candidate created in our future (clock skew)", base(candidate(Candidate{Exists: true, Image: v2.Image, Created: now.Add(time.Minute)})), ActionWait, v1alpha1.ReasonCandidateStarting, deadline, ""},
		{"candidate crash-looping", base(candidate(Candidate{Exists: true, Image: v2.Image, Failed: true, FailMessage: "CrashLoopBackOff", Created: now})), ActionFailCandidate, v1alpha1.ReasonCandidateFailed, 0, "CrashLoopBackOff"},
		{"candidate failing and late: failure first", base(candidate(Candidate{Exists: true, Image: v2.Image, Failed: true, FailMessage: "ImagePullBackOff", Created: now.Add(-time.Hour)})), ActionFailCandidate, v1alpha1.ReasonCandidateFailed, 0, "ImagePullBackOff"},
		{"candidate ready, not tested", base(candidate(readyCandidate)), ActionSmokeTest, v1alpha1.ReasonCandidateStarting, 0, ""},
		{"ready past the deadline still gets tested", base(candidate(Candidate{Exists: true, Image: v2.Image, Ready: true, Created: now.Add(-time.Hour)})), ActionSmokeTest, v1alpha1.ReasonCandidateStarting, 0, ""},
		{"smoke test passed", base(candidate(readyCandidate), func(in *Input) { in.Smoke = Smoke{Ran: true, OK: true} }), ActionPromote, v1alpha1.ReasonVerified, 0, ""},
		{"smoke test failed", base(candidate(readyCandidate), func(in *Input) { in.Smoke = Smoke{Ran: true, Message: "HTTP 500"} }), ActionFailCandidate, v1alpha1.ReasonSmokeTestFailed, 0, "HTTP 500"},
		{"verified before a restart", base(candidate(Candidate{Exists: true, Image: v2.Image, Ready: true, Verified: true, Created: now})), ActionPromote, v1alpha1.ReasonVerified, 0, ""},
		{"smoke test disabled: readiness only, said so", base(candidate(readyCandidate), func(in *Input) { in.SmokeTestEnabled = false }), ActionPromote, v1alpha1.ReasonReadinessOnly, 0, "smoke test is disabled"},
		{"no request to send: readiness only, said so", base(candidate(readyCandidate), func(in *Input) {
			in.Smoke = Smoke{Ran: true, OK: true, NoRequest: true, Message: "the model has no input example"}
		}), ActionPromote, v1alpha1.ReasonReadinessOnly, 0, "no input example"},
		{"no request to send, one required: refused", base(candidate(readyCandidate), func(in *Input) {
			in.Smoke = Smoke{Ran: true, OK: true, NoRequest: true, Message: "the model has no input example"}
			in.SmokeTestRequired = true
		}), ActionFailCandidate, v1alpha1.ReasonNoSmokeTestRequest, 0, "smokeTest.required"},
		{"required and answered", base(candidate(readyCandidate), func(in *Input) {
			in.Smoke = Smoke{Ran: true, OK: true}
			in.SmokeTestRequired = true
		}), ActionPromote, v1alpha1.ReasonVerified, 0, ""},
		{"served before: no new candidate", base(func(in *Input) { in.PreviouslyServed = true }), ActionPromote, v1alpha1.ReasonPreviouslyServed, 0, "without a new candidate"},
		{"served before, a candidate left: promoted all the same", base(candidate(Candidate{Exists: true, Image: v2.Image, Created: now}), func(in *Input) { in.PreviouslyServed = true }), ActionPromote, v1alpha1.ReasonPreviouslyServed, 0, ""},
		{"served before but failed since: held", base(func(in *Input) { in.PreviouslyServed, in.TargetFailed = true, true }), ActionHold, v1alpha1.ReasonVersionFailed, 0, ""},
		{"smoke test disabled, not ready", base(candidate(Candidate{Exists: true, Image: v2.Image, Created: now}), func(in *Input) { in.SmokeTestEnabled = false }), ActionWait, v1alpha1.ReasonCandidateStarting, deadline, ""},

		// Promotion.
		{"promoted, candidate left over", base(promoted, candidate(readyCandidate)), ActionDeleteCandidate, v1alpha1.ReasonCandidateLeftOver, 0, ""},
		{"promotion rolling", base(promoted, func(in *Input) {
			in.Production = DeploymentState{Phase: PhaseProgressing, Message: "1 of 3 replicas updated"}
		}), ActionWait, v1alpha1.ReasonRollingOut, 0, "1 of 3"},
		{"promotion complete", base(promoted), ActionComplete, v1alpha1.ReasonRolloutComplete, 0, ""},
		{"first version complete", base(promoted, func(in *Input) { in.LastGood = Version{} }), ActionComplete, v1alpha1.ReasonRolloutComplete, 0, ""},

		// Rollback.
		{"progress deadline exceeded", base(promoted, func(in *Input) { in.Production = DeploymentState{Phase: PhaseFailed, Message: "timed out"} }), ActionRollback, v1alpha1.ReasonProgressDeadline, 0, "rolling back to version 1"},
		{"new pods failing", base(promoted, func(in *Input) {
			in.Production = DeploymentState{Phase: PhaseProgressing}
			in.PodsFailing, in.PodsFailingMessage = true, "pod iris-x: CrashLoopBackOff"
		}), ActionRollback, v1alpha1.ReasonPodsFailing, 0, "CrashLoopBackOff"},
		{"deadline with auto-rollback off", base(promoted, func(in *Input) {
			in.Production, in.AutoRollback = DeploymentState{Phase: PhaseFailed}, false
		}), ActionMarkFailed, v1alpha1.ReasonProgressDeadline, 0, ""},
		{"deadline with nothing to return to", base(promoted, func(in *Input) {
			in.Production, in.LastGood = DeploymentState{Phase: PhaseFailed}, Version{}
		}), ActionMarkFailed, v1alpha1.ReasonProgressDeadline, 0, ""},
		{"deadline when last good is the target itself", base(promoted, func(in *Input) {
			in.Production, in.LastGood = DeploymentState{Phase: PhaseFailed}, v2
		}), ActionMarkFailed, v1alpha1.ReasonProgressDeadline, 0, ""},
		{"pods failing but complete wins", base(promoted, func(in *Input) { in.PodsFailing = true }), ActionComplete, v1alpha1.ReasonRolloutComplete, 0, ""},

		// A version that failed is not deployed again.
		{"failed target, last good serving", base(func(in *Input) { in.TargetFailed = true }), ActionHold, v1alpha1.ReasonVersionFailed, 0, "version 1 keeps serving"},
		{"failed target says how it failed", base(func(in *Input) {
			in.TargetFailed, in.TargetFailure = true, "SmokeTestFailed: HTTP 400"
		}), ActionHold, v1alpha1.ReasonVersionFailed, 0, "version 2 failed (SmokeTestFailed: HTTP 400); version 1 keeps serving"},
		{"failed target, candidate left", base(func(in *Input) { in.TargetFailed = true }, candidate(readyCandidate)), ActionDeleteCandidate, v1alpha1.ReasonVersionFailed, 0, ""},
		{"failed target still in production (restart mid-rollback)", base(promoted, func(in *Input) { in.TargetFailed = true }), ActionRollback, v1alpha1.ReasonVersionFailed, 0, ""},
		{"failed target in production, auto-rollback off", base(promoted, func(in *Input) { in.TargetFailed, in.AutoRollback = true, false }), ActionHold, v1alpha1.ReasonVersionFailed, 0, ""},
		{"failed first version, nothing serves", base(func(in *Input) {
			in.TargetFailed, in.LastGood, in.ProductionImage = true, Version{}, ""
		}), ActionHold, v1alpha1.ReasonVersionFailed, 0, "nothing keeps serving"},
	})
}

// decision is a row of a decision table: the input, the action and reason
// Decide must answer, when to look again, and words its message holds.
type decision struct {
	name        string
	in          Input
	want        Action
	reason      v1alpha1.Reason
	requeue     time.Duration
	msgContains string
}

// checkDecisions runs a decision table.
func checkDecisions(t *testing.T, tests []decision) {
	t.Helper()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := Decide(tc.in)
			if d.Action != tc.want || d.Reason != tc.reason {
				t.Fatalf("Decide = %s/%s (%s), want %s/%s", d.Action, d.Reason, d.Message, tc.want, tc.reason)
			}
			if d.RequeueAfter != tc.requeue {
				t.Errorf("requeue after %s, want %s", d.RequeueAfter, tc.requeue)
			}
			if d.Message == "" || !strings.Contains(d.Message, tc.msgContains) {
				t.Errorf("message %q lacks %q", d.Message, tc.msgContains)
			}
		})
	}
}

// TestDecideNeverTouchesProductionBeforeVerification walks every candidate
// state for a new image and checks that no decision puts it into production
// unless the candidate is Ready and verified (or the smoke test is off).
func TestDecideNeverTouchesProductionBeforeVerification(t *testing.T) {
	now := time.Now()
	for _, exists := range []bool{false, true} {
		for _, ready := range []bool{false, true} {
			for _, failed := range []bool{false, true} {
				for _, verified := range []bool{false, true} {
					for _, smoke := range []Smoke{{}, {Ran: true, OK: true}, {Ran: true}} {
						for _, enabled := range []bool{false, true} {
							in := Input{
								Now: now, Target: Version{Version: "2", Image: "i2"}, LastGood: Version{Version: "1", Image: "i1"},
								ProductionImage: "i1", Production: DeploymentState{Phase: PhaseComplete},
								Candidate: Candidate{Exists: exists, Image: "i2", Ready: ready, Failed: failed, Verified: verified, Created: now},
								Smoke:     smoke, SmokeTestEnabled: enabled, AutoRollback: true, ProgressDeadline: time.Minute,
							}
							d := Decide(in)
							if d.Action != ActionPromote {
								continue
							}
							ok := exists && ready && !failed && (!enabled || verified || (smoke.Ran && smoke.OK))
							if !ok {
								t.Errorf("promoted with candidate %+v smoke %+v enabled %v", in.Candidate, smoke, enabled)
							}
						}
					}
				}
			}
		}
	}
}
