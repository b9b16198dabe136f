package controllers

import (
	"context"
	"fmt"

	"golang.org/x/sync/errgroup"
	appsv1 "k8s.io/api/apps/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/mlflow-operator/mlflow-operator/api/v1alpha1"
	"github.com/mlflow-operator/mlflow-operator/internal/resources"
)

// initialReplicasOwner is the field manager that sets a new Deployment's
// replica count once. The main field manager never sets replicas, so that the
// HorizontalPodAutoscaler owns them afterwards and no apply resets its choice.
const initialReplicasOwner = FieldOwner + "-initial-replicas"

// applyServingObjects applies the production Deployment for the image the
// rollout step chose, and the Service, HorizontalPodAutoscaler,
// PodDisruptionBudget and NetworkPolicy in front of it, with server-side
// apply: whatever drifted is put back. The API server's answer for the
// Deployment is what observeServing reads.
func (r *ModelDeploymentReconciler) applyServingObjects(ctx context.Context, s *scope) (bool, error) {
	md := s.md
	if s.image == "" {
		s.wait(v1alpha1.ReasonWaitingForImage, "no image to serve yet")
		return false, nil
	}

	dep := resources.Deployment(md, r.workload(md, s.image, s.version))
	objs := []client.Object{resources.Service(md), resources.HorizontalPodAutoscaler(md), resources.PodDisruptionBudget(md)}
	if md.Spec.NetworkPolicyEnabled() {
		var extra []networkingv1.NetworkPolicyPeer
		if r.OperatorPeer != nil {
			extra = append(extra, *r.OperatorPeer)
		}
		objs = append(objs, resources.NetworkPolicy(md, extra...))
	}
	// Nothing is applied when any of them belongs to someone else.
	if err := r.checkOwnership(ctx, md, append([]client.Object{dep}, objs...)...); err != nil {
		return false, err
	}
	// The Deployment (with its initial replica count when new) and the
	// objects in front of it are applied at once: each apply is a round
	// trip to the API server, and at a thousand ModelDeployments the
	// reconcile workers' time is mostly these round trips. The first
	// error stops the others; the next pass applies what is left.
	created := s.w.production == nil
	var production *appsv1.Deployment
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		var err error
		production, err = r.applyProduction(gctx, dep, created)
		return err
	})
	for _, obj := range objs {
		g.Go(func() error {
			_, err := apply(gctx, r.Client, obj, FieldOwner)
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return false, err
	}
	s.w.production = production

	if !md.Spec.NetworkPolicyEnabled() {
		if err := r.deleteOwned(ctx, &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Name: md.Name, Namespace: md.Namespace}}, md); err != nil {
			return false, err
		}
	}
	md.Status.Endpoint = resources.Endpoint(md)
	r.reportRequestMetrics(s)
	return true, nil
}

// applyProduction applies the production Deployment dep without its
// replica count, which the main field manager never owns (the
// HorizontalPodAutoscaler does); a new Deployment gets dep's count once,
// under its own field manager. It returns the Deployment as the API server
// answered.
func (r *ModelDeploymentReconciler) applyProduction(ctx context.Context, dep *appsv1.Deployment, created bool) (*appsv1.Deployment, error) {
	replicas := dep.Spec.Replicas
	dep.Spec.Replicas = nil
	applied, err := apply(ctx, r.Client, dep, FieldOwner)
	if err != nil {
		return nil, err
	}
	if created {
		scale := &appsv1.Deployment{
			TypeMeta:   dep.TypeMeta,
			ObjectMeta: metav1.ObjectMeta{Name: dep.Name, Namespace: dep.Namespace},
			Spec:       appsv1.DeploymentSpec{Replicas: replicas},
		}
		if applied, err = applyPartial(ctx, r.Client, scale, initialReplicasOwner); err != nil {
			return nil, err
		}
	}
	production := &appsv1.Deployment{}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(applied.Object, production); err != nil {
		return nil, err
	}
	return production, nil
}

// deleteOwned deletes obj when it exists and md controls it.
func (r *ModelDeploymentReconciler) deleteOwned(ctx context.Context, obj client.Object, md *v1alpha1.ModelDeployment) error {
	if err := r.Get(ctx, client.ObjectKeyFromObject(obj), obj); err != nil {
		return client.IgnoreNotFound(err)
	}
	if !metav1.IsControlledBy(obj, md) {
		return nil
	}
	if err := r.Delete(ctx, obj); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("failed to delete %s: %w", obj.GetName(), err)
	}
	return nil
}
