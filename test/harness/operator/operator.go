// Package operator starts the operator under test in the test process: a
// controller-runtime manager on a given API server, wired either as the
// binary wires it (controllers.Setup) or with a reconciler whose adapters the
// test chose, and stops it again. Suites that run the operator binary (e2e)
// use test/harness/stack instead.
package operator

import (
	"context"
	"fmt"

	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/config"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/mlflow-operator/mlflow-operator/controllers"
)

// Wiring registers the operator's parts with a manager.
type Wiring func(ctx context.Context, mgr ctrl.Manager) error

// WithSetup wires the operator as cmd/ does, with these options.
func WithSetup(o controllers.Options) Wiring {
	return func(ctx context.Context, mgr ctrl.Manager) error {
		_, err := controllers.Setup(ctx, mgr, o)
		return err
	}
}

// WithReconciler wires only the reconciler r, whose Resolver, Images,
// Examples and SmokeTester the test set; its client, API reader and event
// recorder come from the manager.
func WithReconciler(r controllers.ModelDeploymentReconciler) Wiring {
	return func(_ context.Context, mgr ctrl.Manager) error {
		recorder := controllers.NewEventRecorder(mgr)
		if err := mgr.Add(recorder); err != nil {
			return err
		}
		r.Client, r.APIReader, r.Recorder = mgr.GetClient(), mgr.GetAPIReader(), recorder
		return r.SetupWithManager(mgr)
	}
}

// Operator is a running manager.
type Operator struct {
	cancel context.CancelFunc
	done   chan error
}

// Start starts a manager on cfg (give it testenv's OperatorConfig to run as
// the generated RBAC role) with the operator wired by wire. Several may run
// one after another in one process (a restart test): controller names are
// not checked for uniqueness.
func Start(cfg *rest.Config, wire Wiring) (*Operator, error) {
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:     scheme.Scheme,
		Metrics:    metricsserver.Options{BindAddress: "0"},
		Cache:      controllers.CacheOptions("", nil),
		Controller: config.Controller{SkipNameValidation: ptr.To(true)},
	})
	if err != nil {
		return nil, fmt.Errorf("failed to create the manager: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := wire(ctx, mgr); err != nil {
		cancel()
		return nil, fmt.Errorf("failed to wire the operator: %w", err)
	}
	o := &Operator{cancel: cancel, done: make(chan error, 1)}
	go func() { o.done <- mgr.Start(ctx) }()
	return o, nil
}

// Stop stops the manager and everything it runs, and waits for it.
func (o *Operator) Stop() error {
	o.cancel()
	return <-o.done
}
