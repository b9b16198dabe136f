// Package webhook receives MLflow webhook deliveries: it verifies their
// signature, drops replays and stale ones, and makes every ModelDeployment
// that follows the named model reconcile at once. Polling stays on:
// deliveries are best effort, and stage transitions send none.
package webhook

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/certwatcher"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"

	v1alpha1 "github.com/mlflow-operator/mlflow-operator/api/v1alpha1"
	"github.com/mlflow-operator/mlflow-operator/internal/metrics"
	"github.com/mlflow-operator/mlflow-operator/internal/mlflow"
)

// Path is where the receiver takes MLflow webhook deliveries.
const Path = "/webhooks/mlflow"

// IndexModelName is the field index of ModelDeployments by spec.model.name
// that the receiver lists by; register it with ModelNameIndexer.
const IndexModelName = "spec.model.name"

// ModelNameIndexer extracts IndexModelName from a ModelDeployment, typed or
// unstructured (the operator caches them unstructured, so that one object
// it cannot decode does not stop the cache).
func ModelNameIndexer(obj client.Object) []string {
	var name string
	switch md := obj.(type) {
	case *v1alpha1.ModelDeployment:
		name = md.Spec.Model.Name
	case *unstructured.Unstructured:
		name, _, _ = unstructured.NestedString(md.Object, "spec", "model", "name")
	}
	if name == "" {
		return nil
	}
	return []string{name}
}

// maxBody bounds a delivery's body; MLflow's are a few hundred bytes.
const maxBody = 64 << 10

// Receiver takes MLflow webhook deliveries. It is a manager Runnable.
type Receiver struct {
	// Addr is the listen address, e.g. ":9090".
	Addr     string
	Verifier *mlflow.WebhookVerifier
	// Reader lists ModelDeployments by IndexModelName (the manager's cache).
	Reader client.Reader
	// Invalidate drops cached registry answers about a model that changed
	// at the given time (the delivery's timestamp).
	Invalidate func(model string, changedAt time.Time)
	// Events receives one GenericEvent per ModelDeployment to reconcile.
	Events chan<- event.GenericEvent
	Log    logr.Logger
	// CertDir, when set, holds tls.crt and tls.key (a mounted
	// kubernetes.io/tls Secret): deliveries are then taken over HTTPS, and
	// a renewed certificate is picked up without a restart.
	CertDir string
	// Relay, when set, makes the receiver run on every replica: a standby
	// (Elected still open) forwards deliveries to the leader through it.
	// Without it the receiver runs on the leader only.
	Relay   *Relay
	Elected <-chan struct{}
}

// ServeHTTP handles one delivery and counts its result. Refusals say only
// "refused": the sender learns nothing about which check failed.
func (w *Receiver) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	metrics.Delivery(w.serve(rw, r))
}

// serve handles one delivery and returns its result (a metrics.Delivery*).
func (w *Receiver) serve(rw http.ResponseWriter, r *http.Request) string {
	if r.Method != http.MethodPost {
		rw.Header().Set("Allow", http.MethodPost)
		http.Error(rw, "method not allowed", http.StatusMethodNotAllowed)
		return metrics.DeliveryInvalid
	}
	body, err := io.ReadAll(http.MaxBytesReader(rw, r.Body, maxBody))
	if err != nil {
		http.Error(rw, "body too large", http.StatusRequestEntityTooLarge)
		return metrics.DeliveryInvalid
	}
	if err := w.Verifier.Verify(r.Header, body); err != nil {
		// The reason, never the signature or the secret.
		w.Log.Info("Refused a webhook delivery", "reason", err.Error(), "remote", r.RemoteAddr)
		status, result := http.StatusUnauthorized, metrics.DeliveryInvalid
		switch {
		case errors.Is(err, mlflow.ErrWebhookBadSignature):
			result = metrics.DeliveryBadSignature
		case errors.Is(err, mlflow.ErrWebhookStale):
			result = metrics.DeliveryStale
		case errors.Is(err, mlflow.ErrWebhookReplayed):
			// Already handled: a 2xx stops the sender's retries.
			status, result = http.StatusOK, metrics.DeliveryReplayed
		case errors.Is(err, mlflow.ErrWebhookBusy):
			// Valid, but no room to remember it: the sender retries.
			status, result = http.StatusServiceUnavailable, metrics.DeliveryBusy
		}
		http.Error(rw, "refused", status)
		return result
	}
	ev, err := mlflow.ParseWebhookEvent(body)
	if err != nil {
		http.Error(rw, "invalid payload", http.StatusBadRequest)
		return metrics.DeliveryInvalid
	}
	if !mlflow.ModelEvents[ev.Event()] {
		rw.WriteHeader(http.StatusAccepted)
		return metrics.DeliveryIgnored
	}
	changedAt := w.changedAt(r.Header)
	if !w.leading() {
		if err := w.Relay.Forward(r.Context(), ev.Data.Name, changedAt); err != nil {
			w.Log.Error(err, "Cannot relay a webhook delivery to the leader", "model", ev.Data.Name)
			http.Error(rw, "cannot relay the delivery", http.StatusServiceUnavailable)
			return metrics.DeliveryError
		}
		w.Log.Info("Webhook delivery relayed to the leader", "event", ev.Event(), "model", ev.Data.Name, "modelVersion", ev.Data.Version,
			"deliveryID", r.Header.Get(mlflow.HeaderDeliveryID))
		rw.WriteHeader(http.StatusAccepted)
		return metrics.DeliveryRelayed
	}
	n, err := w.enqueue(r.Context(), ev.Data.Name, changedAt)
	if err != nil {
		w.Log.Error(err, "Cannot list ModelDeployments for a webhook", "model", ev.Data.Name)
		http.Error(rw, "cannot list ModelDeployments", http.StatusServiceUnavailable)
		return metrics.DeliveryError
	}
	w.Log.Info("Webhook delivery", "event", ev.Event(), "model", ev.Data.Name, "modelVersion", ev.Data.Version,
		"deliveryID", r.Header.Get(mlflow.HeaderDeliveryID), "modelDeployments", n)
	rw.WriteHeader(http.StatusAccepted)
	if n == 0 {
		return metrics.DeliveryUnknownModel
	}
	return metrics.DeliveryAccepted
}

// changedAt is when the model changed, as a verified delivery says: its
// signed timestamp, never later than now (the verifier accepts a little
// clock skew either way).
func (w *Receiver) changedAt(h http.Header) time.Time {
	now := time.Now()
	secs, err := strconv.ParseInt(h.Get(mlflow.HeaderTimestamp), 10, 64)
	if err != nil {
		return now
	}
	if at := time.Unix(secs, 0); at.Before(now) {
		return at
	}
	return now
}

func (w *Receiver) enqueue(ctx context.Context, model string, changedAt time.Time) (int, error) {
	if w.Invalidate != nil {
		w.Invalidate(model, changedAt)
	}
	list := &unstructured.UnstructuredList{}
	list.SetGroupVersionKind(v1alpha1.GroupVersion.WithKind("ModelDeploymentList"))
	if err := w.Reader.List(ctx, list, client.MatchingFields{IndexModelName: model}); err != nil {
		return 0, err
	}
	for i := range list.Items {
		select {
		case w.Events <- event.GenericEvent{Object: &list.Items[i]}:
		case <-ctx.Done():
			return i, ctx.Err()
		}
	}
	return len(list.Items), nil
}

// Start serves until ctx ends, then shuts down within 5 seconds.
func (w *Receiver) Start(ctx context.Context) error {
	ln, err := net.Listen("tcp", w.Addr)
	if err != nil {
		return err
	}
	if w.CertDir != "" {
		watcher, err := certwatcher.New(filepath.Join(w.CertDir, "tls.crt"), filepath.Join(w.CertDir, "tls.key"))
		if err != nil {
			ln.Close()
			return fmt.Errorf("the webhook receiver's certificate: %w", err)
		}
		go func() {
			if err := watcher.Start(ctx); err != nil {
				w.Log.Error(err, "Watching the webhook receiver's certificate stopped")
			}
		}()
		ln = tls.NewListener(ln, &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: watcher.GetCertificate})
	}
	return w.Serve(ctx, ln)
}

// Serve serves on ln until ctx ends.
func (w *Receiver) Serve(ctx context.Context, ln net.Listener) error {
	mux := http.NewServeMux()
	mux.Handle(Path, w)
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      10 * time.Second,
		MaxHeaderBytes:    16 << 10,
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	w.Log.Info("Receiving MLflow webhooks", "addr", ln.Addr().String(), "path", Path)
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return srv.Shutdown(shutdown)
	}
}

// leading tells whether this replica acts on deliveries itself.
func (w *Receiver) leading() bool {
	if w.Relay == nil || w.Elected == nil {
		return true
	}
	select {
	case <-w.Elected:
		return true
	default:
		return false
	}
}

// NeedLeaderElection: with a Relay every replica takes deliveries (the
// Service selects them all); without one only the leader does, and a
// standby refuses connections (MLflow retries; polling covers the rest).
func (w *Receiver) NeedLeaderElection() bool { return w.Relay == nil }
