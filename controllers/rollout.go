package controllers

import (
	"context"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	v1alpha1 "github.com/mlflow-operator/mlflow-operator/api/v1alpha1"
	"github.com/mlflow-operator/mlflow-operator/internal/resources"
	"github.com/mlflow-operator/mlflow-operator/internal/rollout"
)

// AnnotationVerifiedImage, on a candidate Deployment, is the image whose
// smoke test passed: a restarted operator does not test it again.
const AnnotationVerifiedImage = "serving.mlflow-operator.io/verified-image"

// maxFailedVersions bounds status.failedVersions.
const maxFailedVersions = 20

// promotionSeconds is the time from a verified candidate's promotion to the
// production Deployment running it on every replica.
var promotionSeconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{
	Name:    "mlflow_operator_promotion_duration_seconds",
	Help:    "Time from promoting a verified model version to all production replicas serving it.",
	Buckets: prometheus.ExponentialBuckets(1, 2, 12),
}, []string{"namespace", "name"})

func init() { metrics.Registry.MustRegister(promotionSeconds) }

// workloads is what the rollout step observed of the serving objects.
type workloads struct {
	production, candidate         *appsv1.Deployment
	productionPods, candidatePods []corev1.Pod
}

// +kubebuilder:rbac:groups="",resources=pods,verbs=get;list;watch

// rollout decides, with rollout.Decide, what happens to the target image:
// a one-replica candidate is started and smoke-tested, a verified one is
// promoted, a promotion is followed to completion or rolled back to the last
// good version. It records the outcome in status and leaves in s the image
// the production Deployment must run.
func (r *ModelDeploymentReconciler) rollout(ctx context.Context, s *scope) (bool, error) {
	md := s.md
	w, err := r.observeWorkloads(ctx, md)
	if err != nil {
		return false, err
	}
	in := rollout.Input{
		Now: s.now, ProgressDeadline: md.Spec.ProgressDeadline(),
		SmokeTestEnabled: md.Spec.SmokeTestEnabled(), AutoRollback: md.Spec.AutoRollback(),
	}
	if t := md.Status.Target; t != nil && t.Image != "" {
		in.Target = rollout.Version{Version: t.Version, Image: t.Image}
	}
	if lg := md.Status.LastGood; lg != nil {
		in.LastGood = rollout.Version{Version: lg.Version, Image: lg.Image}
	}
	desired := desiredProduction(md)
	in.ProductionImage = desired.Image
	in.Production = rollout.ObserveDeployment(w.production)
	if w.production != nil && templateImage(w.production) != desired.Image && in.Production.Phase == rollout.PhaseComplete {
		in.Production.Phase, in.Production.Message = rollout.PhaseProgressing, "waiting for the Deployment to run "+desired.Image
	}
	in.PodsFailing, in.PodsFailingMessage = podsFailing(w.productionPods, desired.Image)
	in.Candidate = candidateState(w.candidate, w.candidatePods)
	in.TargetFailed, in.TargetFailure = r.targetFailed(s)

	d := rollout.Decide(in)
	if d.Action == rollout.ActionSmokeTest {
		in.Smoke = r.smokeTest(ctx, s, w)
		if in.Smoke.OK {
			if err := r.markVerified(ctx, w.candidate, in.Target.Image); err != nil {
				return false, err
			}
		}
		d = rollout.Decide(in)
	}
	s.requeue(d.RequeueAfter)
	switch d.Action {
	case rollout.ActionCreateCandidate, rollout.ActionPromote, rollout.ActionDeleteCandidate:
		// Look again soon: an apply that changes nothing sends no event, and
		// the cache may not show this pass's writes yet.
		s.requeue(2 * time.Second)
	case rollout.ActionWait:
		s.requeue(10 * time.Second)
	}
	if err := r.act(ctx, s, w, in, d); err != nil {
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

// desiredProduction is what the production Deployment must run: the version
// being promoted, else the one serving.
func desiredProduction(md *v1alpha1.ModelDeployment) v1alpha1.ModelVersionRef {
	if p := md.Status.Promoting; p != nil {
		return p.ModelVersionRef
	}
	if sv := md.Status.Serving; sv != nil {
		return sv.ModelVersionRef
	}
	return v1alpha1.ModelVersionRef{}
}

// act carries a decision out.
func (r *ModelDeploymentReconciler) act(ctx context.Context, s *scope, w *workloads, in rollout.Input, d rollout.Decision) error {
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

	case rollout.ActionCreateCandidate:
		cand := resources.CandidateDeployment(md, resources.Workload{Image: target.Image, ModelVersion: target.Version})
		if err := apply(ctx, r.Client, cand, FieldOwner); err != nil {
			return err
		}
		r.startHistory(s, *target)
		if setCondition(md, v1alpha1.ConditionCandidateVerified, metav1.ConditionFalse, d.Reason, d.Message) {
			r.event(md, corev1.EventTypeNormal, d.Reason, "Verify", d.Message)
		}
		s.wait(d.Reason, d.Message)

	case rollout.ActionDeleteCandidate:
		if err := r.deleteCandidate(ctx, w); err != nil {
			return err
		}
		if d.Reason == rollout.ReasonVersionFailed {
			s.fail(rollout.Outcome{Stalled: true, Reason: d.Reason, Message: d.Message})
		}

	case rollout.ActionPromote:
		now := metav1.NewTime(s.now)
		md.Status.Promoting = &v1alpha1.ServingVersionStatus{ModelVersionRef: *target, Since: &now}
		r.startHistory(s, *target)
		setCondition(md, v1alpha1.ConditionCandidateVerified, metav1.ConditionTrue, d.Reason, d.Message)
		// Recorded before the candidate goes and production changes.
		if err := r.persist(ctx, s); err != nil {
			return err
		}
		if err := r.deleteCandidate(ctx, w); err != nil {
			return err
		}
		r.event(md, corev1.EventTypeNormal, "Promoted", "Promote", d.Message)
		s.wait(v1alpha1.ReasonRollingOut, d.Message)

	case rollout.ActionFailCandidate:
		if err := r.deleteCandidate(ctx, w); err != nil {
			return err
		}
		r.recordFailure(s, *target, d.Reason, d.Message, "Failed")
		setCondition(md, v1alpha1.ConditionCandidateVerified, metav1.ConditionFalse, d.Reason, d.Message)
		r.event(md, corev1.EventTypeWarning, d.Reason, "Verify", d.Message+"; production is untouched")
		s.fail(rollout.Outcome{Stalled: true, Reason: d.Reason, Message: d.Message})

	case rollout.ActionComplete:
		p := md.Status.Promoting
		if p == nil {
			// The version serving already; nothing was being promoted.
			return nil
		}
		if p.Since != nil {
			promotionSeconds.WithLabelValues(md.Namespace, md.Name).Observe(s.now.Sub(p.Since.Time).Seconds())
		}
		now := metav1.NewTime(s.now)
		md.Status.Serving = &v1alpha1.ServingVersionStatus{ModelVersionRef: p.ModelVersionRef, Since: &now}
		md.Status.LastGood = p.ModelVersionRef.DeepCopy()
		md.Status.Promoting = nil
		r.endHistory(s, p.Image, "Succeeded", d.Reason)
		msg := fmt.Sprintf("version %s serves: %s", p.Version, d.Message)
		if p.Since != nil {
			msg += fmt.Sprintf(" (%s after promotion)", s.now.Sub(p.Since.Time).Round(time.Second))
		}
		r.event(md, corev1.EventTypeNormal, v1alpha1.ReasonRolloutComplete, "Rollout", msg)

	case rollout.ActionRollback:
		failed := *target
		r.recordFailure(s, failed, d.Reason, d.Message, "RolledBack")
		md.Status.Promoting = nil
		lg := md.Status.LastGood
		if md.Status.Serving == nil || md.Status.Serving.Image != lg.Image {
			now := metav1.NewTime(s.now)
			md.Status.Serving = &v1alpha1.ServingVersionStatus{ModelVersionRef: *lg, Since: &now}
		}
		setCondition(md, v1alpha1.ConditionRolledBack, metav1.ConditionTrue, d.Reason,
			fmt.Sprintf("rolled back from version %s to version %s: %s", failed.Version, lg.Version, d.Message))
		r.event(md, corev1.EventTypeWarning, "RolledBack", "Rollback",
			fmt.Sprintf("rolled back from version %s to version %s: %s", failed.Version, lg.Version, d.Message))
		s.fail(rollout.Outcome{Stalled: true, Reason: d.Reason, Message: d.Message})

	case rollout.ActionMarkFailed:
		r.recordFailure(s, *target, d.Reason, d.Message, "Failed")
		r.event(md, corev1.EventTypeWarning, d.Reason, "Rollout", d.Message)
		s.fail(rollout.Outcome{Stalled: true, Reason: d.Reason, Message: d.Message})

	case rollout.ActionHold:
		s.fail(rollout.Outcome{Stalled: true, Reason: d.Reason, Message: d.Message})
	}
	return nil
}

// targetFailed tells whether the target version failed with the current
// spec and was not retried since. The retry annotation, set to a version,
// clears that version's failure once.
func (r *ModelDeploymentReconciler) targetFailed(s *scope) (bool, string) {
	md := s.md
	if retry := md.Annotations[v1alpha1.AnnotationRetry]; retry != "" && retry != md.Status.LastRetry {
		md.Status.LastRetry = retry
		kept := md.Status.FailedVersions[:0]
		for _, f := range md.Status.FailedVersions {
			if f.Version != retry {
				kept = append(kept, f)
			}
		}
		md.Status.FailedVersions = kept
		r.event(md, corev1.EventTypeNormal, "Retry", "Retry", "retrying version "+retry+" as the annotation asks")
	}
	t := md.Status.Target
	if t == nil {
		return false, ""
	}
	for _, f := range md.Status.FailedVersions {
		if f.Version == t.Version && f.ObservedGeneration == md.Generation {
			return true, f.Reason + ": " + f.Message
		}
	}
	return false, ""
}

// recordFailure adds the version to status.failedVersions and closes its
// history entry.
func (r *ModelDeploymentReconciler) recordFailure(s *scope, v v1alpha1.ModelVersionRef, reason, msg, outcome string) {
	md := s.md
	entry := v1alpha1.FailedVersion{Version: v.Version, Image: v.Image, Reason: reason, Message: msg,
		Time: metav1.NewTime(s.now), ObservedGeneration: md.Generation}
	out := []v1alpha1.FailedVersion{entry}
	for _, f := range md.Status.FailedVersions {
		if f.Version != v.Version && len(out) < maxFailedVersions {
			out = append(out, f)
		}
	}
	md.Status.FailedVersions = out
	r.endHistory(s, v.Image, outcome, reason)
}

// startHistory opens a history entry for v, unless one is open for it.
func (r *ModelDeploymentReconciler) startHistory(s *scope, v v1alpha1.ModelVersionRef) {
	md := s.md
	if len(md.Status.History) > 0 && md.Status.History[0].Image == v.Image && md.Status.History[0].Outcome == "InProgress" {
		return
	}
	h := append([]v1alpha1.HistoryEntry{{Version: v.Version, Image: v.Image, Start: metav1.NewTime(s.now), Outcome: "InProgress"}}, md.Status.History...)
	if limit := int(md.Spec.HistoryLimit()); len(h) > limit {
		h = h[:limit]
	}
	md.Status.History = h
}

// endHistory closes the open entry of image.
func (r *ModelDeploymentReconciler) endHistory(s *scope, image, outcome, reason string) {
	for i := range s.md.Status.History {
		h := &s.md.Status.History[i]
		if h.Image == image && h.Outcome == "InProgress" {
			end := metav1.NewTime(s.now)
			h.End, h.Outcome, h.Reason = &end, outcome, reason
			return
		}
	}
}

// observeWorkloads reads the production and candidate Deployments and their
// pods.
func (r *ModelDeploymentReconciler) observeWorkloads(ctx context.Context, md *v1alpha1.ModelDeployment) (*workloads, error) {
	w := &workloads{}
	get := func(name string) (*appsv1.Deployment, error) {
		d := &appsv1.Deployment{}
		if err := r.Get(ctx, client.ObjectKey{Namespace: md.Namespace, Name: name}, d); err != nil {
			if apierrors.IsNotFound(err) {
				return nil, nil
			}
			return nil, err
		}
		if !metav1.IsControlledBy(d, md) {
			return nil, nil
		}
		return d, nil
	}
	var err error
	if w.production, err = get(md.Name); err != nil {
		return nil, err
	}
	if w.candidate, err = get(resources.CandidateName(md)); err != nil {
		return nil, err
	}
	list := func(selector map[string]string) ([]corev1.Pod, error) {
		pods := &corev1.PodList{}
		if err := r.List(ctx, pods, client.InNamespace(md.Namespace), client.MatchingLabels(selector)); err != nil {
			return nil, err
		}
		return pods.Items, nil
	}
	if w.productionPods, err = list(resources.SelectorLabels(md)); err != nil {
		return nil, err
	}
	if w.candidatePods, err = list(resources.CandidateSelectorLabels(md)); err != nil {
		return nil, err
	}
	return w, nil
}

// candidateState reads a candidate Deployment and its pods.
func candidateState(d *appsv1.Deployment, pods []corev1.Pod) rollout.Candidate {
	if d == nil {
		return rollout.Candidate{}
	}
	c := rollout.Candidate{Exists: true, Image: templateImage(d), Created: d.CreationTimestamp.Time}
	c.Verified = d.Annotations[AnnotationVerifiedImage] == c.Image && c.Image != ""
	state := rollout.ObserveDeployment(d)
	c.Ready = state.Phase == rollout.PhaseComplete && state.AvailableReplicas >= 1
	if state.Phase == rollout.PhaseFailed {
		c.Failed, c.FailMessage = true, state.Message
	}
	if failing, msg := podsFailing(pods, c.Image); failing {
		c.Failed, c.FailMessage = true, msg
	}
	return c
}

// failingReasons are container states that do not heal by waiting.
var failingReasons = map[string]bool{
	"CrashLoopBackOff": true, "ImagePullBackOff": true, "ErrImagePull": true, "InvalidImageName": true,
	"CreateContainerConfigError": true, "CreateContainerError": true, "RunContainerError": true,
}

// podsFailing tells whether a pod running image is failing: a container
// waiting for a reason that does not heal by itself, restarted three times
// or more, or the pod failed.
func podsFailing(pods []corev1.Pod, image string) (bool, string) {
	for _, p := range pods {
		if !p.DeletionTimestamp.IsZero() || !runsImage(&p, image) {
			continue
		}
		if p.Status.Phase == corev1.PodFailed {
			return true, fmt.Sprintf("pod %s failed: %s", p.Name, p.Status.Message)
		}
		for _, cs := range p.Status.ContainerStatuses {
			if w := cs.State.Waiting; w != nil && failingReasons[w.Reason] {
				return true, fmt.Sprintf("pod %s: container %s is in %s", p.Name, cs.Name, w.Reason)
			}
			if cs.RestartCount >= 3 {
				return true, fmt.Sprintf("pod %s: container %s restarted %d times", p.Name, cs.Name, cs.RestartCount)
			}
		}
	}
	return false, ""
}

func runsImage(p *corev1.Pod, image string) bool {
	for _, c := range p.Spec.Containers {
		if c.Name == resources.ContainerName {
			return c.Image == image
		}
	}
	return false
}

// smokeTest sends the smoke test to a Ready candidate pod.
func (r *ModelDeploymentReconciler) smokeTest(ctx context.Context, s *scope, w *workloads) rollout.Smoke {
	md := s.md
	var pod *corev1.Pod
	for i := range w.candidatePods {
		p := &w.candidatePods[i]
		if p.DeletionTimestamp.IsZero() && podReady(p) && runsImage(p, md.Status.Target.Image) {
			pod = p
			break
		}
	}
	if pod == nil {
		// Ready by its Deployment, but the cache has no Ready pod yet: the
		// test waits for the pod's event.
		return rollout.Smoke{}
	}
	body := []byte(md.Spec.Rollout.SmokeTest.Request)
	if len(body) == 0 {
		if r.Examples == nil {
			return rollout.Smoke{Ran: true, OK: true, Message: "no example source; the candidate's readiness is the check"}
		}
		example, err := r.Examples.Example(ctx, md, md.Status.Target.Version)
		if err != nil {
			return rollout.Smoke{Ran: true, Message: "cannot read the model's input example: " + err.Error()}
		}
		if example == nil {
			return rollout.Smoke{Ran: true, OK: true, Message: "the model has no serving_input_example.json; the candidate's readiness is the check"}
		}
		body = example
	}
	tester := r.SmokeTester
	if tester == nil {
		tester = HTTPSmokeTester{}
	}
	if err := tester.Test(ctx, pod, md.Spec.ServingPort(), md.Spec.SmokeTestPath(), body, md.Spec.SmokeTestTimeout()); err != nil {
		return rollout.Smoke{Ran: true, Message: err.Error()}
	}
	return rollout.Smoke{Ran: true, OK: true}
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// markVerified records on the candidate that image passed its smoke test.
func (r *ModelDeploymentReconciler) markVerified(ctx context.Context, d *appsv1.Deployment, image string) error {
	patch := []byte(fmt.Sprintf(`{"metadata":{"annotations":{%q:%q}}}`, AnnotationVerifiedImage, image))
	if err := r.Patch(ctx, d, client.RawPatch("application/merge-patch+json", patch)); err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	return nil
}

func (r *ModelDeploymentReconciler) deleteCandidate(ctx context.Context, w *workloads) error {
	if w.candidate == nil {
		return nil
	}
	if err := r.Delete(ctx, w.candidate, client.PropagationPolicy(metav1.DeletePropagationBackground)); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("failed to delete the candidate: %w", err)
	}
	return nil
}
