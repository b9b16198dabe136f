package rollout

import (
	"strings"
	"testing"
	"time"

	v1alpha1 "github.com/mlflow-operator/mlflow-operator/api/v1alpha1"
)

// TestDecideApprovalGate: with spec.rollout.approval Manual every way a
// version can reach production (verified, readiness only, served before)
// waits for the approve annotation, and the abort annotation rejects it;
// what comes before verification, what follows promotion and the first
// version are the same as with Automatic.
func TestDecideApprovalGate(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	readyCandidate := Candidate{Exists: true, Image: v2.Image, Ready: true, Created: now.Add(-time.Minute)}
	// base: v1 serves, v2 is built, approval is Manual.
	base := func(mut ...func(*Input)) Input {
		manual := func(in *Input) { in.ApprovalRequired = true }
		return servingV1(now, append([]func(*Input){manual}, mut...)...)
	}
	verified := func(in *Input) {
		in.Candidate = Candidate{Exists: true, Image: v2.Image, Ready: true, Verified: true, Created: now}
	}
	approved := func(in *Input) { in.Approved = true }
	aborted := func(in *Input) { in.Aborted = true }

	tests := []struct {
		name        string
		in          Input
		want        Action
		reason      v1alpha1.Reason
		approval    v1alpha1.Reason
		msgContains string
	}{
		// Held: every kind of verification.
		{"smoke test passed: waits", base(func(in *Input) { in.Candidate, in.Smoke = readyCandidate, Smoke{Ran: true, OK: true} }),
			ActionAwaitApproval, v1alpha1.ReasonVerified, v1alpha1.ReasonAwaitingApproval, "answered the smoke test; waiting for approval"},
		{"verified before a restart: waits, not tested again", base(verified),
			ActionAwaitApproval, v1alpha1.ReasonVerified, v1alpha1.ReasonAwaitingApproval, "version 2"},
		{"smoke test disabled: waits on readiness", base(func(in *Input) { in.Candidate, in.SmokeTestEnabled = readyCandidate, false }),
			ActionAwaitApproval, v1alpha1.ReasonReadinessOnly, v1alpha1.ReasonAwaitingApproval, "smoke test is disabled"},
		{"no request to send: waits on readiness", base(func(in *Input) {
			in.Candidate, in.Smoke = readyCandidate, Smoke{Ran: true, OK: true, NoRequest: true, Message: "the model has no input example"}
		}), ActionAwaitApproval, v1alpha1.ReasonReadinessOnly, v1alpha1.ReasonAwaitingApproval, "no input example"},
		{"served before: waits without a candidate", base(func(in *Input) { in.PreviouslyServed = true }),
			ActionAwaitApproval, v1alpha1.ReasonPreviouslyServed, v1alpha1.ReasonAwaitingApproval, "without a new candidate"},

		// Approved and aborted.
		{"approved: promoted", base(verified, approved), ActionPromote, v1alpha1.ReasonVerified, v1alpha1.ReasonApproved, "approved, promoting"},
		{"served before, approved: promoted", base(func(in *Input) { in.PreviouslyServed = true }, approved),
			ActionPromote, v1alpha1.ReasonPreviouslyServed, v1alpha1.ReasonApproved, "approved"},
		{"aborted: rejected, candidate removed", base(verified, aborted), ActionFailCandidate, v1alpha1.ReasonAborted, v1alpha1.ReasonAborted, "abort annotation rejects version 2"},
		{"approved and aborted: abort wins", base(verified, approved, aborted), ActionFailCandidate, v1alpha1.ReasonAborted, v1alpha1.ReasonAborted, ""},

		// The gate has no say before verification...
		{"approved in advance, no candidate yet", base(approved), ActionCreateCandidate, v1alpha1.ReasonCandidateStarting, "", ""},
		{"aborted in advance, candidate starting", base(aborted, func(in *Input) { in.Candidate = Candidate{Exists: true, Image: v2.Image, Created: now} }),
			ActionWait, v1alpha1.ReasonCandidateStarting, "", ""},
		{"ready, not tested yet", base(func(in *Input) { in.Candidate = readyCandidate }), ActionSmokeTest, v1alpha1.ReasonCandidateStarting, "", ""},
		{"smoke test failed while manual", base(func(in *Input) { in.Candidate, in.Smoke = readyCandidate, Smoke{Ran: true, Message: "HTTP 500"} }),
			ActionFailCandidate, v1alpha1.ReasonSmokeTestFailed, "", "HTTP 500"},
		{"verified candidate not Ready for a moment: still waits", base(func(in *Input) {
			in.Candidate = Candidate{Exists: true, Image: v2.Image, Verified: true, Created: now.Add(-time.Hour)}
		}), ActionAwaitApproval, v1alpha1.ReasonVerified, v1alpha1.ReasonAwaitingApproval, ""},
		{"verified candidate not Ready, approved: promoted", base(approved, func(in *Input) {
			in.Candidate = Candidate{Exists: true, Image: v2.Image, Verified: true, Created: now}
		}), ActionPromote, v1alpha1.ReasonVerified, v1alpha1.ReasonApproved, ""},
		{"waiting candidate crashes", base(func(in *Input) {
			in.Candidate = Candidate{Exists: true, Image: v2.Image, Ready: true, Verified: true, Failed: true, FailMessage: "CrashLoopBackOff", Created: now}
		}), ActionFailCandidate, v1alpha1.ReasonCandidateFailed, "", "CrashLoopBackOff"},
		{"failed version stays held", base(verified, approved, func(in *Input) { in.TargetFailed = true }), ActionDeleteCandidate, v1alpha1.ReasonVersionFailed, "", ""},

		// ...nor after promotion, nor for the first version.
		{"promoted version rolling out", base(func(in *Input) {
			in.ProductionImage, in.Production = v2.Image, DeploymentState{Phase: PhaseProgressing, Message: "1 of 3 replicas updated"}
		}), ActionWait, v1alpha1.ReasonRollingOut, "", ""},
		{"promoted version failing: rolled back without asking", base(func(in *Input) {
			in.ProductionImage, in.Production = v2.Image, DeploymentState{Phase: PhaseFailed, Message: "timed out"}
		}), ActionRollback, v1alpha1.ReasonProgressDeadline, "", ""},
		{"first version: nothing in production, not held", base(verified, func(in *Input) {
			in.LastGood, in.ProductionImage, in.Production = Version{}, "", DeploymentState{Phase: PhaseMissing}
		}), ActionPromote, v1alpha1.ReasonVerified, "", "promoting"},
		{"first version, verified candidate not Ready: waits for Ready as with Automatic", base(func(in *Input) {
			in.LastGood, in.ProductionImage, in.Production = Version{}, "", DeploymentState{Phase: PhaseMissing}
			in.Candidate = Candidate{Exists: true, Image: v2.Image, Verified: true, Created: now}
		}), ActionWait, v1alpha1.ReasonCandidateStarting, "", ""},
		{"automatic ignores the annotations", base(verified, aborted, func(in *Input) { in.ApprovalRequired = false }),
			ActionPromote, v1alpha1.ReasonVerified, "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := Decide(tc.in)
			if d.Action != tc.want || d.Reason != tc.reason || d.Approval != tc.approval {
				t.Fatalf("Decide = %s/%s/%q (%s), want %s/%s/%q", d.Action, d.Reason, d.Approval, d.Message, tc.want, tc.reason, tc.approval)
			}
			if d.Message == "" || !strings.Contains(d.Message, tc.msgContains) {
				t.Errorf("message %q lacks %q", d.Message, tc.msgContains)
			}
		})
	}
}

// TestDecideManualNeverPromotesUnapproved walks candidate, smoke test and
// history states with approval Manual and something in production: no
// decision promotes the target unless the approve annotation names it.
func TestDecideManualNeverPromotesUnapproved(t *testing.T) {
	now := time.Now()
	for _, ready := range []bool{false, true} {
		for _, verified := range []bool{false, true} {
			for _, smoke := range []Smoke{{}, {Ran: true, OK: true}, {Ran: true, OK: true, NoRequest: true}, {Ran: true}} {
				for _, enabled := range []bool{false, true} {
					for _, served := range []bool{false, true} {
						for _, approved := range []bool{false, true} {
							for _, aborted := range []bool{false, true} {
								in := Input{
									Now: now, Target: Version{Version: "2", Image: "i2"}, LastGood: Version{Version: "1", Image: "i1"},
									ProductionImage: "i1", Production: DeploymentState{Phase: PhaseComplete},
									Candidate: Candidate{Exists: true, Image: "i2", Ready: ready, Verified: verified, Created: now},
									Smoke:     smoke, SmokeTestEnabled: enabled, PreviouslyServed: served, AutoRollback: true,
									ProgressDeadline: time.Minute, ApprovalRequired: true, Approved: approved, Aborted: aborted,
								}
								d := Decide(in)
								if d.Action == ActionPromote && (!approved || aborted) {
									t.Errorf("promoted without approval: %+v -> %s (%s)", in, d.Action, d.Message)
								}
								if d.Action == ActionAwaitApproval && (approved || aborted) {
									t.Errorf("still waiting after approve=%v abort=%v: %s", approved, aborted, d.Message)
								}
							}
						}
					}
				}
			}
		}
	}
}
