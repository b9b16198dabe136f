package registryauth

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	clocktesting "k8s.io/utils/clock/testing"
)

func TestOperatorKeychainChain(t *testing.T) {
	if _, err := OperatorKeychain(Options{Clouds: []string{"azure", "aws"}, Azure: AzureOptions{Getenv: func(string) string { return "" }}}); err == nil ||
		!strings.Contains(err.Error(), `unknown cloud identity "aws"`) {
		t.Errorf("unknown cloud: %v", err)
	}
	if _, err := OperatorKeychain(Options{Clouds: []string{"azure"}, Azure: AzureOptions{
		Getenv: func(v string) string { return map[string]string{"AZURE_FEDERATED_TOKEN_FILE": "/t"}[v] }}}); err == nil {
		t.Error("a half-configured workload identity was accepted")
	}
	docker, err := FromSecret(dockerConfigJSON(`{"auths": {"named.azurecr.io": {"username": "docker", "password": "config"}}}`))
	if err != nil {
		t.Fatal(err)
	}
	kc, err := OperatorKeychain(Options{Clouds: []string{" Azure ", "google", "azure"}, DockerConfig: docker,
		Azure: AzureOptions{Getenv: func(string) string { return "" }}})
	if err != nil {
		t.Fatal(err)
	}
	for host, want := range map[string]string{
		"named.azurecr.io":                   "docker", // the Docker config wins where it names the registry
		"other.azurecr.io":                   "azure",
		"europe-docker.pkg.dev":              "google",
		"gcr.io":                             "google",
		"registry.example.com":               "anonymous",
		"pkg.dev.example.com":                "anonymous",
		"myacr.azurecr.io.registry.internal": "anonymous",
	} {
		a, err := kc.Resolve(registryResource(host))
		if err != nil {
			t.Fatal(err)
		}
		if got := source(a); got != want {
			t.Errorf("%s: %s, want %s", host, got, want)
		}
	}
	// Without clouds: the Docker config alone, as before.
	kc, err = OperatorKeychain(Options{DockerConfig: docker})
	if err != nil {
		t.Fatal(err)
	}
	if a, _ := kc.Resolve(registryResource("other.azurecr.io")); a != authn.Anonymous {
		t.Errorf("no clouds, yet %T for an ACR host", a)
	}
}

// source names the keychain an authenticator came from.
func source(a authn.Authenticator) string {
	switch a.(type) {
	case *acrAuthenticator:
		return "azure"
	case googleAuthenticator:
		return "google"
	}
	if a == authn.Anonymous {
		return "anonymous"
	}
	if cfg, err := a.Authorization(); err == nil && cfg.Username == "docker" {
		return "docker"
	}
	return "other"
}

func TestGoogleKeychainRetriesAfterAMinute(t *testing.T) {
	clock := clocktesting.NewFakePassiveClock(time.Unix(1_900_000_000, 0))
	var calls atomic.Int32
	var works atomic.Bool
	g := &GoogleKeychain{Clock: clock, NewAuthenticator: func(context.Context) (authn.Authenticator, error) {
		calls.Add(1)
		if !works.Load() {
			return nil, errors.New("google: could not find default credentials")
		}
		return &authn.Basic{Username: "_token", Password: "ya29.token"}, nil
	}}
	if a, _ := g.Resolve(registryResource("ghcr.io")); a != authn.Anonymous {
		t.Fatal("credentials for a registry that is not Google's")
	}
	a, _ := g.Resolve(registryResource("us-docker.pkg.dev"))
	for range 3 {
		if _, err := authn.Authorization(context.Background(), a); err == nil || !strings.Contains(err.Error(), "could not find default credentials") {
			t.Fatalf("no credentials: %v", err)
		}
	}
	if calls.Load() != 1 {
		t.Errorf("%d attempts within a minute", calls.Load())
	}
	works.Store(true)
	clock.SetTime(clock.Now().Add(61 * time.Second))
	cfg, err := authn.Authorization(context.Background(), a)
	if err != nil || cfg.Password != "ya29.token" {
		t.Fatalf("after a minute: %+v, %v", cfg, err)
	}
	if _, err := authn.Authorization(context.Background(), a); err != nil || calls.Load() != 2 {
		t.Errorf("found credentials are kept: %d attempts, %v", calls.Load(), err)
	}
	// A source that hangs is bounded.
	slow := &GoogleKeychain{Timeout: 50 * time.Millisecond, NewAuthenticator: func(ctx context.Context) (authn.Authenticator, error) {
		time.Sleep(time.Second)
		return nil, errors.New("late")
	}}
	a, _ = slow.Resolve(registryResource("gcr.io"))
	if _, err := authn.Authorization(context.Background(), a); err == nil || !strings.Contains(err.Error(), "no token within") {
		t.Errorf("hanging source: %v", err)
	}
}
