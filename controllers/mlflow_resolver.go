package controllers

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/mlflow-operator/mlflow-operator/api/v1alpha1"
	"github.com/mlflow-operator/mlflow-operator/internal/mlflow"
)

// Keys of the MLflow credentials Secret: the MLflow Python client's
// environment variable names.
const (
	SecretKeyUsername = "MLFLOW_TRACKING_USERNAME"
	SecretKeyPassword = "MLFLOW_TRACKING_PASSWORD"
	SecretKeyToken    = "MLFLOW_TRACKING_TOKEN"
	SecretKeyCA       = "ca.crt"
)

// ReasonSecretNotFound: a Secret the spec names is missing or lacks its key.
const ReasonSecretNotFound = "SecretNotFound"

// resolveError carries a condition reason to the reconciler.
type resolveError struct {
	reason string
	err    error
}

func (e *resolveError) Error() string  { return e.err.Error() }
func (e *resolveError) Unwrap() error  { return e.err }
func (e *resolveError) Reason() string { return e.reason }
func (e *resolveError) Terminal() bool { return false }

// MLflowResolver resolves ModelDeployments against their MLflow tracking
// servers. ModelDeployments that follow the same reference on the same server
// with the same credentials share one registry request per poll interval: an
// answer is reused for CacheFraction of the interval, and concurrent askers
// wait for one request (singleflight). Each answer carries the time the
// registry gave it, and the reconciler schedules the next poll from that
// time (NextPoll), so the objects sharing an answer poll in step and none
// holds an answer for longer than 1.1 intervals. A webhook for a model drops
// its answers, so the next reconcile asks the registry again.
type MLflowResolver struct {
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
	// Now is the clock; time.Now when nil.
	Now func() time.Time

	mu      sync.Mutex
	clients map[string]*mlflow.Client
	answers map[string]cachedAnswer
	flight  singleflight.Group
}

type cachedAnswer struct {
	model   string
	version ModelVersion
	err     error
	at      time.Time
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

func (r *MLflowResolver) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

// Resolve implements Resolver.
func (r *MLflowResolver) Resolve(ctx context.Context, md *v1alpha1.ModelDeployment) (ModelVersion, error) {
	conn, err := r.connection(ctx, md)
	if err != nil {
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
		return v, a.err
	}
	r.mu.Unlock()

	v, err, _ := r.flight.Do(key, func() (any, error) {
		c, err := r.client(conn)
		if err != nil {
			return ModelVersion{}, err
		}
		mv, err := c.Resolve(ctx, ref)
		at := r.now()
		out := ModelVersion{AnsweredAt: at}
		if err == nil {
			out = ModelVersion{Version: mv.Version, RunID: mv.RunID, Source: mv.Source, AnsweredAt: at}
		} else {
			err = asReasoned(err)
		}
		r.mu.Lock()
		if r.answers == nil {
			r.answers = map[string]cachedAnswer{}
		}
		r.answers[key] = cachedAnswer{model: ref.Name, version: out, err: err, at: at}
		r.mu.Unlock()
		return out, err
	})
	return v.(ModelVersion), err
}

// ClientFor is the MLflow client of a ModelDeployment's server and
// credentials.
func (r *MLflowResolver) ClientFor(ctx context.Context, md *v1alpha1.ModelDeployment) (*mlflow.Client, error) {
	conn, err := r.connection(ctx, md)
	if err != nil {
		return nil, err
	}
	return r.client(conn)
}

// Invalidate drops the cached answers about a registered model, on every
// server (a webhook delivery does not say which server sent it).
func (r *MLflowResolver) Invalidate(model string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for k, a := range r.answers {
		if a.model == model {
			delete(r.answers, k)
		}
	}
}

// Prune forgets answers older than maxAge, bounding the cache's memory.
func (r *MLflowResolver) Prune(maxAge time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	for k, a := range r.answers {
		if now.Sub(a.at) > maxAge {
			delete(r.answers, k)
		}
	}
}

func asReasoned(err error) error {
	var re *mlflow.ResolveError
	if errors.As(err, &re) {
		return &resolveError{reason: re.Reason, err: err}
	}
	switch mlflow.KindOf(err) {
	case mlflow.KindUnreachable:
		return &resolveError{reason: v1alpha1.ReasonMLflowUnreachable, err: err}
	case mlflow.KindUnauthorized:
		return &resolveError{reason: v1alpha1.ReasonMLflowUnauthorized, err: err}
	}
	return &resolveError{reason: v1alpha1.ReasonMLflowError, err: err}
}

// client is the shared client of a connection.
func (r *MLflowResolver) client(conn connection) (*mlflow.Client, error) {
	key := conn.key()
	r.mu.Lock()
	defer r.mu.Unlock()
	if c, ok := r.clients[key]; ok {
		return c, nil
	}
	opts := append([]mlflow.Option{mlflow.WithAuth(conn.auth), mlflow.WithInsecureSkipVerify(conn.insecure)}, r.Options...)
	if conn.ca != nil {
		opts = append(opts, mlflow.WithCA(conn.ca))
	}
	if r.Transport != nil {
		opts = append(opts, mlflow.WithTransport(r.Transport))
	}
	c, err := mlflow.New(conn.uri, opts...)
	if err != nil {
		return nil, &resolveError{reason: v1alpha1.ReasonMLflowError, err: err}
	}
	if r.clients == nil || len(r.clients) > 256 {
		// Credentials rotate; old clients are dropped wholesale now and then.
		r.clients = map[string]*mlflow.Client{}
	}
	r.clients[key] = c
	return c, nil
}

// connection reads the Secrets a ModelDeployment names. Their values go only
// into request headers and the TLS configuration: never into logs, events
// or status.
func (r *MLflowResolver) connection(ctx context.Context, md *v1alpha1.ModelDeployment) (connection, error) {
	conn := connection{uri: md.Spec.MLflow.TrackingURI, insecure: md.Spec.MLflow.InsecureSkipTLSVerify}
	if ref := md.Spec.MLflow.CredentialsSecretRef; ref != nil && ref.Name != "" {
		data, err := r.secret(ctx, md.Namespace, ref.Name)
		if err != nil {
			return conn, err
		}
		conn.auth = mlflow.Auth{
			Username: string(data[SecretKeyUsername]),
			Password: string(data[SecretKeyPassword]),
			Token:    string(data[SecretKeyToken]),
		}
		if conn.auth == (mlflow.Auth{}) {
			return conn, &resolveError{reason: ReasonSecretNotFound, err: fmt.Errorf(
				"secret %q has none of the keys %s, %s or %s", ref.Name, SecretKeyUsername, SecretKeyPassword, SecretKeyToken)}
		}
	}
	if ref := md.Spec.MLflow.CASecretRef; ref != nil && ref.Name != "" {
		data, err := r.secret(ctx, md.Namespace, ref.Name)
		if err != nil {
			return conn, err
		}
		ca, ok := data[SecretKeyCA]
		if !ok {
			return conn, &resolveError{reason: ReasonSecretNotFound, err: fmt.Errorf("secret %q has no key %s", ref.Name, SecretKeyCA)}
		}
		conn.ca = ca
	}
	return conn, nil
}

func (r *MLflowResolver) secret(ctx context.Context, namespace, name string) (map[string][]byte, error) {
	s := &corev1.Secret{}
	if err := r.Reader.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, s); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, &resolveError{reason: ReasonSecretNotFound, err: fmt.Errorf("secret %q not found in namespace %s", name, namespace)}
		}
		return nil, fmt.Errorf("failed to read secret %q: %w", name, err)
	}
	return s.Data, nil
}
