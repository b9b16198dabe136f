package controllers_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/mlflow-operator/mlflow-operator/api/v1alpha1"
	"github.com/mlflow-operator/mlflow-operator/controllers"
	"github.com/mlflow-operator/mlflow-operator/internal/analysis"
	"github.com/mlflow-operator/mlflow-operator/test/harness/operator"
	"github.com/mlflow-operator/mlflow-operator/test/harness/promserver"
	"github.com/mlflow-operator/mlflow-operator/test/harness/testenv"
)

// toCanary moves a serving ModelDeployment to strategy Canary with these
// steps (weight, pause) and a probe analysis of n requests.
func toCanary(t *testing.T, md *v1alpha1.ModelDeployment, probes int32, steps ...v1alpha1.CanaryStep) {
	t.Helper()
	updateMD(t, md, func(m *v1alpha1.ModelDeployment) {
		m.Spec.Rollout.Strategy = v1alpha1.StrategyCanary
		m.Spec.Rollout.Canary = &v1alpha1.CanarySpec{Steps: steps, ScaleDownDelay: &metav1.Duration{Duration: time.Hour},
			Analysis: &v1alpha1.CanaryAnalysis{Probe: &v1alpha1.ProbeAnalysis{Requests: probes, MinSuccessPercent: 100}}}
	})
}

func step(weight int32, pause time.Duration) v1alpha1.CanaryStep {
	return v1alpha1.CanaryStep{Weight: weight, Pause: &metav1.Duration{Duration: pause}}
}

// serviceSelector reads the selector of md's Service.
func serviceSelector(t *testing.T, md *v1alpha1.ModelDeployment) map[string]string {
	t.Helper()
	svc := &corev1.Service{}
	if err := k8s.Get(context.Background(), client.ObjectKeyFromObject(md), svc); err != nil {
		t.Fatal(err)
	}
	return svc.Spec.Selector
}

// atStep waits for status.canary to be at step i with replicas canary pods
// and the Service to select both sets (the ModelDeployment's name alone).
func atStep(t *testing.T, md *v1alpha1.ModelDeployment, i, replicas, weight int32) {
	t.Helper()
	eventually(t, fmt.Sprintf("canary at step %d", i), func() error {
		m := getMD(t, md)
		cs := m.Status.Canary
		if cs == nil || cs.Step != i {
			return fmt.Errorf("status.canary %+v", cs)
		}
		if err := wantCondition(m, v1alpha1.ConditionCandidateVerified, metav1.ConditionFalse, v1alpha1.ReasonCanaryStep); err != nil {
			return err
		}
		if cs.Replicas != replicas || cs.Weight != weight {
			return fmt.Errorf("step %d: %d replicas at %d%%, want %d at %d%%", i, cs.Replicas, cs.Weight, replicas, weight)
		}
		if sel := serviceSelector(t, md); len(sel) != 1 || sel[v1alpha1.LabelName] != md.Name {
			return fmt.Errorf("the Service selects %v, want both sets (%s=%s alone)", sel, v1alpha1.LabelName, md.Name)
		}
		if got := ptr.Deref(slotDeployment(t, md, v1alpha1.SlotBlue).Spec.Replicas, 0); got != replicas {
			return fmt.Errorf("the canary set has %d replicas, want %d", got, replicas)
		}
		return nil
	})
	// The step's replicas and the verified annotation moved the set's
	// generation; a real deployment controller observes that at once.
	testenv.CompleteDeployment(t, k8s, client.ObjectKeyFromObject(slotDeployment(t, md, v1alpha1.SlotBlue)))
}

// servingOnThree is serving's ModelDeployment with production on 3 pods
// (the autoscaler's choice).
func servingOnThree(t *testing.T, srv *scoringServer) *v1alpha1.ModelDeployment {
	t.Helper()
	md := serving(t, srv)
	d := slotDeployment(t, md, "")
	d.Spec.Replicas = ptr.To[int32](3)
	if err := k8s.Update(context.Background(), d); err != nil {
		t.Fatal(err)
	}
	completeRollout(t, md)
	return md
}

// TestCanaryStepsThenSwitch: with 3 production pods, version 2's canary set
// starts with one pod in blue, unexposed, and is smoke-tested; then the
// Service selects both sets (1 of 4 pods: 25 %), the step is probed, the
// set grows to 3 for the 50 % step, is probed again, and the Service
// switches to blue.
func TestCanaryStepsThenSwitch(t *testing.T) {
	srv := newScoringServer(t)
	md := servingOnThree(t, srv)
	toCanary(t, md, 3, step(25, 3*time.Second), step(50, 0))

	moveTo(t, md, "2", imageV2)
	previewUp(t, md, v1alpha1.SlotBlue, imageV2, 1)
	atStep(t, md, 0, 1, 25)
	if m := getMD(t, md); m.Status.ActiveSlot != "" || m.Status.Serving.Version != "1" {
		t.Fatalf("during the first step: activeSlot %q, serving %+v; want production unchanged", m.Status.ActiveSlot, m.Status.Serving)
	}
	atStep(t, md, 1, 3, 50)
	switchedTo(t, md, v1alpha1.SlotBlue)
	eventually(t, "switched to blue", activeIs(t, md, v1alpha1.SlotBlue, "2"))

	if reqs := srv.requests(); len(reqs) != 7 {
		t.Errorf("scoring server received %d requests, want 7 (the smoke test, then 3 probes per step)", len(reqs))
	}
	m := getMD(t, md)
	if m.Status.Canary != nil {
		t.Errorf("status.canary %+v after the switch, want none", m.Status.Canary)
	}
	if c := condition(m, v1alpha1.ConditionCandidateVerified); c == nil || c.Status != metav1.ConditionTrue || !strings.Contains(c.Message, "passed its 2 steps") {
		t.Errorf("CandidateVerified %+v after the switch, want True saying the steps passed", c)
	}
}

// TestCanaryAnalysisFailureAborts: a canary step whose probes fail puts
// the Service back on production alone, marks the version failed, deletes
// the canary set and leaves production as it was.
func TestCanaryAnalysisFailureAborts(t *testing.T) {
	srv := newScoringServer(t)
	md := serving(t, srv)
	toCanary(t, md, 4, step(50, 3*time.Second))
	n := ptr.Deref(slotDeployment(t, md, "").Spec.Replicas, 1) // 50 %: as many as production
	moveTo(t, md, "2", imageV2)
	previewUp(t, md, v1alpha1.SlotBlue, imageV2, n)
	atStep(t, md, 0, n, 50)
	srv.setStatus(http.StatusInternalServerError) // version 2 breaks under traffic

	eventually(t, "aborted", func() error {
		m := getMD(t, md)
		if m.Status.Canary != nil {
			return fmt.Errorf("status.canary %+v", m.Status.Canary)
		}
		if c := condition(m, v1alpha1.ConditionCandidateVerified); c == nil || c.Reason != string(v1alpha1.ReasonAnalysisFailed) ||
			!strings.Contains(c.Message, "0 of 4 requests answered") || !strings.Contains(c.Message, "back on production alone") {
			return fmt.Errorf("CandidateVerified %+v", c)
		}
		if sel := serviceSelector(t, md); sel[v1alpha1.LabelRole] != v1alpha1.RoleProduction {
			return fmt.Errorf("the Service selects %v, want production alone", sel)
		}
		if slotDeployment(t, md, v1alpha1.SlotBlue) != nil {
			return fmt.Errorf("the canary set is still there")
		}
		return nil
	})
	m := getMD(t, md)
	if m.Status.Serving == nil || m.Status.Serving.Version != "1" || image(slotDeployment(t, md, "")) != imageV1 {
		t.Errorf("production should still serve version 1: serving %+v", m.Status.Serving)
	}
	if len(m.Status.History) == 0 || m.Status.History[0].Version != "2" || m.Status.History[0].Outcome != v1alpha1.OutcomeFailed {
		t.Errorf("history %+v, want version 2 failed first", m.Status.History)
	}
}

// TestCanaryPrometheusAnalysisAborts: a step analysed by a PromQL query
// against a real Prometheus (the administrator's, given to the operator)
// whose value is below its minimum is aborted, the value and the bound in
// the condition; the query's placeholders were replaced (the sample
// carries the ModelDeployment's namespace back).
func TestCanaryPrometheusAnalysisAborts(t *testing.T) {
	prom := promserver.Start(t, "")
	restartOperator(t, operator.WithReconciler(controllers.ModelDeploymentReconciler{
		Resolver: fake, Images: fake, Examples: fake, RequestMetricsImage: sidecarImage,
		Prometheus: &analysis.Prometheus{URL: prom},
	}))
	srv := newScoringServer(t)
	md := serving(t, srv)
	updateMD(t, md, func(m *v1alpha1.ModelDeployment) {
		m.Spec.Rollout.Strategy = v1alpha1.StrategyCanary
		m.Spec.Rollout.Canary = &v1alpha1.CanarySpec{Steps: []v1alpha1.CanaryStep{step(50, 0)},
			Analysis: &v1alpha1.CanaryAnalysis{Prometheus: &v1alpha1.PrometheusAnalysis{
				// 0.5 when {{namespace}} became the namespace; no
				// sample otherwise (the label would not match).
				Query: `sum(label_replace(vector(0.5), "ns", "{{namespace}}", "", "") * on(ns) label_replace(vector(1), "ns", "` + m.Namespace + `", "", ""))`,
				Min:   "0.99",
			}}}
	})
	n := ptr.Deref(slotDeployment(t, md, "").Spec.Replicas, 1)
	moveTo(t, md, "2", imageV2)
	previewUp(t, md, v1alpha1.SlotBlue, imageV2, n)
	atStep(t, md, 0, n, 50)
	eventually(t, "aborted by the query", func() error {
		m := getMD(t, md)
		c := condition(m, v1alpha1.ConditionCandidateVerified)
		if c == nil || c.Reason != string(v1alpha1.ReasonAnalysisFailed) || !strings.Contains(c.Message, "0.5 is below the minimum 0.99") {
			return fmt.Errorf("CandidateVerified %+v", c)
		}
		if sel := serviceSelector(t, md); sel[v1alpha1.LabelRole] != v1alpha1.RoleProduction {
			return fmt.Errorf("the Service selects %v, want production alone", sel)
		}
		return nil
	})
}

// TestCanaryEndsWhenTheReferenceMovesBack: the model reference moving back
// to the serving version during a step ends the canary: the Service
// selects production alone and the canary set, never promoted, is deleted
// at once (not kept as an old set to switch back to).
func TestCanaryEndsWhenTheReferenceMovesBack(t *testing.T) {
	srv := newScoringServer(t)
	md := serving(t, srv)
	toCanary(t, md, 1, step(50, time.Hour))
	n := ptr.Deref(slotDeployment(t, md, "").Spec.Replicas, 1)
	moveTo(t, md, "2", imageV2)
	previewUp(t, md, v1alpha1.SlotBlue, imageV2, n)
	atStep(t, md, 0, n, 50)

	moveTo(t, md, "1", imageV1)
	eventually(t, "the canary ended", func() error {
		m := getMD(t, md)
		if m.Status.Canary != nil {
			return fmt.Errorf("status.canary %+v", m.Status.Canary)
		}
		if sel := serviceSelector(t, md); sel[v1alpha1.LabelRole] != v1alpha1.RoleProduction {
			return fmt.Errorf("the Service selects %v, want production alone", sel)
		}
		if slotDeployment(t, md, v1alpha1.SlotBlue) != nil {
			return fmt.Errorf("the canary set of version 2 is still there")
		}
		return wantCondition(m, v1alpha1.ConditionReady, metav1.ConditionTrue, "")
	})
}

// TestCanarySetIsNotSwitchedToByBlueGreen: a canary set of a step's size,
// left when the strategy changes to BlueGreen before the switch, is not
// what BlueGreen switches to: it starts again as a preview of production's
// size, unexposed.
func TestCanarySetIsNotSwitchedToByBlueGreen(t *testing.T) {
	srv := newScoringServer(t)
	md := servingOnThree(t, srv)
	toCanary(t, md, 1, step(25, time.Hour))
	moveTo(t, md, "2", imageV2)
	previewUp(t, md, v1alpha1.SlotBlue, imageV2, 1)
	atStep(t, md, 0, 1, 25)
	uid := slotDeployment(t, md, v1alpha1.SlotBlue).UID

	updateMD(t, md, func(m *v1alpha1.ModelDeployment) {
		m.Spec.Rollout.Strategy, m.Spec.Rollout.Canary = v1alpha1.StrategyBlueGreen, nil
	})
	eventually(t, "a new preview of production's size", func() error {
		blue := slotDeployment(t, md, v1alpha1.SlotBlue)
		if blue == nil || blue.UID == uid {
			return fmt.Errorf("the canary set is still there")
		}
		if got := ptr.Deref(blue.Spec.Replicas, 0); got != 3 {
			return fmt.Errorf("the new preview has %d replicas, want 3", got)
		}
		if sel := serviceSelector(t, md); sel[v1alpha1.LabelRole] != v1alpha1.RoleProduction {
			return fmt.Errorf("the Service selects %v, want production alone", sel)
		}
		return nil
	})
}
