package rollout

import (
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1alpha1 "github.com/mlflow-operator/mlflow-operator/api/v1alpha1"
)

// Outcome is how a reconcile ended, as the summary conditions tell it.
type Outcome struct {
	// Ready: the followed version serves with all replicas available.
	Ready bool
	// Stalled: no progress without a change from a person. Reason and
	// Message then say why.
	Stalled bool
	// Failing: a step failed and will be retried (Ready=False while
	// Reconciling=True); without it Ready is Unknown while work is under way.
	Failing bool
	// Reason and Message of the Ready (and Reconciling or Stalled) condition.
	Reason, Message string
}

// SetSummary writes the kstatus summary conditions for outcome: Ready always;
// Reconciling only while work is under way; Stalled only while stuck; never
// both Reconciling and Stalled.
func SetSummary(conds *[]metav1.Condition, generation int64, o Outcome) {
	set := func(t string, status metav1.ConditionStatus) {
		meta.SetStatusCondition(conds, metav1.Condition{
			Type: t, Status: status, Reason: o.Reason, Message: o.Message, ObservedGeneration: generation,
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
