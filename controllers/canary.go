package controllers

import (
	"context"
	"fmt"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/mlflow-operator/mlflow-operator/api/v1alpha1"
	"github.com/mlflow-operator/mlflow-operator/internal/analysis"
	"github.com/mlflow-operator/mlflow-operator/internal/resources"
	"github.com/mlflow-operator/mlflow-operator/internal/rollout"
	"github.com/mlflow-operator/mlflow-operator/internal/text"
)

// Canary (spec.rollout.strategy) carries BlueGreen's machinery (bluegreen.go)
// with steps between the verification and the switch: the canary set is the
// Deployment of the slot beside production, started with the first step's
// pods and verified unexposed; status.canary then records the step, and
// while it is set the Service selects the pods of both sets (every pod
// labelled with the ModelDeployment's name), so the canary's share of the
// traffic is its share of the pods. The decisions are rollout.Decide's;
// this file reads their input, sizes the set for each step and runs the
// analyses away from the reconcile workers.

// canaryInput fills in the Canary part of a rollout decision. A
// status.canary of another version, or whose set is gone, is dropped: the
// Service goes back to production alone in this pass.
func canaryInput(s *scope, in *rollout.Input) {
	md, w := s.md, s.w
	if !md.Spec.Canary() {
		md.Status.Canary = nil
		return
	}
	steps := md.Spec.CanarySteps()
	ci := &rollout.CanaryInput{Steps: len(steps), Step: -1, Blocked: len(w.strays) > 0}
	in.Canary = ci
	cs := md.Status.Canary
	if cs == nil {
		return
	}
	if in.Target.Empty() || cs.Image != in.Target.Image || w.candidate == nil || templateImage(w.candidate) != cs.Image ||
		in.ProductionImage == in.Target.Image || in.TargetFailed {
		md.Status.Canary = nil
		return
	}
	if cs.Reached == nil && canarySetReady(w.candidate, cs.Replicas) {
		now := metav1.NewTime(s.now)
		cs.Reached = &now
	}
	ci.Step = int(cs.Step)
	if cs.StepStarted != nil {
		ci.StepStarted = cs.StepStarted.Time
	}
	if cs.Reached != nil {
		ci.Reached = cs.Reached.Time
	}
	if ci.Step < len(steps) {
		ci.Pause = steps[ci.Step].StepPause()
		ci.Analyze = md.Spec.CanaryAnalysis() != nil
	}
}

// canarySetReady tells whether the canary Deployment runs replicas pods,
// every one of its template and available.
func canarySetReady(d *appsv1.Deployment, replicas int32) bool {
	st := d.Status
	return ptr.Deref(d.Spec.Replicas, 1) == replicas && st.ObservedGeneration >= d.Generation &&
		st.UpdatedReplicas >= replicas && st.AvailableReplicas >= replicas && st.Replicas == st.UpdatedReplicas
}

// productionReplicas is how many pods production runs now (the
// autoscaler's choice), the base of a canary step's share.
func productionReplicas(md *v1alpha1.ModelDeployment, production *appsv1.Deployment) int32 {
	if production == nil {
		return md.Spec.MinReplicas()
	}
	return max(ptr.Deref(production.Spec.Replicas, md.Spec.MinReplicas()), 1)
}

// canaryReplicas is the size of the canary set at step i: the weighted
// share of production's pods, or all of them for the growth before the
// switch.
func canaryReplicas(md *v1alpha1.ModelDeployment, production *appsv1.Deployment, i int) int32 {
	steps := md.Spec.CanarySteps()
	if i >= len(steps) {
		return previewReplicas(md, production)
	}
	return rollout.CanaryReplicas(productionReplicas(md, production), steps[i].Weight)
}

// canaryStep moves the canary to step d.Step: it records the step in
// status (persisted first when the Service is to select the canary for the
// first time) and sizes the set.
func (r *ModelDeploymentReconciler) canaryStep(ctx context.Context, s *scope, d rollout.Decision) error {
	md, w := s.md, s.w
	target := md.Status.Target
	n := productionReplicas(md, w.production)
	replicas := canaryReplicas(md, w.production, d.Step)
	now := metav1.NewTime(s.now)
	first := md.Status.Canary == nil
	md.Status.Canary = &v1alpha1.CanaryStatus{ModelVersionRef: *target, Step: int32(d.Step), Replicas: replicas,
		Weight: rollout.CanaryWeight(n, replicas), StepStarted: &now}
	if canarySetReady(w.candidate, replicas) {
		// Nothing to start (the full set's size reached already, or a
		// weight capped at production's): the step's clock runs now, and
		// nothing else would wake the next pass (scaling changes no pod).
		md.Status.Canary.Reached = &now
		s.requeue(250 * time.Millisecond)
	}
	msg := fmt.Sprintf("%s; version %s, %s: %d canary pods beside %d of production, %d%% of the Service's pods",
		d.Message, target.Version, canaryStepNameOf(md, d.Step), replicas, n, md.Status.Canary.Weight)
	// CandidateVerified stays False through the steps (they are the rest
	// of the verification) and turns True at the switch.
	setCondition(md, v1alpha1.ConditionCandidateVerified, metav1.ConditionFalse, v1alpha1.ReasonCanaryStep, msg)
	if first {
		r.startHistory(s, *target)
		if d.Reason != v1alpha1.ReasonVerified {
			// Say what was (not) checked before any traffic.
			r.event(md, corev1.EventTypeNormal, d.Reason, v1alpha1.ActionVerify, d.Message)
		}
		if err := r.persist(ctx, s); err != nil {
			return err
		}
	}
	if err := r.scaleSet(ctx, client.ObjectKeyFromObject(w.candidate), w.candidate, replicas); err != nil {
		return err
	}
	r.event(md, corev1.EventTypeNormal, v1alpha1.ReasonCanaryStep, v1alpha1.ActionCanary, msg)
	s.wait(v1alpha1.ReasonCanaryStep, msg)
	return nil
}

func canaryStepNameOf(md *v1alpha1.ModelDeployment, i int) string {
	steps := md.Spec.CanarySteps()
	if i >= len(steps) {
		return rollout.CanaryStepName(i, len(steps)) + " before the switch"
	}
	return fmt.Sprintf("%s (weight %d%%)", rollout.CanaryStepName(i, len(steps)), steps[i].Weight)
}

// analyze asks for the outcome of the current canary step's analysis,
// which runs away from the reconcile workers (r.analyses); pending while
// it runs.
func (r *ModelDeploymentReconciler) analyze(s *scope) (out rollout.Analysis, pending bool) {
	md := s.md
	cs := md.Status.Canary
	var pods []*corev1.Pod
	for i := range s.w.candidatePods {
		p := &s.w.candidatePods[i]
		if p.DeletionTimestamp.IsZero() && podReady(p) && runsImage(p, cs.Image) {
			pods = append(pods, p.DeepCopy())
		}
	}
	if len(pods) == 0 {
		return rollout.Analysis{Ran: true, Message: "no canary pod is Ready"}, false
	}
	spec, role := md.DeepCopy(), resources.SlotRole(resources.PreviewSlot(md))
	id := fmt.Sprintf("%s/%d", cs.Image, cs.Step)
	out, done := r.analyses.Check(md.Namespace, md.Name, id, func(ctx context.Context) rollout.Analysis {
		return r.runAnalysis(ctx, spec, role, pods)
	})
	return out, !done
}

// runAnalysis runs md's analysis of its canary (role, pods): the probe,
// then the query; both must pass.
func (r *ModelDeploymentReconciler) runAnalysis(ctx context.Context, md *v1alpha1.ModelDeployment, role string, pods []*corev1.Pod) rollout.Analysis {
	a, cs := md.Spec.CanaryAnalysis(), md.Status.Canary
	var said []string
	if a.Probe != nil {
		ok, msg := r.probe(ctx, md, cs.Version, a.Probe, pods)
		if !ok {
			return rollout.Analysis{Ran: true, Message: msg}
		}
		said = append(said, msg)
	}
	if a.Prometheus != nil {
		ok, msg := r.query(ctx, md, cs.Version, role, a.Prometheus)
		if !ok {
			return rollout.Analysis{Ran: true, Message: msg}
		}
		said = append(said, msg)
	}
	return rollout.Analysis{Ran: true, OK: true, Message: strings.Join(said, "; ")}
}

// probe sends p.Requests smoke test requests to the canary pods in turn
// and tells whether enough were answered.
func (r *ModelDeploymentReconciler) probe(ctx context.Context, md *v1alpha1.ModelDeployment, version string, p *v1alpha1.ProbeAnalysis, pods []*corev1.Pod) (bool, string) {
	body, none, err := r.smokeRequest(ctx, md, version)
	switch {
	case err != nil:
		return false, "probe: " + err.Error()
	case body == nil && md.Spec.Rollout.SmokeTest.Required:
		return false, "probe: nothing to send (" + none + "), and smokeTest.required refuses readiness alone"
	case body == nil:
		// As for the smoke test: without a request the step rests on its
		// pods staying Ready for the pause.
		return true, "probe: nothing to send (" + none + "); the step passed on readiness alone"
	}
	total := max(p.Requests, 1)
	var ok int32
	var last error
	for i := range total {
		if ctx.Err() != nil {
			break
		}
		if err := r.tester().Test(ctx, pods[int(i)%len(pods)], md.Spec.ServingPort(), md.Spec.SmokeTestPath(), body, md.Spec.SmokeTestTimeout()); err != nil {
			last = err
			continue
		}
		ok++
	}
	pct := 100 * ok / total
	msg := fmt.Sprintf("probe: %d of %d requests answered (%d%%, at least %d%% needed)", ok, total, pct, p.MinSuccessPercent)
	if last != nil {
		msg += "; last failure: " + text.Shorten(last.Error(), 300)
	}
	return pct >= p.MinSuccessPercent, msg
}

// query runs the step's PromQL query against the administrator's
// Prometheus and checks its value against the bounds.
func (r *ModelDeploymentReconciler) query(ctx context.Context, md *v1alpha1.ModelDeployment, version, role string, p *v1alpha1.PrometheusAnalysis) (bool, string) {
	if r.Prometheus == nil {
		return false, "prometheus: this operator has no Prometheus to ask (its --analysis-prometheus-url is empty)"
	}
	q, err := analysis.Expand(p.Query, map[string]string{"namespace": md.Namespace, "name": md.Name, "version": version, "role": role})
	if err != nil {
		return false, "prometheus: " + err.Error()
	}
	var b analysis.Bounds
	if b.Min, err = analysis.ParseBound(p.Min); err == nil {
		b.Max, err = analysis.ParseBound(p.Max)
	}
	if err != nil {
		return false, "prometheus: " + err.Error()
	}
	v, err := r.Prometheus.Value(ctx, q)
	if err != nil {
		return false, "prometheus: " + text.Shorten(err.Error(), 400)
	}
	if err := b.Check(v); err != nil {
		return false, "prometheus: " + err.Error()
	}
	return true, "prometheus: " + b.Within(v)
}

// scaleSet sets the replicas of the slot Deployment key (current is what
// the cache holds of it, nil before its first apply) under the
// initial-replicas field manager: the production apply leaves replicas out,
// and after the switch the autoscaler owns them.
func (r *ModelDeploymentReconciler) scaleSet(ctx context.Context, key client.ObjectKey, current *appsv1.Deployment, replicas int32) error {
	if current != nil && ptr.Deref(current.Spec.Replicas, 1) == replicas {
		return nil
	}
	scale := &appsv1.Deployment{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: metav1.ObjectMeta{Name: key.Name, Namespace: key.Namespace},
		Spec:       appsv1.DeploymentSpec{Replicas: &replicas},
	}
	if _, err := applyPartial(ctx, r.Client, scale, initialReplicasOwner); err != nil {
		return fmt.Errorf("failed to scale %s: %w", key.Name, err)
	}
	return nil
}

// analysisRequeue is the safety requeue while an analysis runs: its end
// reconciles again; this is in case that trigger is lost.
const analysisRequeue = 30 * time.Second
