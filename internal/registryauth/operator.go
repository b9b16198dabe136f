package registryauth

// The operator's own registry identity: its Docker config, then the cloud
// identities an administrator turned on. It is used only where
// --operator-registry-credentials grants it (internal/builds decides).

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/v1/google"
	"k8s.io/utils/clock"

	"github.com/mlflow-operator/mlflow-operator/internal/failure"
	"github.com/mlflow-operator/mlflow-operator/internal/text"
)

// The cloud identities OperatorKeychain knows.
const (
	// CloudAzure: Azure workload identity, else managed identity, for
	// Azure Container Registry.
	CloudAzure = "azure"
	// CloudGoogle: Google Application Default Credentials (GKE workload
	// identity, the metadata server, GOOGLE_APPLICATION_CREDENTIALS) for
	// gcr.io and Artifact Registry (*.pkg.dev).
	CloudGoogle = "google"
)

// Clouds are the names OperatorKeychain accepts. AWS ECR is not among them:
// its maintained helper (amazon-ecr-credential-helper) brings the AWS SDK's
// dozen modules; a Docker config with a credential helper in the operator's
// image, or a pushSecretRef, serves ECR meanwhile.
var Clouds = []string{CloudAzure, CloudGoogle}

// Options configure the operator's own identity.
type Options struct {
	// Clouds are the cloud identities asked after the Docker config, in
	// this order (CloudAzure, CloudGoogle). None: the Docker config alone.
	Clouds []string
	// Azure configures CloudAzure.
	Azure AzureOptions
	// DockerConfig is the first keychain; authn.DefaultKeychain
	// ($DOCKER_CONFIG/config.json and its credential helpers) when nil.
	DockerConfig authn.Keychain
	Log          logr.Logger
}

// OperatorKeychain is the operator's own registry identity: the Docker
// config first (a registry it names keeps its credentials), then each cloud
// identity for the registries of its cloud. Every other registry gets
// anonymous access. Nothing is requested before a registry asks for
// credentials; a cloud whose identity is missing fails then, with an error
// saying so.
func OperatorKeychain(o Options) (authn.Keychain, error) {
	docker := o.DockerConfig
	if docker == nil {
		docker = authn.DefaultKeychain
	}
	chain := []authn.Keychain{docker}
	described := []string{"Docker config"}
	seen := map[string]bool{}
	for _, c := range o.Clouds {
		c = strings.ToLower(strings.TrimSpace(c))
		if c == "" || seen[c] {
			continue
		}
		seen[c] = true
		switch c {
		case CloudAzure:
			az := o.Azure
			if az.Log.GetSink() == nil {
				az.Log = o.Log
			}
			k, err := NewAzureKeychain(az)
			if err != nil {
				return nil, fmt.Errorf("azure registry identity: %w", err)
			}
			chain = append(chain, k)
			described = append(described, k.Describe())
		case CloudGoogle:
			chain = append(chain, &GoogleKeychain{})
			described = append(described, "Google Application Default Credentials for gcr.io, *.gcr.io, *.pkg.dev")
		default:
			return nil, fmt.Errorf("unknown cloud identity %q (known: %s)", c, strings.Join(Clouds, ", "))
		}
	}
	o.Log.Info("Operator registry identity (only where --operator-registry-credentials grants it)", "keychains", described)
	return authn.NewMultiKeychain(chain...), nil
}

// GoogleKeychain answers for gcr.io, *.gcr.io and *.pkg.dev with Google
// Application Default Credentials (go-containerregistry's
// google.NewEnvAuthenticator), anonymous elsewhere. Unlike google.Keychain
// it does not remember a failure for the life of the process (it tries
// again after a minute), binds no build's context into the token source,
// never runs gcloud, and bounds each token request in time.
type GoogleKeychain struct {
	// NewAuthenticator; google.NewEnvAuthenticator when nil (tests).
	NewAuthenticator func(context.Context) (authn.Authenticator, error)
	// Timeout bounds getting a token; 30 s when zero.
	Timeout time.Duration
	// Clock; the real one when nil.
	Clock clock.PassiveClock

	mu      sync.Mutex
	auth    authn.Authenticator
	err     error
	retryAt time.Time
}

// IsGoogle tells whether registry gets Google credentials.
func IsGoogle(registry string) bool {
	host := strings.ToLower(registry)
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	return host == "gcr.io" || strings.HasSuffix(host, ".gcr.io") || strings.HasSuffix(host, ".pkg.dev")
}

// Resolve implements authn.Keychain; it makes no request.
func (g *GoogleKeychain) Resolve(r authn.Resource) (authn.Authenticator, error) {
	if !IsGoogle(r.RegistryStr()) {
		return authn.Anonymous, nil
	}
	return googleAuthenticator{g}, nil
}

type googleAuthenticator struct{ g *GoogleKeychain }

func (a googleAuthenticator) Authorization() (*authn.AuthConfig, error) {
	return a.AuthorizationContext(context.Background())
}

func (a googleAuthenticator) AuthorizationContext(ctx context.Context) (*authn.AuthConfig, error) {
	auth, err := a.g.authenticator(ctx)
	if err != nil {
		return nil, err
	}
	// The token source refreshes without a context: bounded here.
	return bounded(ctx, a.g.timeout(), func() (*authn.AuthConfig, error) { return auth.Authorization() })
}

func (g *GoogleKeychain) timeout() time.Duration {
	if g.Timeout > 0 {
		return g.Timeout
	}
	return 30 * time.Second
}

func (g *GoogleKeychain) now() time.Time {
	if g.Clock == nil {
		return time.Now()
	}
	return g.Clock.Now()
}

// authenticator finds the credentials once they can be found; a failure is
// answered for a minute, then tried again.
func (g *GoogleKeychain) authenticator(ctx context.Context) (authn.Authenticator, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.auth != nil {
		return g.auth, nil
	}
	if g.err != nil && g.now().Before(g.retryAt) {
		return nil, g.err
	}
	newAuth := g.NewAuthenticator
	if newAuth == nil {
		newAuth = google.NewEnvAuthenticator
	}
	auth, err := bounded(ctx, g.timeout(), func() (authn.Authenticator, error) {
		// Background: the token source keeps this context for its
		// refreshes, long after this build.
		return newAuth(context.Background())
	})
	if err != nil {
		g.err = failure.New(failure.Unauthorized, failure.Registry, "Google Application Default Credentials",
			fmt.Errorf("%s", text.Shorten(err.Error(), maxDetailBytes)))
		g.retryAt = g.now().Add(time.Minute)
		return nil, g.err
	}
	g.auth, g.err = auth, nil
	return auth, nil
}

// bounded runs fn and waits at most timeout, or until ctx ends, for it.
func bounded[T any](ctx context.Context, timeout time.Duration, fn func() (T, error)) (T, error) {
	type result struct {
		v   T
		err error
	}
	ch := make(chan result, 1)
	go func() {
		v, err := fn()
		ch <- result{v, err}
	}()
	t := time.NewTimer(timeout)
	defer t.Stop()
	var zero T
	select {
	case r := <-ch:
		return r.v, r.err
	case <-t.C:
		return zero, failure.Errorf(failure.Unreachable, failure.Registry, "no token within %s", timeout)
	case <-ctx.Done():
		return zero, failure.New(failure.Unreachable, failure.Registry, "waiting for a token", ctx.Err())
	}
}

var osGetenv = os.Getenv

// defaultTransport is http.DefaultTransport's copy with every phase a peer
// decides the length of bounded; with the environment's proxy or none
// (IMDS is never reached through a proxy).
func defaultTransport(proxy bool) http.RoundTripper {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.DialContext = (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	t.TLSHandshakeTimeout = 10 * time.Second
	t.ResponseHeaderTimeout = 30 * time.Second
	if !proxy {
		t.Proxy = nil
	}
	return t
}
