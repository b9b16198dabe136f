package controllers

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1alpha1 "github.com/mlflow-operator/mlflow-operator/api/v1alpha1"
	"github.com/mlflow-operator/mlflow-operator/internal/resources"
)

// workload is what a pod template of md runs: image and version, and the
// request-metrics sidecar when the spec asks for it and the operator has
// its image. Without the image the model serves without the sidecar:
// metrics are not worth taking a model down for (reportRequestMetrics says
// why they are missing).
func (r *ModelDeploymentReconciler) workload(md *v1alpha1.ModelDeployment, image, version string) resources.Workload {
	w := resources.Workload{Image: image, ModelVersion: version}
	if md.Spec.RequestMetricsEnabled() {
		w.RequestMetricsImage = r.RequestMetricsImage
	}
	return w
}

// reportRequestMetrics sets the RequestMetrics condition while the spec
// asks for request metrics (and removes it otherwise), with a warning event
// when the sidecar cannot be added.
func (r *ModelDeploymentReconciler) reportRequestMetrics(s *scope) {
	md := s.md
	if !md.Spec.RequestMetricsEnabled() {
		meta.RemoveStatusCondition(&md.Status.Conditions, v1alpha1.ConditionRequestMetrics)
		return
	}
	if r.RequestMetricsImage == "" {
		msg := "spec.serving.requestMetrics.enabled is set, but the operator has no request-metrics image " +
			"(its --request-metrics-image flag, or MLFLOW_OPERATOR_IMAGE, is empty): the model serves without the " +
			"request-metrics sidecar, so no request metrics are collected; ask the operator's administrator to set it"
		if setCondition(md, v1alpha1.ConditionRequestMetrics, metav1.ConditionFalse, v1alpha1.ReasonSidecarImageMissing, msg) {
			r.event(md, corev1.EventTypeWarning, v1alpha1.ReasonSidecarImageMissing, v1alpha1.ActionReconcile, msg)
			s.log.Info("Serving without the request-metrics sidecar: the operator has no image for it")
		}
		return
	}
	setCondition(md, v1alpha1.ConditionRequestMetrics, metav1.ConditionTrue, v1alpha1.ReasonSidecarAdded,
		fmt.Sprintf("the serving pods have the request-metrics sidecar: /metrics on their port %q (%d)",
			resources.MetricsPortName, md.Spec.RequestMetricsPort()))
}
