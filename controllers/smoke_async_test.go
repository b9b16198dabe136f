package controllers_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1alpha1 "github.com/mlflow-operator/mlflow-operator/api/v1alpha1"
)

// TestSlowSmokeTestHoldsNoWorker: the suite's operator has one reconcile
// worker. A candidate that takes minutes to answer its smoke test (the
// spec allows 5) must not hold it: another ModelDeployment is promoted
// meanwhile, the waiting one says it is smoke-testing, and it is promoted
// once its candidate answers.
func TestSlowSmokeTestHoldsNoWorker(t *testing.T) {
	slowSrv, fastSrv := newScoringServer(t), newScoringServer(t)
	slow := serving(t, slowSrv, func(md *v1alpha1.ModelDeployment) {
		md.Spec.Rollout.SmokeTest.Timeout = &metav1.Duration{Duration: 5 * time.Minute}
	})
	fast := serving(t, fastSrv)
	release := slowSrv.hang()
	defer release()

	moveTo(t, slow, "2", imageV2)
	candidateUp(t, slow, imageV2, "")
	eventually(t, "the slow candidate's smoke test sent", func() error {
		if len(slowSrv.requests()) == 0 {
			return fmt.Errorf("no request yet")
		}
		return nil
	})

	moveTo(t, fast, "2", imageV2)
	candidateUp(t, fast, imageV2, "")
	eventually(t, "the other ModelDeployment promoted while the slow test waits", func() error {
		if img := image(getDeployment(t, fast)); img != imageV2 {
			return fmt.Errorf("production runs %s", img)
		}
		return nil
	})
	m := getMD(t, slow)
	c := meta.FindStatusCondition(m.Status.Conditions, v1alpha1.ConditionCandidateVerified)
	if c == nil || c.Status != metav1.ConditionFalse || !strings.Contains(c.Message, "sending the smoke test") {
		t.Errorf("CandidateVerified of the waiting one: %+v, want False, sending the smoke test", c)
	}
	if img := image(getDeployment(t, slow)); img == imageV2 {
		t.Fatal("promoted before its candidate answered")
	}

	release()
	eventually(t, "the slow one promoted once its candidate answered", func() error {
		if img := image(getDeployment(t, slow)); img != imageV2 {
			return fmt.Errorf("production runs %s", img)
		}
		return candidateGone(slow)
	})
	if n := len(slowSrv.requests()); n != 1 {
		t.Errorf("the slow candidate got %d smoke tests, want 1", n)
	}
}
