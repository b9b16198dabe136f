package controllers

import (
	"context"
	"fmt"
	"net/http"
	"time"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	v1alpha1 "github.com/mlflow-operator/mlflow-operator/api/v1alpha1"
	"github.com/mlflow-operator/mlflow-operator/internal/mlflow"
)

// Options wire the operator into a manager.
type Options struct {
	// MaxConcurrentReconciles; 1 when zero.
	MaxConcurrentReconciles int
	// WebhookAddr is where MLflow webhooks are received (e.g. ":9090");
	// empty turns the receiver off.
	WebhookAddr string
	// WebhookSecret is the secret MLflow signs deliveries with. Required
	// with WebhookAddr: unsigned deliveries are never accepted.
	WebhookSecret []byte
	// MLflowTransport, when set, carries every MLflow request.
	MLflowTransport http.RoundTripper
	// MLflowOptions are added to every MLflow client.
	MLflowOptions []mlflow.Option
	// Images gives the image of a model version; nil until a builder exists.
	Images ImageProvider
}

// Setup builds the MLflow resolver, the webhook receiver and the
// ModelDeployment reconciler, and registers them with mgr.
func Setup(ctx context.Context, mgr ctrl.Manager, o Options) (*ModelDeploymentReconciler, error) {
	if err := mgr.GetFieldIndexer().IndexField(ctx, &v1alpha1.ModelDeployment{}, IndexModelName, ModelNameIndexer); err != nil {
		return nil, fmt.Errorf("failed to index ModelDeployments by model name: %w", err)
	}
	resolver := &MLflowResolver{
		Reader:    mgr.GetAPIReader(),
		Transport: o.MLflowTransport,
		Options:   o.MLflowOptions,
	}
	r := &ModelDeploymentReconciler{
		Client:                  mgr.GetClient(),
		Recorder:                mgr.GetEventRecorder("mlflow-operator"),
		Resolver:                resolver,
		Images:                  o.Images,
		MaxConcurrentReconciles: o.MaxConcurrentReconciles,
	}
	if o.WebhookAddr != "" {
		if len(o.WebhookSecret) == 0 {
			return nil, fmt.Errorf("the MLflow webhook receiver needs a secret")
		}
		triggers := make(chan event.GenericEvent, 1024)
		r.Triggers = triggers
		receiver := &WebhookReceiver{
			Addr:       o.WebhookAddr,
			Verifier:   mlflow.NewWebhookVerifier(o.WebhookSecret, 5*time.Minute, 100000, nil),
			Reader:     mgr.GetClient(),
			Invalidate: resolver.Invalidate,
			Events:     triggers,
			Log:        mgr.GetLogger().WithName("webhooks"),
		}
		if err := mgr.Add(receiver); err != nil {
			return nil, err
		}
	}
	// Forget registry answers nobody asked for in an hour.
	if err := mgr.Add(manager.RunnableFunc(func(ctx context.Context) error {
		t := time.NewTicker(10 * time.Minute)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return nil
			case <-t.C:
				resolver.Prune(time.Hour)
			}
		}
	})); err != nil {
		return nil, err
	}
	if err := r.SetupWithManager(mgr); err != nil {
		return nil, err
	}
	return r, nil
}
