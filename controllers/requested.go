package controllers

import (
	"context"
	"time"

	v1alpha1 "github.com/mlflow-operator/mlflow-operator/api/v1alpha1"
	"github.com/mlflow-operator/mlflow-operator/internal/resolver"
	"github.com/mlflow-operator/mlflow-operator/internal/text"
)

// The resolver Setup wires drops its cached answers on a reconcile request.
var _ CacheInvalidator = (*resolver.Resolver)(nil)

// reconcileRequested honours Flux's reconcile request: a value of the
// annotation reconcile.fluxcd.io/requestedAt not handled before drops the
// resolver's cached answer about the model, so that reconcileVersion, next,
// asks MLflow instead of reusing an answer up to a poll interval old (as a
// webhook delivery does), and records the value in
// status.lastHandledReconcileAt with this pass's status. The annotation's
// change itself is what started the reconcile (SetupWithManager watches
// annotation changes). A value handled before does nothing: an idle object
// carrying it writes nothing and asks MLflow no more often than polling.
//
// The value is any string, as with Flux; its first MaxHandledValue bytes
// are recorded and compared (the status field is bounded), so a longer
// value is handled once, under its first 256 bytes.
func (r *ModelDeploymentReconciler) reconcileRequested(_ context.Context, s *scope) (bool, error) {
	md := s.md
	requested, ok := md.Annotations[v1alpha1.AnnotationReconcileRequestedAt]
	if !ok {
		return true, nil
	}
	requested = handledValue(requested)
	if requested == md.Status.LastHandledReconcileAt {
		return true, nil
	}
	if inv, ok := r.Resolver.(CacheInvalidator); ok {
		// Every cached answer about the model goes, whichever server gave
		// it, as for a webhook: the others sharing it ask again at their
		// next reconcile, one request each.
		inv.Invalidate(md.Spec.Model.Name, time.Time{})
	}
	md.Status.LastHandledReconcileAt = requested
	s.log.Info("Reconcile requested: asking MLflow again", "requestedAt", requested)
	return true, nil
}

// handledValue is the part of an annotation value that is recorded in
// status and compared with it: its first MaxHandledValue bytes, never half
// a UTF-8 character.
func handledValue(v string) string {
	return text.Cut(v, v1alpha1.MaxHandledValue)
}
