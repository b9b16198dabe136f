// Package notify tells people about a ModelDeployment's rollout: a promotion
// started, a rollout completed, a version held or failed, a rollback, a
// failed build. Tenants subscribe with annotations on their
// ModelDeployments; the administrator configures the services (Slack,
// Microsoft Teams, signed generic webhooks), the message templates and the
// triggers in one ConfigMap and one Secret of the operator's namespace, the
// contract Argo CD and Argo Rollouts users know from notifications-engine
// (docs/notifications.md).
//
// Nothing here may slow a reconcile down or make it fail: Notify only puts
// the event in a bounded queue (dropping it, counted and logged, when the
// queue is full); workers read the configuration, render the messages and
// deliver them with bounded HTTP requests, retried with backoff. A receiver
// that is down costs a metric and a log line.
package notify

import (
	"time"

	corev1 "k8s.io/api/core/v1"

	v1alpha1 "github.com/mlflow-operator/mlflow-operator/api/v1alpha1"
)

// The triggers: the rollout transitions a subscription can name. Each is
// one kind of event the reconciler records (Trigger maps them).
const (
	// TriggerPromoted: a verified candidate's version goes to production.
	TriggerPromoted = "on-promoted"
	// TriggerRolloutComplete: the promoted version runs on every replica.
	TriggerRolloutComplete = "on-rollout-complete"
	// TriggerRolledBack: production went back to the last good version.
	TriggerRolledBack = "on-rolled-back"
	// TriggerVersionHeld: a version's candidate failed (did not start, did
	// not become Ready, failed the smoke test): the version is held back
	// and production is untouched.
	TriggerVersionHeld = "on-version-held"
	// TriggerVersionFailed: a promoted version failed in production and
	// there was nothing to roll back to (or auto-rollback is off).
	TriggerVersionFailed = "on-version-failed"
	// TriggerBuildFailed: the image of the target version could not be
	// built or pushed.
	TriggerBuildFailed = "on-build-failed"
	// TriggerAwaitingApproval: a verified version waits for a person's
	// approval (spec.rollout.approval: Manual).
	TriggerAwaitingApproval = "on-awaiting-approval"
)

// Triggers lists every trigger, in the order the documentation gives them.
var Triggers = []string{TriggerPromoted, TriggerRolloutComplete, TriggerRolledBack,
	TriggerVersionHeld, TriggerVersionFailed, TriggerBuildFailed, TriggerAwaitingApproval}

func knownTrigger(t string) bool {
	for _, k := range Triggers {
		if k == t {
			return true
		}
	}
	return false
}

// Trigger is the trigger of an event the reconciler records (its type,
// reason and action), or "" when no subscription can ask for it.
func Trigger(eventType string, reason v1alpha1.Reason, action v1alpha1.EventAction) string {
	warning := eventType == corev1.EventTypeWarning
	switch {
	case action == v1alpha1.ActionPromote && reason == v1alpha1.ReasonPromoted:
		return TriggerPromoted
	case action == v1alpha1.ActionRollout && reason == v1alpha1.ReasonRolloutComplete:
		return TriggerRolloutComplete
	case action == v1alpha1.ActionRollback && reason == v1alpha1.ReasonRolledBack:
		return TriggerRolledBack
	case action == v1alpha1.ActionVerify && warning:
		return TriggerVersionHeld
	case action == v1alpha1.ActionRollout && warning:
		return TriggerVersionFailed
	case action == v1alpha1.ActionBuild && warning:
		return TriggerBuildFailed
	case action == v1alpha1.ActionApprove && reason == v1alpha1.ReasonAwaitingApproval:
		return TriggerAwaitingApproval
	}
	return ""
}

// Fields are what a message may say: the event and the ModelDeployment it
// concerns. Every one of them may come from a tenant (names, the model's
// name) or from a server a tenant controls (MLflow's and registries' error
// messages); templates get them bounded and escaped for the service.
type Fields struct {
	Trigger string
	// Type is Normal or Warning; Reason and Action the event's.
	Type, Reason, Action string
	// Message is the event's message.
	Message string
	// Namespace, Name and UID are the ModelDeployment's.
	Namespace, Name, UID string
	// Model is the MLflow model's name; Version and Image the target
	// version (the one the event is about) and its image.
	Model, Version, Image string
	// ServingVersion and LastGoodVersion are what status says serves and
	// last served on every replica.
	ServingVersion, LastGoodVersion string
	// Time is when the event was recorded.
	Time time.Time
}

// fieldsOf reads the Fields of an event on md.
func fieldsOf(md *v1alpha1.ModelDeployment, trigger, eventType string, reason v1alpha1.Reason, action v1alpha1.EventAction, note string, now time.Time) Fields {
	f := Fields{
		Trigger: trigger, Type: eventType, Reason: string(reason), Action: string(action), Message: note,
		Namespace: md.Namespace, Name: md.Name, UID: string(md.UID), Model: md.Spec.Model.Name, Time: now.UTC(),
	}
	if t := md.Status.Target; t != nil {
		f.Version, f.Image = t.Version, t.Image
	}
	if s := md.Status.Serving; s != nil {
		f.ServingVersion = s.Version
	}
	if lg := md.Status.LastGood; lg != nil {
		f.LastGoodVersion = lg.Version
	}
	return f
}
