package rollout

import (
	"fmt"
	"time"

	v1alpha1 "github.com/mlflow-operator/mlflow-operator/api/v1alpha1"
)

// Version is a model version and its image.
type Version struct {
	Version string
	Image   string
}

// Empty tells whether v names nothing.
func (v Version) Empty() bool { return v.Image == "" }

// Candidate is what the one-replica candidate Deployment of a new image says.
type Candidate struct {
	// Exists: the candidate Deployment is there.
	Exists bool
	// Image it runs.
	Image string
	// Ready: its replica is available.
	Ready bool
	// Failed: its pod crash-loops, cannot pull its image, or its Deployment
	// exceeded its progress deadline. FailMessage says which.
	Failed      bool
	FailMessage string
	// Created is when the candidate Deployment was created.
	Created time.Time
	// Verified: the smoke test passed against this image (recorded on the
	// candidate Deployment, so a restarted operator does not test again).
	Verified bool
	// ServedBefore: the candidate's image rolled out completely before.
	// BlueGreen's set beside production is then the old version's, kept
	// to switch back to; otherwise it is a preview (or canary) the model
	// reference moved away from before it was promoted.
	ServedBefore bool
}

// Smoke is the result of a smoke test the reconciler ran in this pass.
type Smoke struct {
	Ran bool
	OK  bool
	// NoRequest: there was nothing to send (the model has no input example
	// and the spec gives no request); OK then rests on readiness alone, and
	// Message says why.
	NoRequest bool
	Message   string
}

// Input is everything a rollout decision depends on.
type Input struct {
	Now time.Time
	// Target is the version the model reference means, with its built image
	// (Image empty while it is being built).
	Target Version
	// LastGood is the last version that rolled out completely.
	LastGood Version
	// TargetFailed tells whether the target version failed before and was
	// not retried since; TargetFailure says how.
	TargetFailed  bool
	TargetFailure string
	// Production is the production Deployment's rollout, and ProductionImage
	// the image its pod template runs ("" when it does not exist).
	Production      DeploymentState
	ProductionImage string
	// PodsFailing: pods of the production Deployment's newest revision
	// crash-loop or cannot start.
	PodsFailing        bool
	PodsFailingMessage string
	Candidate          Candidate
	Smoke              Smoke
	SmokeTestEnabled   bool
	// SmokeTestRequired refuses to promote on readiness alone.
	SmokeTestRequired bool
	// PreviouslyServed: the target's image rolled out completely before
	// (it is in the history as succeeded); it needs no new candidate.
	PreviouslyServed bool
	AutoRollback     bool
	ProgressDeadline time.Duration
	// ApprovalRequired: spec.rollout.approval is Manual. A verified version
	// then waits for a person (ActionAwaitApproval) instead of being
	// promoted, unless production runs nothing yet: the first version does
	// not wait.
	ApprovalRequired bool
	// Approved and Aborted: the approve or abort annotation names the
	// target version with a value not acted upon before. Both count only
	// where the version would otherwise wait; Aborted wins over Approved.
	Approved bool
	Aborted  bool
	// BlueGreen: the candidate is the new version's whole set in the slot
	// beside production; promoting switches the Service to it, and after a
	// switch the candidate is the old version's set, kept until
	// ScaleDownAt (zero while the promotion has not completed).
	BlueGreen      bool
	ScaleDownAt    time.Time
	ScaleDownDelay time.Duration
	// Canary: the strategy is Canary (BlueGreen is set too: the canary set
	// is the slot beside production, and the last step is BlueGreen's
	// switch); nil otherwise.
	Canary *CanaryInput
}

// Action is what the reconciler does next.
type Action string

const (
	// ActionWait: nothing to do until something changes (a build, a pod).
	ActionWait Action = "Wait"
	// ActionCreateCandidate: apply the candidate Deployment for the target
	// image (replacing a candidate of another image).
	ActionCreateCandidate Action = "CreateCandidate"
	// ActionSmokeTest: send the smoke test to the ready candidate.
	ActionSmokeTest Action = "SmokeTest"
	// ActionPromote: record the candidate verified, delete it, and put the
	// target image into the production Deployment.
	ActionPromote Action = "Promote"
	// ActionFailCandidate: mark the target version failed and delete the
	// candidate; production is not touched.
	ActionFailCandidate Action = "FailCandidate"
	// ActionDeleteCandidate: a candidate is left over; delete it.
	ActionDeleteCandidate Action = "DeleteCandidate"
	// ActionComplete: production runs the target on every replica: record
	// it as serving and last good.
	ActionComplete Action = "Complete"
	// ActionRollback: mark the target failed and put LastGood's image back
	// into the production Deployment.
	ActionRollback Action = "Rollback"
	// ActionMarkFailed: mark the target failed; nothing to roll back to (or
	// auto-rollback is off), so production stays as it is.
	ActionMarkFailed Action = "MarkFailed"
	// ActionHold: the target failed before; keep what serves, and say so.
	ActionHold Action = "Hold"
	// ActionAwaitApproval: the target passed verification and waits for a
	// person's approval; its candidate stays, production is not touched.
	ActionAwaitApproval Action = "AwaitApproval"
	// ActionCanaryStep: move the canary to Decision.Step: size the canary
	// set for the step's weight; the Service selects it beside production.
	ActionCanaryStep Action = "CanaryStep"
	// ActionAnalyze: run the analysis of the current canary step.
	ActionAnalyze Action = "Analyze"
)

// Decision is the next action, why, and when to look again.
type Decision struct {
	Action Action
	// Reason is the condition and event reason (api/v1alpha1 holds them all).
	Reason  v1alpha1.Reason
	Message string
	// RequeueAfter, when set, is when the situation changes by the clock
	// alone (a deadline passes).
	RequeueAfter time.Duration
	// Approval is the approval gate's part in the decision: empty when it
	// had none; AwaitingApproval with ActionAwaitApproval (Reason then
	// says how the waiting version was verified); Approved with the
	// ActionPromote the approve annotation let through; Aborted with the
	// ActionFailCandidate the abort annotation asked for.
	Approval v1alpha1.Reason
	// Step is the canary step ActionCanaryStep moves to.
	Step int
}

// Decide is the rollout's next step. A new image is first run as a
// one-replica candidate outside the production Service; only a candidate
// that becomes Ready and answers the smoke test is promoted, and a promotion
// that stalls or whose pods fail is rolled back to the last good version. A
// version that failed is not deployed again until it is retried.
func Decide(in Input) Decision {
	target := in.Target
	switch {
	case target.Empty():
		// BlueGreen's set beside production may be the old version's,
		// kept to switch back to: the target may be that version, its
		// image not looked up yet. It stays until the image is known.
		if in.Candidate.Exists && !in.BlueGreen {
			return Decision{Action: ActionDeleteCandidate, Reason: v1alpha1.ReasonCandidateLeftOver, Message: "no image to verify; removing the candidate"}
		}
		return Decision{Action: ActionWait, Reason: v1alpha1.ReasonWaitingForImage, Message: "waiting for the target's image"}

	case in.TargetFailed:
		return decideFailedTarget(in)

	case in.ProductionImage == target.Image:
		return decidePromoted(in)

	default:
		return decideCandidate(in)
	}
}

// decideFailedTarget: the target failed before. Production must not run it.
func decideFailedTarget(in Input) Decision {
	msg := fmt.Sprintf("version %s failed before; %s keeps serving (a new version, a spec change or the retry annotation moves on)",
		in.Target.Version, describe(in.LastGood))
	if in.TargetFailure != "" {
		msg = fmt.Sprintf("version %s failed (%s); %s keeps serving (a new version, a spec change or the retry annotation moves on)",
			in.Target.Version, in.TargetFailure, describe(in.LastGood))
	}
	if in.ProductionImage == in.Target.Image && in.AutoRollback && !in.LastGood.Empty() && in.LastGood.Image != in.Target.Image {
		return Decision{Action: ActionRollback, Reason: v1alpha1.ReasonVersionFailed, Message: msg}
	}
	if in.Candidate.Exists {
		return Decision{Action: ActionDeleteCandidate, Reason: v1alpha1.ReasonVersionFailed, Message: msg}
	}
	return Decision{Action: ActionHold, Reason: v1alpha1.ReasonVersionFailed, Message: msg}
}

// decidePromoted: production already runs the target image.
func decidePromoted(in Input) Decision {
	if !in.Candidate.Exists {
		return decideProduction(in)
	}
	if !in.BlueGreen || in.Candidate.Image == in.Target.Image {
		return Decision{Action: ActionDeleteCandidate, Reason: v1alpha1.ReasonCandidateLeftOver, Message: "the target is in production; removing its candidate"}
	}
	if !in.Candidate.ServedBefore {
		return Decision{Action: ActionDeleteCandidate, Reason: v1alpha1.ReasonCandidateLeftOver,
			Message: fmt.Sprintf("version %s serves; removing the set of a version that was never promoted", in.Target.Version)}
	}
	// BlueGreen's old set: kept for the scale-down delay after the
	// promotion completed, so that going back to it is a switch.
	if !in.ScaleDownAt.IsZero() && !in.Now.Before(in.ScaleDownAt) {
		return Decision{Action: ActionDeleteCandidate, Reason: v1alpha1.ReasonCandidateLeftOver,
			Message: fmt.Sprintf("version %s serves; scaling down the previous set after the scale-down delay (%s)", in.Target.Version, in.ScaleDownDelay)}
	}
	d := decideProduction(in)
	wait := max(in.ScaleDownDelay, time.Second)
	if !in.ScaleDownAt.IsZero() {
		wait = in.ScaleDownAt.Sub(in.Now)
	}
	if d.RequeueAfter == 0 || wait < d.RequeueAfter {
		d.RequeueAfter = wait
	}
	return d
}

// decideProduction: production runs the target image; follow its rollout.
func decideProduction(in Input) Decision {
	fail := func(reason v1alpha1.Reason, msg string) Decision {
		if in.AutoRollback && !in.LastGood.Empty() && in.LastGood.Image != in.Target.Image {
			return Decision{Action: ActionRollback, Reason: reason,
				Message: fmt.Sprintf("version %s: %s; rolling back to %s", in.Target.Version, msg, describe(in.LastGood))}
		}
		return Decision{Action: ActionMarkFailed, Reason: reason, Message: fmt.Sprintf("version %s: %s", in.Target.Version, msg)}
	}
	switch {
	case in.Production.Phase == PhaseComplete:
		return Decision{Action: ActionComplete, Reason: v1alpha1.ReasonRolloutComplete, Message: in.Production.Message}
	case in.Production.Phase == PhaseFailed:
		return fail(v1alpha1.ReasonProgressDeadline, in.Production.Message)
	case in.PodsFailing:
		return fail(v1alpha1.ReasonPodsFailing, in.PodsFailingMessage)
	default:
		return Decision{Action: ActionWait, Reason: v1alpha1.ReasonRollingOut, Message: in.Production.Message}
	}
}

// decideCandidate: the target image is not in production yet; verify it.
func decideCandidate(in Input) Decision {
	c, target := in.Candidate, in.Target
	// promote says what was checked and how the promotion goes; the
	// approval gate may hold it.
	promote := func(reason v1alpha1.Reason, checked, how string) Decision {
		if canarySteps(in) && reason != v1alpha1.ReasonPreviouslyServed {
			return startCanary(in, gate(in, Decision{Action: ActionPromote, Reason: reason, Message: checked + "; promoting in canary steps"}, checked, " in canary steps"))
		}
		if in.BlueGreen && how == "" {
			how = " by switching the Service to its set"
		}
		return gate(in, Decision{Action: ActionPromote, Reason: reason, Message: checked + "; promoting" + how}, checked, how)
	}
	served := fmt.Sprintf("version %s served every replica before with this image", target.Version)
	switch {
	case in.PreviouslyServed && !in.BlueGreen:
		return promote(v1alpha1.ReasonPreviouslyServed, served, " without a new candidate")
	case !c.Exists || c.Image != target.Image:
		what := "a candidate"
		switch {
		case in.Canary != nil:
			what = "the canary set"
		case in.BlueGreen:
			what = "the preview set"
		}
		return Decision{Action: ActionCreateCandidate, Reason: v1alpha1.ReasonCandidateStarting,
			Message: fmt.Sprintf("starting %s of version %s", what, target.Version)}
	case in.Canary != nil && in.Canary.Step >= 0:
		return decideCanary(in)
	case c.Failed:
		return Decision{Action: ActionFailCandidate, Reason: v1alpha1.ReasonCandidateFailed,
			Message: fmt.Sprintf("candidate of version %s failed: %s", target.Version, c.FailMessage)}
	case in.PreviouslyServed && c.Ready:
		// BlueGreen: its set runs (kept since it served, or started
		// again); no smoke test for a version that served before.
		return promote(v1alpha1.ReasonPreviouslyServed, served, " by switching the Service to its set")
	case c.Verified && gated(in):
		// Verified, and held for a person: its readiness since (a pod
		// restarting, the Deployment's generation moved by the verified
		// annotation) does not take the verification back.
		return promote(v1alpha1.ReasonVerified, fmt.Sprintf("candidate of version %s answered the smoke test", target.Version), "")
	case !c.Ready:
		elapsed := in.Now.Sub(c.Created)
		if elapsed < 0 {
			elapsed = 0 // a clock behind the API server's: never fail early
		}
		if elapsed >= in.ProgressDeadline {
			return Decision{Action: ActionFailCandidate, Reason: v1alpha1.ReasonCandidateNotReady,
				Message: fmt.Sprintf("candidate of version %s not Ready after %s (progress deadline %s)", target.Version, elapsed.Round(time.Second), in.ProgressDeadline)}
		}
		return Decision{Action: ActionWait, Reason: v1alpha1.ReasonCandidateStarting,
			Message: fmt.Sprintf("waiting for the candidate of version %s to become Ready", target.Version), RequeueAfter: in.ProgressDeadline - elapsed}
	case !in.SmokeTestEnabled:
		return promote(v1alpha1.ReasonReadinessOnly,
			fmt.Sprintf("candidate of version %s is Ready", target.Version), " without a request (the smoke test is disabled)")
	case c.Verified || (in.Smoke.Ran && in.Smoke.OK && !in.Smoke.NoRequest):
		return promote(v1alpha1.ReasonVerified, fmt.Sprintf("candidate of version %s answered the smoke test", target.Version), "")
	case in.Smoke.Ran && in.Smoke.OK && in.SmokeTestRequired:
		return Decision{Action: ActionFailCandidate, Reason: v1alpha1.ReasonNoSmokeTestRequest,
			Message: fmt.Sprintf("candidate of version %s is Ready but %s, and smokeTest.required refuses to promote on readiness alone", target.Version, in.Smoke.Message)}
	case in.Smoke.Ran && in.Smoke.OK:
		return promote(v1alpha1.ReasonReadinessOnly,
			fmt.Sprintf("candidate of version %s is Ready", target.Version), " without a request: "+in.Smoke.Message)
	case in.Smoke.Ran:
		return Decision{Action: ActionFailCandidate, Reason: v1alpha1.ReasonSmokeTestFailed,
			Message: fmt.Sprintf("candidate of version %s failed the smoke test: %s", target.Version, in.Smoke.Message)}
	default:
		return Decision{Action: ActionSmokeTest, Reason: v1alpha1.ReasonCandidateStarting,
			Message: fmt.Sprintf("candidate of version %s is Ready; sending the smoke test", target.Version)}
	}
}

// gate is the approval gate in front of promotion p of a version (checked
// says how it was verified, how the way it would be promoted). With
// approval Automatic, or nothing in production yet, p goes through. With
// Manual the version waits, unless the abort annotation rejects it or the
// approve annotation lets it through.
func gate(in Input, p Decision, checked, how string) Decision {
	switch {
	case !gated(in):
		return p
	case in.Aborted:
		return Decision{Action: ActionFailCandidate, Reason: v1alpha1.ReasonAborted, Approval: v1alpha1.ReasonAborted,
			Message: fmt.Sprintf("%s; aborted before promotion: the abort annotation rejects version %s", checked, in.Target.Version)}
	case in.Approved:
		p.Approval, p.Message = v1alpha1.ReasonApproved, checked+"; approved, promoting"+how
		return p
	default:
		return Decision{Action: ActionAwaitApproval, Reason: p.Reason, Approval: v1alpha1.ReasonAwaitingApproval,
			Message: checked + "; waiting for approval before promoting" + how}
	}
}

// gated tells whether a verified target waits for approval: approval is
// Manual and production runs something already.
func gated(in Input) bool { return in.ApprovalRequired && in.ProductionImage != "" }

func describe(v Version) string {
	if v.Empty() {
		return "nothing"
	}
	if v.Version == "" {
		return v.Image
	}
	return "version " + v.Version
}
