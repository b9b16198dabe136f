package controllers

import (
	"context"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/mlflow-operator/mlflow-operator/api/v1alpha1"
	"github.com/mlflow-operator/mlflow-operator/internal/rollout"
	"github.com/mlflow-operator/mlflow-operator/internal/smoketest"
)

// AnnotationVerifiedImage, on a candidate Deployment, is the image whose
// smoke test passed: a restarted operator does not test it again.
const AnnotationVerifiedImage = "serving.mlflow-operator.io/verified-image"

// smokeTest asks for the outcome of the smoke test of the Ready candidate
// pod; the test itself runs away from the reconcile workers (r.smokes), and
// its end reconciles the object again. pending: it has not ended yet (or
// the cache has no Ready pod of the candidate: the pod's event brings the
// next pass).
func (r *ModelDeploymentReconciler) smokeTest(s *scope) (smoke rollout.Smoke, pending bool) {
	md := s.md
	var pod *corev1.Pod
	for i := range s.w.candidatePods {
		p := &s.w.candidatePods[i]
		if p.DeletionTimestamp.IsZero() && podReady(p) && runsImage(p, md.Status.Target.Image) {
			pod = p
			break
		}
	}
	if pod == nil {
		return rollout.Smoke{}, true
	}
	// What the test needs, copied: it runs after this pass has moved on.
	pod, spec, version := pod.DeepCopy(), md.DeepCopy(), md.Status.Target.Version
	id := md.Status.Target.Image + "/" + string(pod.UID)
	out, done := r.smokes.Check(md.Namespace, md.Name, id, func(ctx context.Context) rollout.Smoke {
		return r.runSmokeTest(ctx, spec, version, pod)
	})
	return out, !done
}

// runSmokeTest sends md's smoke test request (the spec's, else the model's
// input example) to pod.
func (r *ModelDeploymentReconciler) runSmokeTest(ctx context.Context, md *v1alpha1.ModelDeployment, version string, pod *corev1.Pod) rollout.Smoke {
	body, none, err := r.smokeRequest(ctx, md, version)
	switch {
	case err != nil:
		return rollout.Smoke{Ran: true, Message: err.Error()}
	case body == nil:
		return rollout.Smoke{Ran: true, OK: true, NoRequest: true, Message: none}
	}
	if err := r.tester().Test(ctx, pod, md.Spec.ServingPort(), md.Spec.SmokeTestPath(), body, md.Spec.SmokeTestTimeout()); err != nil {
		return rollout.Smoke{Ran: true, Message: err.Error()}
	}
	return rollout.Smoke{Ran: true, OK: true}
}

// smokeRequest is the request a version of md answers in its smoke test
// and canary probes: spec.rollout.smokeTest.request, else the model's
// input example. Without either it is nil and none says why.
func (r *ModelDeploymentReconciler) smokeRequest(ctx context.Context, md *v1alpha1.ModelDeployment, version string) (body []byte, none string, err error) {
	if req := md.Spec.Rollout.SmokeTest.Request; req != "" {
		return []byte(req), "", nil
	}
	if r.Examples == nil {
		return nil, "this operator has no source of input examples and spec.rollout.smokeTest.request is empty", nil
	}
	example, err := r.Examples.Example(ctx, md, version)
	if err != nil {
		return nil, "", fmt.Errorf("cannot read the model's input example: %w", err)
	}
	if example == nil {
		return nil, "the model was logged without an input example (serving_input_example.json) and spec.rollout.smokeTest.request is empty", nil
	}
	return example, "", nil
}

func (r *ModelDeploymentReconciler) tester() SmokeTester {
	if r.SmokeTester == nil {
		return smoketest.HTTP{}
	}
	return r.SmokeTester
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
