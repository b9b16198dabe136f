// Package status turns what the reconcile steps found into the kstatus
// summary conditions (Ready, Reconciling, Stalled) and the steps' own
// conditions. It is pure: no client, no network, no clock.
package status

import (
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1alpha1 "github.com/mlflow-operator/mlflow-operator/api/v1alpha1"
	"github.com/mlflow-operator/mlflow-operator/internal/text"
)

// MaxMessage bounds a condition's message. Messages carry outside text (an
// MLflow server's error, an admission webhook's answer): unbounded, a large
// one would make the API server refuse the whole status.
const MaxMessage = 1024

// Outcome is how a reconcile ended, as the summary conditions tell it: the
// first failure of any step (resolve, build, rollout), else the first step
// still under way, else success.
type Outcome struct {
	// Ready: the followed version serves with all replicas available.
	Ready bool
	// Stalled: no progress without a change from a person. Reason and
	// Message then say why.
	Stalled bool
	// Failing: a step failed and will be retried (Ready=False while
	// Reconciling=True); without it Ready is Unknown while work is under way.
	Failing bool
	// Paused: nothing failed and no work is under way; the operator waits
	// for a person's decision (a verified version awaiting approval).
	// Ready=False with neither Reconciling nor Stalled: kubectl wait for
	// Ready and kstatus (InProgress) keep waiting, as the version the
	// reference means does not serve; the shipped Argo CD health check
	// says Suspended.
	Paused bool
	// Reason and Message of the Ready (and Reconciling or Stalled) condition.
	Reason  v1alpha1.Reason
	Message string
}

// SetSummary writes the kstatus summary conditions for outcome: Ready always;
// Reconciling only while work is under way; Stalled only while stuck; never
// both Reconciling and Stalled; neither while paused.
func SetSummary(conds *[]metav1.Condition, generation int64, o Outcome) {
	set := func(t string, status metav1.ConditionStatus) {
		meta.SetStatusCondition(conds, metav1.Condition{
			Type: t, Status: status, Reason: string(o.Reason), Message: text.Shorten(o.Message, MaxMessage), ObservedGeneration: generation,
		})
	}
	switch {
	case o.Ready:
		set(v1alpha1.ConditionReady, metav1.ConditionTrue)
		meta.RemoveStatusCondition(conds, v1alpha1.ConditionReconciling)
		meta.RemoveStatusCondition(conds, v1alpha1.ConditionStalled)
	case o.Stalled:
		set(v1alpha1.ConditionReady, metav1.ConditionFalse)
		set(v1alpha1.ConditionStalled, metav1.ConditionTrue)
		meta.RemoveStatusCondition(conds, v1alpha1.ConditionReconciling)
	case o.Paused:
		set(v1alpha1.ConditionReady, metav1.ConditionFalse)
		meta.RemoveStatusCondition(conds, v1alpha1.ConditionReconciling)
		meta.RemoveStatusCondition(conds, v1alpha1.ConditionStalled)
	default:
		status := metav1.ConditionUnknown
		if o.Failing {
			status = metav1.ConditionFalse
		}
		set(v1alpha1.ConditionReady, status)
		set(v1alpha1.ConditionReconciling, metav1.ConditionTrue)
		meta.RemoveStatusCondition(conds, v1alpha1.ConditionStalled)
	}
}

// SetSuspended says in the summary that reconciliation is suspended: Ready
// keeps the status it last had (the operator changed nothing since), with
// the reason Suspended and a message that says so; Reconciling and Stalled
// go, since no work is under way and nothing is stuck.
func SetSuspended(conds *[]metav1.Condition, generation int64, message string) {
	status := metav1.ConditionUnknown
	if ready := meta.FindStatusCondition(*conds, v1alpha1.ConditionReady); ready != nil {
		status = ready.Status
	}
	meta.SetStatusCondition(conds, metav1.Condition{
		Type: v1alpha1.ConditionReady, Status: status, Reason: string(v1alpha1.ReasonSuspended),
		Message: text.Shorten(message, MaxMessage), ObservedGeneration: generation,
	})
	meta.RemoveStatusCondition(conds, v1alpha1.ConditionReconciling)
	meta.RemoveStatusCondition(conds, v1alpha1.ConditionStalled)
}

// SetCondition sets a step's condition at generation and tells whether its
// status or reason changed: a transition worth an event.
func SetCondition(conds *[]metav1.Condition, generation int64, t string, status metav1.ConditionStatus, reason v1alpha1.Reason, msg string) bool {
	old := meta.FindStatusCondition(*conds, t)
	changed := old == nil || old.Status != status || old.Reason != string(reason)
	meta.SetStatusCondition(conds, metav1.Condition{
		Type: t, Status: status, Reason: string(reason), Message: text.Shorten(msg, MaxMessage), ObservedGeneration: generation,
	})
	return changed
}
