// Package resolver answers which model version a ModelDeployment's model
// reference (alias, stage or version) means now, sharing registry answers
// between the ModelDeployments that ask the same question of the same MLflow
// server as the same identity, and says when to ask again (NextPoll).
package resolver

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/mlflow-operator/mlflow-operator/api/v1alpha1"
	"github.com/mlflow-operator/mlflow-operator/internal/failure"
	"github.com/mlflow-operator/mlflow-operator/internal/metrics"
	"github.com/mlflow-operator/mlflow-operator/internal/mlflow"
)

// ModelVersion is a registered model version a reference resolved to.
type ModelVersion struct {
	Version string
	RunID   string
	Source  string
	// AnsweredAt is when the registry gave this answer: earlier than the
	// call when the answer was shared from another object's poll. Zero
	// means now.
	AnsweredAt time.Time
	// ChangedAt, for an answer fetched because a webhook said the model
	// changed (Invalidate), is the time the webhook gave; zero for an
	// answer polling fetched.
	ChangedAt time.Time
}

// Resolver resolves ModelDeployments against their MLflow tracking servers.
// ModelDeployments that follow the same reference on the same server with
// the same credentials share one registry request per poll interval: an
// answer is reused for CacheFraction of the interval, and concurrent askers
// wait for one request (singleflight). Each answer carries the time the
// registry gave it, and the reconciler schedules the next poll from that
// time (NextPoll), so the objects sharing an answer poll in step and none
// holds an answer for longer than 1.1 intervals. A webhook for a model drops
// its answers (Invalidate), so the next reconcile asks the registry again.
type Resolver struct {
	// Reader reads Secrets; an uncached reader (the manager's API reader), so
	// that the operator neither watches nor caches every Secret.
	Reader client.Reader
	// Transport, when set, carries every MLflow request (tests count them).
	Transport http.RoundTripper
	// Options are added to every client (timeouts, retries).
	Options []mlflow.Option
	// CacheFraction of a ModelDeployment's poll interval an answer is reused;
	// 0.8 when zero.
	CacheFraction float64
	// Clock; the real one when nil.
	Clock clock.PassiveClock

	mu      sync.Mutex
	clients map[string]*mlflow.Client
	answers map[string]cachedAnswer
	// changed holds, for answers a webhook invalidated, when the model
	// changed; the next answer fetched for the key carries it.
	changed map[string]time.Time
	flight  singleflight.Group
}

type cachedAnswer struct {
	model   string
	version ModelVersion
	err     error
	at      time.Time
}

// maxClients bounds the shared clients; credentials rotate, so old clients
// are dropped wholesale now and then.
const maxClients = 256

func (r *Resolver) now() time.Time {
	if r.Clock == nil {
		return time.Now()
	}
	return r.Clock.Now()
}

// Resolve answers which version md's model reference means now.
func (r *Resolver) Resolve(ctx context.Context, md *v1alpha1.ModelDeployment) (ModelVersion, error) {
	conn, err := r.connection(ctx, md)
	if err != nil {
		metrics.Resolved(err, metrics.SourceConfig)
		return ModelVersion{}, err
	}
	ref := mlflow.Reference{Name: md.Spec.Model.Name, Alias: md.Spec.Model.Alias, Stage: md.Spec.Model.Stage, Version: md.Spec.Model.Version}
	key := conn.key() + "\x00" + ref.Name + "\x00" + ref.Alias + "\x00" + ref.Stage + "\x00" + ref.Version
	fraction := r.CacheFraction
	if fraction <= 0 {
		fraction = 0.8
	}
	ttl := time.Duration(fraction * float64(md.Spec.PollInterval()))

	r.mu.Lock()
	if a, ok := r.answers[key]; ok && r.now().Sub(a.at) < ttl {
		r.mu.Unlock()
		v := a.version
		v.AnsweredAt = a.at
		metrics.Resolved(a.err, metrics.SourceCache)
		return v, a.err
	}
	r.mu.Unlock()

	asked := false
	v, err, _ := r.flight.Do(key, func() (any, error) {
		asked = true
		c, err := r.client(conn)
		if err != nil {
			return ModelVersion{}, err
		}
		mv, err := c.Resolve(ctx, ref)
		at := r.now()
		r.mu.Lock()
		defer r.mu.Unlock()
		out := ModelVersion{AnsweredAt: at, ChangedAt: r.changed[key]}
		delete(r.changed, key)
		if err == nil {
			out.Version, out.RunID, out.Source = mv.Version, mv.RunID, mv.Source
		}
		if r.answers == nil {
			r.answers = map[string]cachedAnswer{}
		}
		r.answers[key] = cachedAnswer{model: ref.Name, version: out, err: err, at: at}
		return out, err
	})
	source := metrics.SourceCache
	if asked {
		// This call asked; the others waiting for it shared its answer.
		source = metrics.SourceMLflow
	}
	metrics.Resolved(err, source)
	return v.(ModelVersion), err
}

// ClientFor is the MLflow client of a ModelDeployment's server and
// credentials.
func (r *Resolver) ClientFor(ctx context.Context, md *v1alpha1.ModelDeployment) (*mlflow.Client, error) {
	conn, err := r.connection(ctx, md)
	if err != nil {
		return nil, err
	}
	return r.client(conn)
}

// Example is the smoke test request a model version answers: its
// serving_input_example.json, or nil when it has none.
func (r *Resolver) Example(ctx context.Context, md *v1alpha1.ModelDeployment, version string) ([]byte, error) {
	c, err := r.ClientFor(ctx, md)
	if err != nil {
		return nil, err
	}
	data, err := c.ReadArtifact(ctx, md.Spec.Model.Name, version, "serving_input_example.json", 1<<20)
	if failure.IsNotFound(err) {
		return nil, nil
	}
	return data, err
}

// Invalidate drops the cached answers about a registered model, on every
// server (a webhook delivery does not say which server sent it). changedAt,
// when not zero, is when the model changed (the delivery's timestamp): the
// next answer fetched for each dropped one carries it as ChangedAt.
func (r *Resolver) Invalidate(model string, changedAt time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for k, a := range r.answers {
		if a.model != model {
			continue
		}
		delete(r.answers, k)
		if changedAt.IsZero() {
			continue
		}
		if r.changed == nil {
			r.changed = map[string]time.Time{}
		}
		// A later delivery before the next answer leaves the first time:
		// the change was seen then.
		if _, ok := r.changed[k]; !ok {
			r.changed[k] = changedAt
		}
	}
}

// Prune forgets answers older than maxAge, bounding the cache's memory.
func (r *Resolver) Prune(maxAge time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	for k, a := range r.answers {
		if now.Sub(a.at) > maxAge {
			delete(r.answers, k)
		}
	}
	for k, at := range r.changed {
		if now.Sub(at) > maxAge {
			delete(r.changed, k)
		}
	}
}

// Start prunes, every 10 minutes, the answers nobody asked for in an hour,
// until ctx ends (a manager Runnable).
func (r *Resolver) Start(ctx context.Context) error {
	t := time.NewTicker(10 * time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			r.Prune(time.Hour)
		}
	}
}

// client is the shared client of a connection.
func (r *Resolver) client(conn connection) (*mlflow.Client, error) {
	key := conn.key()
	r.mu.Lock()
	defer r.mu.Unlock()
	if c, ok := r.clients[key]; ok {
		return c, nil
	}
	// Every request is counted in the operator's metrics (Options may
	// observe otherwise).
	opts := append([]mlflow.Option{mlflow.WithAuth(conn.auth), mlflow.WithInsecureSkipVerify(conn.insecure),
		mlflow.WithRequestObserver(metrics.MLflowRequest)}, r.Options...)
	if conn.ca != nil {
		opts = append(opts, mlflow.WithCA(conn.ca))
	}
	if r.Transport != nil {
		opts = append(opts, mlflow.WithTransport(r.Transport))
	}
	c, err := mlflow.New(conn.uri, opts...)
	if err != nil {
		// Keeps the client's verdict: a tracking URI it refuses (with
		// credentials in it, say) is terminal until the spec changes.
		return nil, err
	}
	if r.clients == nil || len(r.clients) >= maxClients {
		r.clients = map[string]*mlflow.Client{}
	}
	r.clients[key] = c
	return c, nil
}

// connection is what it takes to talk to one server as one identity.
type connection struct {
	uri      string
	auth     mlflow.Auth
	ca       []byte
	insecure bool
}

// key identifies the server and identity without holding the secrets: a
// hash, so that answers fetched with one namespace's credentials are never
// given to another's.
func (c connection) key() string {
	h := sha256.New()
	for _, s := range []string{c.uri, c.auth.Username, c.auth.Password, c.auth.Token, string(c.ca), fmt.Sprint(c.insecure)} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))
}
