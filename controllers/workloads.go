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
	"github.com/mlflow-operator/mlflow-operator/internal/resources"
	"github.com/mlflow-operator/mlflow-operator/internal/rollout"
)

// workloads is what the reconcile read of the serving objects.
type workloads struct {
	// production is the Deployment of status.activeSlot. candidate is,
	// with RollingUpdate, the one-replica <name>-candidate; with
	// BlueGreen, the Deployment of the other slot: the new version's set
	// being verified, or the old version's kept after a switch.
	production, candidate         *appsv1.Deployment
	productionPods, candidatePods []corev1.Pod
	// strays are the serving Deployments the ModelDeployment controls that
	// are neither: left by a change of strategy (a RollingUpdate
	// candidate under BlueGreen, a BlueGreen set under RollingUpdate) or
	// by the first switch away from the Deployment named like the
	// ModelDeployment. removeStrays deletes them once the Service no
	// longer selects them.
	strays []*appsv1.Deployment
}

// swap makes the candidate production and production the candidate:
// BlueGreen's switch, within the pass that makes it.
func (w *workloads) swap() {
	w.production, w.candidate = w.candidate, w.production
	w.productionPods, w.candidatePods = w.candidatePods, w.productionPods
}

// readWorkloads reads, from the cache and once per pass, the production and
// candidate Deployments the ModelDeployment controls and their pods.
func (r *ModelDeploymentReconciler) readWorkloads(ctx context.Context, s *scope) (bool, error) {
	md := s.md
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
	list := func(selector map[string]string) ([]corev1.Pod, error) {
		pods := &corev1.PodList{}
		if err := r.List(ctx, pods, client.InNamespace(md.Namespace), client.MatchingLabels(selector)); err != nil {
			return nil, err
		}
		return pods.Items, nil
	}
	prodName := resources.ProductionName(md)
	candName, candSelector := resources.CandidateName(md), resources.CandidateSelectorLabels(md)
	if md.Spec.BlueGreen() {
		slot := resources.PreviewSlot(md)
		candName, candSelector = resources.SlotName(md, slot), resources.SlotSelectorLabels(md, slot)
	}
	var err error
	for _, name := range resources.ServingDeploymentNames(md) {
		d, err := get(name)
		switch {
		case err != nil:
			return false, err
		case name == prodName:
			w.production = d
		case name == candName:
			w.candidate = d
		case d != nil:
			w.strays = append(w.strays, d)
		}
	}
	if w.productionPods, err = list(resources.SelectorLabels(md)); err != nil {
		return false, err
	}
	if w.candidatePods, err = list(candSelector); err != nil {
		return false, err
	}
	s.w = w
	return true, nil
}

// removeStrays deletes the serving Deployments that are neither production
// nor the candidate (see workloads.strays). It runs after the serving
// objects are applied: a Deployment the Service selected at the start of
// the pass is deleted only once the Service selects another; its pods
// still answer for their preStop time while the proxies catch up.
func (r *ModelDeploymentReconciler) removeStrays(ctx context.Context, s *scope) (bool, error) {
	for _, d := range s.w.strays {
		if d.Name == resources.ProductionName(s.md) {
			continue
		}
		if err := r.Delete(ctx, d, client.PropagationPolicy(metav1.DeletePropagationBackground)); err != nil && !apierrors.IsNotFound(err) {
			return false, fmt.Errorf("failed to delete %s: %w", d.Name, err)
		}
		s.log.Info("Deleted a Deployment the strategy no longer uses", "deployment", d.Name)
	}
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
		// The init containers: the request-metrics sidecar.
		for _, cs := range append(append([]corev1.ContainerStatus{}, p.Status.InitContainerStatuses...), p.Status.ContainerStatuses...) {
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

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func templateImage(dep *appsv1.Deployment) string {
	for _, c := range dep.Spec.Template.Spec.Containers {
		if c.Name == resources.ContainerName {
			return c.Image
		}
	}
	return ""
}
