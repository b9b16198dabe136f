package builds

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/mlflow-operator/mlflow-operator/internal/failure"
	"github.com/mlflow-operator/mlflow-operator/internal/registryauth"
)

// The operator's Azure identity reaches a build only where the
// administrator's grant says so: never for a namespace or repository not
// granted, never behind a Secret the spec names (even one that does not
// list the registry). Secrets are read from the ModelDeployment's namespace
// only.
func TestOperatorAzureIdentityOnlyWhereGranted(t *testing.T) {
	var imds atomic.Int32
	server := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		imds.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"access_token": "aad", "expires_in": "3600"}`))
	}))
	defer server.Close()
	az, err := registryauth.NewAzureKeychain(registryauth.AzureOptions{
		Getenv: func(string) string { return "" }, IMDSEndpoint: server.URL,
		// Nothing leaves the test: the exchange has nowhere to go.
		Transport: &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			if addr != server.Listener.Addr().String() {
				return nil, errors.New("no network in this test")
			}
			return (&net.Dialer{}).DialContext(ctx, network, addr)
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	secret := func(ns, name, registry string) *corev1.Secret {
		return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Type: corev1.SecretTypeDockerConfigJson,
			Data: map[string][]byte{corev1.DockerConfigJsonKey: []byte(`{"auths": {"` + registry + `": {"username": "tenant", "password": "p"}}}`)}}
	}
	reader := fake.NewClientBuilder().WithObjects(
		secret("team-a", "other-registry", "other.example.com"),
		secret("team-a", "acr-push", "myacr.azurecr.io"),
		secret("team-b", "team-b-only", "myacr.azurecr.io"),
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "opaque"}, Data: map[string][]byte{"token": []byte("x")}},
	).Build()
	p := &Pool{Reader: reader, Keychain: authn.NewMultiKeychain(authn.NewMultiKeychain(), az),
		OwnCredentials: func(ns, repo string) bool {
			return ns == "team-a" && strings.HasPrefix(repo, "myacr.azurecr.io/team-a/")
		}}

	resolve := func(ns, secretName, repo string) (string, error) {
		t.Helper()
		var ref *corev1.LocalObjectReference
		if secretName != "" {
			ref = &corev1.LocalObjectReference{Name: secretName}
		}
		kc, err := p.keychain(context.Background(), ns, ref, repo)
		if err != nil {
			return "", err
		}
		r, err := name.NewRepository(repo)
		if err != nil {
			t.Fatal(err)
		}
		a, err := kc.Resolve(r)
		if err != nil {
			t.Fatal(err)
		}
		if a == authn.Anonymous {
			return "anonymous", nil
		}
		cfg, err := a.Authorization()
		switch {
		case err == nil && cfg.Username == "tenant":
			return "secret", nil
		case err == nil && cfg.Username == registryauth.ACRUsername, err != nil && strings.Contains(err.Error(), "ACR token exchange"):
			return "operator", nil
		}
		return "", err
	}
	for _, tc := range []struct{ ns, secret, repo, want string }{
		{"team-a", "", "myacr.azurecr.io/team-a/iris", "operator"},
		{"team-a", "", "myacr.azurecr.io/team-b/iris", "anonymous"}, // repository not granted
		{"team-b", "", "myacr.azurecr.io/team-a/iris", "anonymous"}, // namespace not granted
		{"team-a", "other-registry", "myacr.azurecr.io/team-a/iris", "anonymous"},
		{"team-a", "acr-push", "myacr.azurecr.io/team-a/iris", "secret"},
		{"team-a", "acr-push", "myacr.azurecr.io/team-b/iris", "secret"},
	} {
		before := imds.Load()
		got, err := resolve(tc.ns, tc.secret, tc.repo)
		if err != nil || got != tc.want {
			t.Errorf("%s, secret %q, %s: %s, %v; want %s", tc.ns, tc.secret, tc.repo, got, err, tc.want)
		}
		if tc.want != "operator" && imds.Load() != before {
			t.Errorf("%s, secret %q, %s: the operator's Azure identity was asked for a token", tc.ns, tc.secret, tc.repo)
		}
	}
	if imds.Load() == 0 {
		t.Error("the granted build never reached the operator's Azure identity")
	}
	// Another namespace's Secret does not exist for team-a.
	if _, err := resolve("team-a", "team-b-only", "myacr.azurecr.io/team-a/iris"); !failure.IsNotFound(err) || failure.SubjectOf(err) != failure.Secret {
		t.Errorf("another namespace's Secret: %v", err)
	}
	_, err = resolve("team-a", "opaque", "myacr.azurecr.io/team-a/iris")
	if !failure.IsNotFound(err) || !strings.Contains(err.Error(), `secret "opaque" has no .dockerconfigjson or .dockercfg key`) {
		t.Errorf("a Secret without a docker config: %v", err)
	}
}
