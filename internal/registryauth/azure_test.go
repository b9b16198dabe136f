package registryauth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/mlflow-operator/mlflow-operator/internal/failure"
)

// noDockerConfig stands for an operator without a Docker config.
var noDockerConfig = authn.NewMultiKeychain()

// TestAzureWorkloadIdentityPushesAndPulls: go-containerregistry pushes and
// pulls through a registry that demands a Bearer token, with the operator
// keychain: Azure AD (workload identity) -> ACR exchange -> ACR token
// endpoint -> registry. One Azure AD token and one exchange serve every
// request.
func TestAzureWorkloadIdentityPushesAndPulls(t *testing.T) {
	f := newFakeAzure(t)
	az := f.keychain(AzureOptions{})
	// The operator's chain, with the test's Azure keychain.
	kc := authn.NewMultiKeychain(noDockerConfig, az)
	ref, err := name.ParseReference(f.registry() + "/models/iris:1")
	if err != nil {
		t.Fatal(err)
	}
	img, err := random.Image(1024, 2)
	if err != nil {
		t.Fatal(err)
	}
	opts := []remote.Option{remote.WithAuthFromKeychain(kc), remote.WithTransport(f.transport())}

	if _, err := remote.Image(ref, remote.WithTransport(f.transport())); err == nil {
		t.Fatal("the registry answered without credentials")
	}
	if err := remote.Write(ref, img, opts...); err != nil {
		t.Fatalf("push: %v", err)
	}
	want, _ := img.Digest()
	for range 5 {
		got, err := remote.Image(ref, opts...)
		if err != nil {
			t.Fatalf("pull: %v", err)
		}
		if d, _ := got.Digest(); d != want {
			t.Fatalf("pulled %s, pushed %s", d, want)
		}
		if _, err := remote.Head(ref, opts...); err != nil {
			t.Fatalf("head: %v", err)
		}
	}
	if n, m := f.aadCalls.Load(), f.exchangeCalls.Load(); n != 1 || m != 1 {
		t.Errorf("%d Azure AD tokens and %d exchanges for 11 operations, want 1 and 1", n, m)
	}
	if f.tokenCalls.Load() < 2 {
		t.Errorf("%d registry tokens: the registry's token endpoint was not used", f.tokenCalls.Load())
	}
}

func TestAzureTokensAreSharedAndRefreshedBeforeExpiry(t *testing.T) {
	f := newFakeAzure(t)
	k := f.keychain(AzureOptions{})
	try := func() (string, error) {
		a, err := k.Resolve(registryResource(f.registry()))
		if err != nil {
			return "", err
		}
		cfg, err := authn.Authorization(context.Background(), a)
		if err != nil {
			return "", err
		}
		if cfg.Username != ACRUsername || !f.issued(f.refresh, cfg.Password) {
			return "", fmt.Errorf("credentials %s/%s are not an ACR refresh token", cfg.Username, cfg.Password)
		}
		return cfg.Password, nil
	}
	auth := func() string {
		t.Helper()
		tok, err := try()
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	// Concurrent builds share one Azure AD token and one exchange.
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			if _, err := try(); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	first := auth()
	calls := func(aad, exchanges int32) {
		t.Helper()
		if f.aadCalls.Load() != aad || f.exchangeCalls.Load() != exchanges {
			t.Fatalf("%d Azure AD calls, %d exchanges; want %d, %d", f.aadCalls.Load(), f.exchangeCalls.Load(), aad, exchanges)
		}
	}
	calls(1, 1)
	// The Azure AD token lives an hour, the refresh token 3 hours (reused
	// at most an hour): both are renewed 5 minutes before an hour is up.
	f.clock.SetTime(f.clock.Now().Add(54 * time.Minute))
	if auth() != first {
		t.Fatal("a fresh refresh token was replaced")
	}
	calls(1, 1)
	f.clock.SetTime(f.clock.Now().Add(2 * time.Minute))
	if auth() == first {
		t.Fatal("the refresh token was not renewed")
	}
	calls(2, 2)

	// A refresh token that says it expires in 10 minutes is renewed after
	// 5, while the Azure AD token is still good.
	f.mu.Lock()
	f.refreshLife = 10 * time.Minute
	f.mu.Unlock()
	f.clock.SetTime(f.clock.Now().Add(56 * time.Minute))
	short := auth()
	calls(3, 3)
	f.clock.SetTime(f.clock.Now().Add(4 * time.Minute))
	if auth() != short {
		t.Fatal("renewed too early")
	}
	f.clock.SetTime(f.clock.Now().Add(2 * time.Minute))
	auth()
	calls(3, 4)
}

func TestAzureADRefusalIsClearAndHoldsNoSecret(t *testing.T) {
	f := newFakeAzure(t)
	f.aadAnswer = func(w http.ResponseWriter, r *http.Request) bool {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		// A description that (implausibly) echoes the assertion.
		_, _ = w.Write([]byte(`{"error": "invalid_client", "error_description": "AADSTS700213: No matching federated identity record found for presented assertion subject 'system:serviceaccount:mlflow-operator-system:mlflow-operator-controller-manager'. Assertion: ` + testAssertion + `", "error_codes": [700213]}`))
		return true
	}
	k := f.keychain(AzureOptions{})
	kc := authn.NewMultiKeychain(noDockerConfig, k)
	ref, _ := name.ParseReference(f.registry() + "/models/iris:1")
	_, err := remote.Image(ref, remote.WithAuthFromKeychain(kc), remote.WithTransport(f.transport()))
	if err == nil {
		t.Fatal("pulled although Azure AD refused")
	}
	for _, want := range []string{"Azure workload identity", "HTTP 400", "invalid_client", "AADSTS700213"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if strings.Contains(err.Error(), testAssertion) || strings.Contains(err.Error(), "federated-service-account-token") {
		t.Errorf("error quotes the assertion: %q", err)
	}
	t.Logf("the error: %v", err)
	if failure.KindOf(err) != failure.Unauthorized || failure.SubjectOf(err) != failure.Registry {
		t.Errorf("kind %v, subject %q; want unauthorized, Registry", failure.KindOf(err), failure.SubjectOf(err))
	}
	// A refusal is not remembered: the next build asks again.
	f.mu.Lock()
	f.aadAnswer = nil
	f.mu.Unlock()
	if _, err := remote.Image(ref, remote.WithAuthFromKeychain(kc), remote.WithTransport(f.transport())); err == nil ||
		!strings.Contains(err.Error(), "MANIFEST_UNKNOWN") && !strings.Contains(err.Error(), "NAME_UNKNOWN") && !strings.Contains(err.Error(), "404") {
		t.Errorf("after Azure AD recovered: %v, want the registry's not found", err)
	}
	if f.aadCalls.Load() != 1 {
		t.Errorf("%d Azure AD tokens after recovery", f.aadCalls.Load())
	}
}

func TestACRHostSuffixes(t *testing.T) {
	k, err := NewAzureKeychain(AzureOptions{Getenv: func(string) string { return "" }})
	if err != nil {
		t.Fatal(err)
	}
	for host, want := range map[string]bool{
		"myacr.azurecr.io": true, "MyACR.AzureCR.io": true, "myacr.azurecr.io:443": true, "myacr.privatelink.azurecr.io": true,
		"myacr.azurecr.cn": true, "myacr.azurecr.us": true,
		"azurecr.io": false, ".azurecr.io": false, "evilazurecr.io": false, "myacr.azurecr.io.evil.com": false,
		"ghcr.io": false, "127.0.0.1:5000": false, "registry.example.com": false, "index.docker.io": false,
	} {
		if got := k.IsACR(host); got != want {
			t.Errorf("%s: ACR %v, want %v", host, got, want)
		}
		a, err := k.Resolve(registryResource(host))
		if err != nil {
			t.Fatal(err)
		}
		if (a != authn.Anonymous) != want {
			t.Errorf("%s: resolved to %T", host, a)
		}
	}
	custom, err := NewAzureKeychain(AzureOptions{Getenv: func(string) string { return "" }, HostSuffixes: []string{"registry.internal", " .Example.COM "}})
	if err != nil {
		t.Fatal(err)
	}
	// Without a leading dot, the host itself too.
	if !custom.IsACR("acr.registry.internal") || !custom.IsACR("registry.internal") || custom.IsACR("evilregistry.internal") ||
		!custom.IsACR("a.example.com:8443") || custom.IsACR("example.com") || custom.IsACR("myacr.azurecr.io") {
		t.Errorf("custom suffixes: %s", custom.Describe())
	}
	for _, every := range []string{".", ".."} {
		if _, err := NewAzureKeychain(AzureOptions{HostSuffixes: []string{every}}); err == nil {
			t.Errorf("suffix %q, matching every host, was accepted", every)
		}
	}
}

func TestAzureAnswersAreBounded(t *testing.T) {
	f := newFakeAzure(t)
	release := make(chan struct{})
	defer close(release)
	var mode atomic.Value
	f.aadAnswer = func(w http.ResponseWriter, r *http.Request) bool {
		switch mode.Load().(string) {
		case "huge":
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"access_token": "` + strings.Repeat("a", 2*maxAnswerBytes) + `", "expires_in": 3600}`))
		case "slow":
			select {
			case <-release:
			case <-r.Context().Done():
			}
		case "redirect":
			http.Redirect(w, r, "https://myacr.example.com:"+f.port+"/oauth2/exchange", http.StatusTemporaryRedirect)
		case "no token":
			_, _ = w.Write([]byte(`{"expires_in": 3600}`))
		}
		return true
	}
	k := f.keychain(AzureOptions{Timeout: 300 * time.Millisecond})
	for _, tc := range []struct{ mode, want string }{
		{"huge", "larger than"},
		{"slow", "deadline exceeded"},
		{"redirect", "HTTP 307"},
		{"no token", "holds no access token"},
	} {
		mode.Store(tc.mode)
		start := time.Now()
		_, err := k.refreshToken(context.Background(), f.registry())
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.mode, err, tc.want)
		}
		t.Logf("%s: %v", tc.mode, err)
		if time.Since(start) > 5*time.Second {
			t.Errorf("%s: took %s", tc.mode, time.Since(start))
		}
	}
	if f.exchangeCalls.Load() != 0 {
		t.Error("the redirect was followed to the exchange")
	}
	// A caller whose context ends stops waiting, whatever the request does.
	mode.Store("slow")
	k = f.keychain(AzureOptions{Timeout: time.Minute})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := k.refreshToken(ctx, f.registry()); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("cancelled caller: %v", err)
	}
	// The federated token file is bounded too.
	env := f.env()
	big := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(big, []byte(strings.Repeat("x", maxTokenFileBytes+1)), 0o600); err != nil {
		t.Fatal(err)
	}
	k = f.keychain(AzureOptions{Getenv: func(v string) string {
		if v == "AZURE_FEDERATED_TOKEN_FILE" {
			return big
		}
		return env(v)
	}})
	if _, err := k.refreshToken(context.Background(), f.registry()); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("oversized token file: %v", err)
	}
}

func TestAzureManagedIdentityThroughIMDS(t *testing.T) {
	f := newFakeAzure(t)
	f.wantTenant = "" // IMDS does not say; the exchange goes without
	for _, clientID := range []string{"", testClient} {
		k := f.keychain(AzureOptions{IMDSEndpoint: f.imds.URL + "/metadata/identity/oauth2/token",
			Getenv: func(v string) string {
				if v == "AZURE_CLIENT_ID" {
					return clientID
				}
				return ""
			}})
		if !strings.Contains(k.Describe(), "IMDS") {
			t.Errorf("describe: %s", k.Describe())
		}
		if _, err := k.refreshToken(context.Background(), f.registry()); err != nil {
			t.Fatalf("client %q: %v", clientID, err)
		}
	}
	if f.imdsCalls.Load() != 2 || f.exchangeCalls.Load() != 2 {
		t.Errorf("%d IMDS tokens, %d exchanges", f.imdsCalls.Load(), f.exchangeCalls.Load())
	}
	// A user-assigned identity the VM does not hold.
	k := f.keychain(AzureOptions{IMDSEndpoint: f.imds.URL + "/metadata/identity/oauth2/token",
		Getenv: func(v string) string {
			if v == "AZURE_CLIENT_ID" {
				return "not-assigned"
			}
			return ""
		}})
	if _, err := k.refreshToken(context.Background(), f.registry()); err == nil || !strings.Contains(err.Error(), "HTTP 400: invalid_request Identity not found") ||
		failure.KindOf(err) != failure.Unauthorized {
		t.Errorf("unknown identity: %v", err)
	}
}

func TestAzureWorkloadIdentityConfiguration(t *testing.T) {
	env := func(vars map[string]string) func(string) string { return func(k string) string { return vars[k] } }
	for _, tc := range []struct {
		vars map[string]string
		want string
	}{
		{map[string]string{"AZURE_FEDERATED_TOKEN_FILE": "/t", "AZURE_TENANT_ID": testTenant}, "AZURE_CLIENT_ID"},
		{map[string]string{"AZURE_FEDERATED_TOKEN_FILE": "/t", "AZURE_CLIENT_ID": testClient, "AZURE_TENANT_ID": testTenant,
			"AZURE_AUTHORITY_HOST": "http://login.example.com/"}, "https://"},
		{map[string]string{"AZURE_FEDERATED_TOKEN_FILE": "/t", "AZURE_CLIENT_ID": testClient, "AZURE_TENANT_ID": "a/../b"}, "tenant"},
	} {
		if _, err := NewAzureKeychain(AzureOptions{Getenv: env(tc.vars)}); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want %q", tc.vars, err, tc.want)
		}
	}
	k, err := NewAzureKeychain(AzureOptions{Getenv: env(map[string]string{"AZURE_FEDERATED_TOKEN_FILE": "/t",
		"AZURE_CLIENT_ID": testClient, "AZURE_TENANT_ID": testTenant})})
	if err != nil {
		t.Fatal(err)
	}
	wi := k.cred.(*workloadIdentity)
	if wi.tokenURL != "https://login.microsoftonline.com/"+testTenant+"/oauth2/v2.0/token" {
		t.Errorf("default authority: %s", wi.tokenURL)
	}
}

func TestAzureRefreshTokenCacheIsBounded(t *testing.T) {
	f := newFakeAzure(t)
	k := f.keychain(AzureOptions{MaxRegistries: 2})
	for _, host := range []string{"a", "b", "c"} {
		k.refresh.Add(host, cached("t-"+host, f.clock.Now(), time.Hour))
	}
	if k.refresh.Len() != 2 {
		t.Errorf("%d cached refresh tokens, want at most 2", k.refresh.Len())
	}
}
