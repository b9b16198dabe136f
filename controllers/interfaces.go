package controllers

import (
	"context"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	v1alpha1 "github.com/mlflow-operator/mlflow-operator/api/v1alpha1"
	"github.com/mlflow-operator/mlflow-operator/internal/builds"
	"github.com/mlflow-operator/mlflow-operator/internal/resolver"
)

// The reconciler's view of the outside world. internal/resolver,
// internal/builds and internal/smoketest implement these; tests of the
// Kubernetes side give their own.

// Resolver tells which model version a ModelDeployment's model reference
// (alias, stage or version) means now.
type Resolver interface {
	Resolve(ctx context.Context, md *v1alpha1.ModelDeployment) (resolver.ModelVersion, error)
}

// CacheInvalidator is a Resolver that reuses answers (internal/resolver's
// does, for most of a poll interval): Invalidate drops what it holds about
// a registered model, so that the next Resolve asks the registry. A webhook
// delivery calls it, and so does a reconcile request (requested.go).
type CacheInvalidator interface {
	Invalidate(model string, changedAt time.Time)
}

// ImageProvider gives the image that serves a model version. It starts a
// build when there is none and answers without blocking.
type ImageProvider interface {
	Image(ctx context.Context, md *v1alpha1.ModelDeployment, v resolver.ModelVersion) (builds.Result, error)
	// Forget drops what is known about a deleted ModelDeployment and stops
	// its build.
	Forget(key types.NamespacedName)
}

// ExampleSource gives the request a model version answers in its smoke
// test: the model's own serving_input_example.json.
type ExampleSource interface {
	// Example returns the example, or nil when the model has none.
	Example(ctx context.Context, md *v1alpha1.ModelDeployment, version string) ([]byte, error)
}

// SmokeTester sends a smoke test request to a candidate pod.
type SmokeTester interface {
	// Test POSTs body to path on the pod's serving port and returns nil
	// when it answers 2xx JSON with predictions.
	Test(ctx context.Context, pod *corev1.Pod, port int32, path string, body []byte, timeout time.Duration) error
}

// MetricsQuerier gives the value of a PromQL query (internal/analysis's
// Prometheus).
type MetricsQuerier interface {
	Value(ctx context.Context, query string) (float64, error)
}

// Notifier tells the people who subscribed to a ModelDeployment's rollout
// about an event recorded on it (internal/notify). It never blocks.
type Notifier interface {
	Notify(md *v1alpha1.ModelDeployment, eventType string, reason v1alpha1.Reason, action v1alpha1.EventAction, note string)
}
