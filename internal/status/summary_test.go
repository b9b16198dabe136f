package status

import (
	"strings"
	"testing"
	"unicode/utf8"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1alpha1 "github.com/mlflow-operator/mlflow-operator/api/v1alpha1"
)

func TestSetSummary(t *testing.T) {
	tests := []struct {
		name                 string
		before               []string // condition types present before
		o                    Outcome
		ready                metav1.ConditionStatus
		reconciling, stalled bool
	}{
		{"ready clears reconciling and stalled", []string{v1alpha1.ConditionReconciling, v1alpha1.ConditionStalled}, Outcome{Ready: true, Reason: v1alpha1.ReasonRolloutComplete, Message: "m"}, metav1.ConditionTrue, false, false},
		{"in progress", nil, Outcome{Reason: v1alpha1.ReasonBuilding, Message: "m"}, metav1.ConditionUnknown, true, false},
		{"failing step retried", []string{v1alpha1.ConditionStalled}, Outcome{Failing: true, Reason: v1alpha1.ReasonMLflowUnreachable, Message: "m"}, metav1.ConditionFalse, true, false},
		{"stalled clears reconciling", []string{v1alpha1.ConditionReconciling}, Outcome{Stalled: true, Reason: v1alpha1.ReasonVersionFailed, Message: "m"}, metav1.ConditionFalse, false, true},
		{"paused clears reconciling and stalled", []string{v1alpha1.ConditionReconciling, v1alpha1.ConditionStalled}, Outcome{Paused: true, Reason: v1alpha1.ReasonAwaitingApproval, Message: "m"}, metav1.ConditionFalse, false, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var conds []metav1.Condition
			for _, c := range tc.before {
				meta.SetStatusCondition(&conds, metav1.Condition{Type: c, Status: metav1.ConditionTrue, Reason: "Before"})
			}
			SetSummary(&conds, 7, tc.o)
			ready := meta.FindStatusCondition(conds, v1alpha1.ConditionReady)
			if ready == nil || ready.Status != tc.ready || ready.Reason != string(tc.o.Reason) || ready.ObservedGeneration != 7 {
				t.Fatalf("Ready = %+v, want %s/%s at generation 7", ready, tc.ready, tc.o.Reason)
			}
			if got := meta.IsStatusConditionTrue(conds, v1alpha1.ConditionReconciling); got != tc.reconciling {
				t.Errorf("Reconciling = %v, want %v", got, tc.reconciling)
			}
			if got := meta.IsStatusConditionTrue(conds, v1alpha1.ConditionStalled); got != tc.stalled {
				t.Errorf("Stalled = %v, want %v", got, tc.stalled)
			}
			if meta.FindStatusCondition(conds, v1alpha1.ConditionReconciling) != nil && meta.FindStatusCondition(conds, v1alpha1.ConditionStalled) != nil {
				t.Error("Reconciling and Stalled are both present")
			}
		})
	}
}

func TestSetSuspended(t *testing.T) {
	for _, before := range []metav1.ConditionStatus{metav1.ConditionTrue, metav1.ConditionFalse, ""} {
		var conds []metav1.Condition
		if before != "" {
			SetSummary(&conds, 3, Outcome{Ready: before == metav1.ConditionTrue, Stalled: before == metav1.ConditionFalse, Reason: v1alpha1.ReasonSucceeded, Message: "m"})
		}
		SetSuspended(&conds, 4, "suspended")
		ready := meta.FindStatusCondition(conds, v1alpha1.ConditionReady)
		want := before
		if want == "" {
			want = metav1.ConditionUnknown
		}
		if ready == nil || ready.Status != want || ready.Reason != string(v1alpha1.ReasonSuspended) || ready.ObservedGeneration != 4 {
			t.Errorf("before %q: Ready = %+v, want %s/Suspended at generation 4", before, ready, want)
		}
		if meta.FindStatusCondition(conds, v1alpha1.ConditionReconciling) != nil || meta.FindStatusCondition(conds, v1alpha1.ConditionStalled) != nil {
			t.Errorf("before %q: Reconciling or Stalled present while suspended: %+v", before, conds)
		}
	}
}

func TestSetConditionReportsTransitions(t *testing.T) {
	var conds []metav1.Condition
	steps := []struct {
		status  metav1.ConditionStatus
		reason  v1alpha1.Reason
		msg     string
		changed bool
	}{
		{metav1.ConditionFalse, v1alpha1.ReasonBuilding, "building", true},
		{metav1.ConditionFalse, v1alpha1.ReasonBuilding, "building: pushing", false}, // a new message alone is no transition
		{metav1.ConditionFalse, v1alpha1.ReasonBuildFailed, "failed", true},
		{metav1.ConditionTrue, v1alpha1.ReasonPushed, "pushed", true},
	}
	for i, s := range steps {
		if got := SetCondition(&conds, 2, v1alpha1.ConditionImageReady, s.status, s.reason, s.msg); got != s.changed {
			t.Errorf("step %d: changed = %v, want %v", i, got, s.changed)
		}
		c := meta.FindStatusCondition(conds, v1alpha1.ConditionImageReady)
		if c.Message != s.msg || c.Reason != string(s.reason) || c.ObservedGeneration != 2 {
			t.Errorf("step %d: condition %+v", i, c)
		}
	}
}

// TestMessagesAreBounded: outside text (an MLflow error, a webhook's answer)
// of any size ends in a condition of at most MaxMessage bytes, cut on a
// character boundary.
func TestMessagesAreBounded(t *testing.T) {
	long := strings.Repeat("é", 40000) // 80 KB
	var conds []metav1.Condition
	SetSummary(&conds, 1, Outcome{Failing: true, Reason: v1alpha1.ReasonMLflowError, Message: long})
	SetCondition(&conds, 1, v1alpha1.ConditionModelResolved, metav1.ConditionFalse, v1alpha1.ReasonMLflowError, long)
	for _, c := range conds {
		if len(c.Message) > MaxMessage || !utf8.ValidString(c.Message) || !strings.HasSuffix(c.Message, "...") {
			t.Errorf("%s: message of %d bytes (valid UTF-8: %v)", c.Type, len(c.Message), utf8.ValidString(c.Message))
		}
	}
	SetSuspended(&conds, 1, long)
	if c := meta.FindStatusCondition(conds, v1alpha1.ConditionReady); len(c.Message) > MaxMessage {
		t.Errorf("suspended: message of %d bytes", len(c.Message))
	}
}
