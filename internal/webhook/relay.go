package webhook

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/retry"
	crcache "sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// The relay carries a delivery that a standby replica received to the
// leader, which alone reconciles. Every replica takes deliveries (the
// Service selects them all); a standby writes "model M changed at T" into
// one ConfigMap in the operator's own namespace, and the leader, which
// watches that ConfigMap, reacts as if it had received the delivery itself.
// One small write per delivery, nothing written to tenants' objects, and
// the only permission needed is on that ConfigMap.

// RelayName is the relay ConfigMap's name in the operator's namespace.
const RelayName = "mlflow-operator-webhook-relay"

// maxRelayEntries bounds the relay: the oldest entries go first. One
// entry per model, so this is the number of models changed recently.
const maxRelayEntries = 256

// maxModelName bounds a model name the relay carries; MLflow's are short.
const maxModelName = 1024

// relayEntry is one model's latest change, as the relay stores it: when
// the standby relayed it (At), and when the model changed as the delivery
// said (Changed; absent in entries of older operators).
type relayEntry struct {
	Model   string    `json:"model"`
	At      time.Time `json:"at"`
	Changed time.Time `json:"changed,omitzero"`
}

// relayKey is the ConfigMap key of a model: model names may hold
// characters a key may not.
func relayKey(model string) string {
	sum := sha256.Sum256([]byte(model))
	return "m-" + hex.EncodeToString(sum[:12])
}

// Relay writes deliveries into the relay ConfigMap (standbys) and turns the
// ConfigMap's changes into reconciles (the leader).
type Relay struct {
	// Client writes the ConfigMap (live reads: a standby's cache of it is
	// not needed).
	Client    client.Client
	Namespace string
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

func (r *Relay) now() time.Time {
	if r.Now != nil {
		return r.Now().UTC()
	}
	return time.Now().UTC()
}

// Forward records that model changed at changedAt (the delivery's
// timestamp).
func (r *Relay) Forward(ctx context.Context, model string, changedAt time.Time) error {
	if len(model) > maxModelName {
		return fmt.Errorf("model name of %d bytes is too long to relay", len(model))
	}
	value, err := json.Marshal(relayEntry{Model: model, At: r.now(), Changed: changedAt.UTC()})
	if err != nil {
		return err
	}
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cm := &corev1.ConfigMap{}
		err := r.Client.Get(ctx, client.ObjectKey{Namespace: r.Namespace, Name: RelayName}, cm)
		if apierrors.IsNotFound(err) {
			cm = &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: r.Namespace, Name: RelayName,
				Labels: map[string]string{"app.kubernetes.io/name": "mlflow-operator", "app.kubernetes.io/component": "webhook-relay"}},
				Data: map[string]string{relayKey(model): string(value)}}
			err = r.Client.Create(ctx, cm)
			if apierrors.IsAlreadyExists(err) {
				return apierrors.NewConflict(corev1.Resource("configmaps"), RelayName, err)
			}
			return err
		}
		if err != nil {
			return err
		}
		if cm.Data == nil {
			cm.Data = map[string]string{}
		}
		cm.Data[relayKey(model)] = string(value)
		prune(cm.Data, maxRelayEntries)
		return r.Client.Update(ctx, cm)
	})
}

// prune keeps the newest max entries of data (unreadable ones go first).
func prune(data map[string]string, max int) {
	if len(data) <= max {
		return
	}
	type aged struct {
		key string
		at  time.Time
	}
	all := make([]aged, 0, len(data))
	for k, v := range data {
		var e relayEntry
		_ = json.Unmarshal([]byte(v), &e)
		all = append(all, aged{k, e.At})
	}
	sort.Slice(all, func(i, j int) bool { return all[i].at.Before(all[j].at) })
	for _, a := range all[:len(all)-max] {
		delete(data, a.key)
	}
}

// RelayListener is the leader's side: a manager Runnable that watches the
// relay ConfigMap through the manager's cache and hands every model whose
// entry changed to the Receiver, as a delivery would. Entries are compared
// by value, not by time: the replicas' clocks need not agree.
type RelayListener struct {
	Cache     crcache.Cache
	Namespace string
	Receiver  *Receiver
	Log       logr.Logger

	mu   sync.Mutex
	seen map[string]string
}

// NeedLeaderElection: only the leader acts on relayed deliveries.
func (l *RelayListener) NeedLeaderElection() bool { return true }

// Start listens until ctx ends. What the ConfigMap holds when the leader
// starts is not replayed: a new leader reconciles every ModelDeployment
// anyway.
func (l *RelayListener) Start(ctx context.Context) error {
	inf, err := l.Cache.GetInformer(ctx, &corev1.ConfigMap{})
	if err != nil {
		return fmt.Errorf("watching the webhook relay: %w", err)
	}
	if !l.Cache.WaitForCacheSync(ctx) {
		return ctx.Err()
	}
	current := &corev1.ConfigMap{}
	if err := l.Cache.Get(ctx, client.ObjectKey{Namespace: l.Namespace, Name: RelayName}, current); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("reading the webhook relay: %w", err)
	}
	l.mu.Lock()
	l.seen = map[string]string{}
	for k, v := range current.Data {
		l.seen[k] = v
	}
	l.mu.Unlock()
	reg, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { l.changed(ctx, obj) },
		UpdateFunc: func(_, obj any) { l.changed(ctx, obj) },
	})
	if err != nil {
		return err
	}
	<-ctx.Done()
	_ = inf.RemoveEventHandler(reg)
	return nil
}

// changed hands the models of changed entries to the Receiver.
func (l *RelayListener) changed(ctx context.Context, obj any) {
	cm, ok := obj.(*corev1.ConfigMap)
	if !ok || cm.Name != RelayName || cm.Namespace != l.Namespace {
		return
	}
	for _, e := range l.fresh(cm.Data) {
		changed := e.Changed
		if changed.IsZero() {
			changed = e.At
		}
		n, err := l.Receiver.enqueue(ctx, e.Model, changed)
		if err != nil {
			l.Log.Error(err, "Cannot list ModelDeployments for a relayed webhook", "model", e.Model)
			continue
		}
		l.Log.Info("Relayed webhook delivery", "model", e.Model, "modelDeployments", n)
	}
}

// fresh returns the entries that changed since last seen, by model name,
// and remembers them.
func (l *RelayListener) fresh(data map[string]string) []relayEntry {
	l.mu.Lock()
	defer l.mu.Unlock()
	var entries []relayEntry
	for k, v := range data {
		if l.seen[k] == v {
			continue
		}
		l.seen[k] = v
		var e relayEntry
		if err := json.Unmarshal([]byte(v), &e); err != nil || e.Model == "" || len(e.Model) > maxModelName || relayKey(e.Model) != k {
			continue
		}
		entries = append(entries, e)
	}
	// The seen map follows the ConfigMap's entries: it never grows past it.
	for k := range l.seen {
		if _, ok := data[k]; !ok {
			delete(l.seen, k)
		}
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].Model < entries[j].Model })
	return entries
}
