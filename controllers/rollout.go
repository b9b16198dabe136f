package controllers

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1alpha1 "github.com/mlflow-operator/mlflow-operator/api/v1alpha1"
	"github.com/mlflow-operator/mlflow-operator/internal/metrics"
	"github.com/mlflow-operator/mlflow-operator/internal/resources"
	"github.com/mlflow-operator/mlflow-operator/internal/rollout"
	"github.com/mlflow-operator/mlflow-operator/internal/status"
	"github.com/mlflow-operator/mlflow-operator/internal/text"
)

// reconcileRollout decides, with rollout.Decide, what happens to the target
// image and carries it out: a one-replica candidate is started and
// smoke-tested, a verified one is promoted, a promotion is followed to
// completion or rolled back to the last good version. It records the outcome
// in status and leaves in s the image the production Deployment must run.
func (r *ModelDeploymentReconciler) reconcileRollout(ctx context.Context, s *scope) (bool, error) {
	md, w := s.md, s.w
	in := rollout.Input{
		Now: s.now, ProgressDeadline: md.Spec.ProgressDeadline(),
		SmokeTestEnabled: md.Spec.SmokeTestEnabled(), SmokeTestRequired: md.Spec.Rollout.SmokeTest.Required,
		AutoRollback: md.Spec.AutoRollback(),
	}
	if t := md.Status.Target; t != nil && t.Image != "" {
		in.Target = rollout.Version{Version: t.Version, Image: t.Image}
		in.PreviouslyServed = servedBefore(md, t.Image)
	}
	if lg := md.Status.LastGood; lg != nil {
		in.LastGood = rollout.Version{Version: lg.Version, Image: lg.Image}
	}
	desired := desiredProduction(md)
	in.ProductionImage = desired.Image
	in.Production = rollout.ObserveDeployment(w.production)
	if w.production != nil && templateImage(w.production) != desired.Image && in.Production.Phase == rollout.PhaseComplete {
		// The cache has not seen the last pass's apply yet.
		in.Production.Phase, in.Production.Message = rollout.PhaseProgressing, "waiting for the Deployment to run "+desired.Image
	}
	in.PodsFailing, in.PodsFailingMessage = podsFailing(w.productionPods, desired.Image)
	in.Candidate = candidateState(w.candidate, w.candidatePods)
	in.Candidate.ServedBefore = in.Candidate.Exists && servedBefore(md, in.Candidate.Image)
	in.TargetFailed, in.TargetFailure = r.targetFailed(s)
	in.ApprovalRequired = md.Spec.ApprovalRequired()
	in.Approved, in.Aborted = approvalInput(md)
	blueGreenInput(md, &in)
	canaryInput(s, &in)
	if err := r.dropCanarySet(ctx, s, &in); err != nil {
		return false, err
	}

	d := rollout.Decide(in)
	if d.Action == rollout.ActionAnalyze {
		if out, pending := r.analyze(s); !pending {
			in.Canary.Analysis = out
			md.Status.Canary.Analysis = text.Shorten(out.Message, 1024)
			d = rollout.Decide(in)
		}
	}
	if d.Action == rollout.ActionSmokeTest {
		if smoke, pending := r.smokeTest(s); !pending {
			in.Smoke = smoke
			if in.Smoke.OK && !in.Smoke.NoRequest {
				if err := r.markVerified(ctx, w.candidate, in.Target.Image); err != nil {
					return false, err
				}
			}
			d = rollout.Decide(in)
		}
	}
	s.requeue(d.RequeueAfter)
	switch d.Action {
	case rollout.ActionCreateCandidate, rollout.ActionPromote, rollout.ActionDeleteCandidate, rollout.ActionCanaryStep:
		// Look again soon: an apply that changes nothing sends no event, and
		// the cache may not show this pass's writes yet.
		s.requeue(2 * time.Second)
	case rollout.ActionWait:
		s.requeue(10 * time.Second)
	case rollout.ActionSmokeTest:
		// Its end reconciles again; this is in case that trigger is lost.
		s.requeue(md.Spec.SmokeTestTimeout() + 5*time.Second)
	case rollout.ActionAnalyze:
		s.requeue(analysisRequeue)
	}
	switch d.Action {
	case rollout.ActionPromote, rollout.ActionFailCandidate:
		r.smokes.Forget(md.Namespace, md.Name)
		r.analyses.Forget(md.Namespace, md.Name)
	}
	r.recordGate(s, d)
	if err := r.act(ctx, s, in, d); err != nil {
		return false, err
	}
	if d.Action == rollout.ActionRollback {
		// Recorded before the production Deployment changes.
		if err := r.persist(ctx, s); err != nil {
			return false, err
		}
	}
	prod := desiredProduction(md)
	s.image, s.version = prod.Image, prod.Version
	return true, nil
}

// act carries a decision out.
func (r *ModelDeploymentReconciler) act(ctx context.Context, s *scope, in rollout.Input, d rollout.Decision) error {
	md := s.md
	target := md.Status.Target
	switch d.Action {
	case rollout.ActionWait:
		if in.Target.Empty() {
			return nil
		}
		if in.ProductionImage != in.Target.Image {
			setCondition(md, v1alpha1.ConditionCandidateVerified, metav1.ConditionFalse, d.Reason, d.Message)
		}
		s.wait(d.Reason, d.Message)

	case rollout.ActionSmokeTest:
		setCondition(md, v1alpha1.ConditionCandidateVerified, metav1.ConditionFalse, d.Reason, d.Message)
		s.wait(d.Reason, d.Message)

	case rollout.ActionAnalyze:
		s.wait(d.Reason, d.Message)

	case rollout.ActionCanaryStep:
		return r.canaryStep(ctx, s, d)

	case rollout.ActionCreateCandidate:
		md.Status.Canary = nil
		if md.Spec.BlueGreen() {
			if err := r.createPreview(ctx, s, *target); err != nil {
				return err
			}
		} else if err := r.createCandidate(ctx, md, *target); err != nil {
			return err
		}
		r.startHistory(s, *target)
		if setCondition(md, v1alpha1.ConditionCandidateVerified, metav1.ConditionFalse, d.Reason, d.Message) {
			r.event(md, corev1.EventTypeNormal, d.Reason, v1alpha1.ActionVerify, d.Message)
		}
		s.wait(d.Reason, d.Message)

	case rollout.ActionDeleteCandidate:
		if err := r.deleteCandidate(ctx, s.w); err != nil {
			return err
		}
		if d.Reason == v1alpha1.ReasonVersionFailed {
			s.fail(status.Outcome{Stalled: true, Reason: d.Reason, Message: d.Message})
		}

	case rollout.ActionPromote:
		now := metav1.NewTime(s.now)
		md.Status.Promoting = &v1alpha1.ServingVersionStatus{ModelVersionRef: *target, Since: &now}
		r.startHistory(s, *target)
		setCondition(md, v1alpha1.ConditionCandidateVerified, metav1.ConditionTrue, d.Reason, d.Message)
		blueGreen := in.BlueGreen && s.w.candidate != nil
		if blueGreen {
			// The preview (or the canary set, grown to production's
			// size) becomes production; the old set stays.
			switchSlots(s)
		}
		md.Status.Canary = nil
		// Recorded before the candidate goes and production changes.
		if err := r.persist(ctx, s); err != nil {
			return err
		}
		if !blueGreen {
			if err := r.deleteCandidate(ctx, s.w); err != nil {
				return err
			}
		}
		if d.Reason != v1alpha1.ReasonVerified {
			// Say what was (not) checked: readiness alone, or an earlier rollout.
			r.event(md, corev1.EventTypeNormal, d.Reason, v1alpha1.ActionVerify, d.Message)
		}
		r.event(md, corev1.EventTypeNormal, v1alpha1.ReasonPromoted, v1alpha1.ActionPromote, d.Message)
		s.wait(v1alpha1.ReasonRollingOut, d.Message)

	case rollout.ActionFailCandidate:
		if md.Status.Canary != nil {
			// The canary took traffic: the Service goes back to
			// production alone in this pass, and the next deletes the
			// set (the failed version's candidate), once no Service
			// selects it.
			md.Status.Canary = nil
		} else if err := r.deleteCandidate(ctx, s.w); err != nil {
			return err
		}
		r.recordFailure(s, *target, d.Reason, d.Message, v1alpha1.OutcomeFailed)
		setCondition(md, v1alpha1.ConditionCandidateVerified, metav1.ConditionFalse, d.Reason, d.Message)
		r.event(md, corev1.EventTypeWarning, d.Reason, v1alpha1.ActionVerify, d.Message+"; production is untouched")
		s.fail(status.Outcome{Stalled: true, Reason: d.Reason, Message: d.Message})

	case rollout.ActionComplete:
		r.complete(s, d)

	case rollout.ActionRollback:
		failed := *target
		r.recordFailure(s, failed, d.Reason, d.Message, v1alpha1.OutcomeRolledBack)
		md.Status.Promoting = nil
		lg := md.Status.LastGood
		if switchBack(in) {
			// BlueGreen kept the last good version's set: switch to it.
			switchSlots(s)
		}
		if md.Status.Serving == nil || md.Status.Serving.Image != lg.Image {
			now := metav1.NewTime(s.now)
			md.Status.Serving = &v1alpha1.ServingVersionStatus{ModelVersionRef: *lg, Since: &now}
		}
		msg := fmt.Sprintf("rolled back from version %s to version %s: %s", failed.Version, lg.Version, d.Message)
		setCondition(md, v1alpha1.ConditionRolledBack, metav1.ConditionTrue, d.Reason, msg)
		r.event(md, corev1.EventTypeWarning, v1alpha1.ReasonRolledBack, v1alpha1.ActionRollback, msg)
		s.onCommit(func() { metrics.RolledBack(string(d.Reason)) })
		s.fail(status.Outcome{Stalled: true, Reason: d.Reason, Message: d.Message})

	case rollout.ActionMarkFailed:
		r.recordFailure(s, *target, d.Reason, d.Message, v1alpha1.OutcomeFailed)
		r.event(md, corev1.EventTypeWarning, d.Reason, v1alpha1.ActionRollout, d.Message)
		s.fail(status.Outcome{Stalled: true, Reason: d.Reason, Message: d.Message})

	case rollout.ActionHold:
		s.fail(status.Outcome{Stalled: true, Reason: d.Reason, Message: d.Message})

	case rollout.ActionAwaitApproval:
		// Verified, and held for a person (approval.go); the candidate
		// stays up, production is not touched.
		setCondition(md, v1alpha1.ConditionCandidateVerified, metav1.ConditionTrue, d.Reason, d.Message)
		s.pause(v1alpha1.ReasonAwaitingApproval, awaitingMessage(md, d))
	}
	return nil
}

// createCandidate applies RollingUpdate's one-replica candidate of target.
func (r *ModelDeploymentReconciler) createCandidate(ctx context.Context, md *v1alpha1.ModelDeployment, target v1alpha1.ModelVersionRef) error {
	cand := resources.CandidateDeployment(md, r.workload(md, target.Image, target.Version))
	if err := r.checkOwnership(ctx, md, cand); err != nil {
		return err
	}
	_, err := apply(ctx, r.Client, cand, FieldOwner)
	return err
}

// servedBefore tells whether image rolled out completely before: it is the
// last good one, or a rollout of it succeeded in the history.
func servedBefore(md *v1alpha1.ModelDeployment, image string) bool {
	if lg := md.Status.LastGood; lg != nil && lg.Image == image {
		return true
	}
	for _, h := range md.Status.History {
		if h.Image == image && h.Outcome == v1alpha1.OutcomeSucceeded {
			return true
		}
	}
	return false
}

// complete records a promotion that reached every replica: the version is
// serving and the last good one.
func (r *ModelDeploymentReconciler) complete(s *scope, d rollout.Decision) {
	md := s.md
	p := md.Status.Promoting
	if p == nil {
		// The version serving already; nothing was being promoted.
		return
	}
	now := metav1.NewTime(s.now)
	md.Status.Serving = &v1alpha1.ServingVersionStatus{ModelVersionRef: p.ModelVersionRef, Since: &now}
	md.Status.LastGood = p.ModelVersionRef.DeepCopy()
	md.Status.Promoting = nil
	r.endHistory(s, p.Image, v1alpha1.OutcomeSucceeded, d.Reason)
	msg := fmt.Sprintf("version %s serves: %s", p.Version, d.Message)
	if p.Since != nil {
		msg += fmt.Sprintf(" (%s after promotion)", s.now.Sub(p.Since.Time).Round(time.Second))
	}
	r.event(md, corev1.EventTypeNormal, v1alpha1.ReasonRolloutComplete, v1alpha1.ActionRollout, msg)
}
