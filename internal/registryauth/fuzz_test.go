package registryauth

// A fuzz target for what reads untrusted input here: a tenant's Secret.
// Run it with
//
//	go test -run '^$' -fuzz '^FuzzSecretKeychain$' -fuzztime 60s ./internal/registryauth/
//
// The seeds (f.Add and testdata/fuzz/) run with the unit tests.

import (
	"encoding/base64"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
)

// registryResource is an authn.Resource naming a registry as written.
type registryResource string

func (r registryResource) String() string      { return string(r) }
func (r registryResource) RegistryStr() string { return string(r) }

func FuzzSecretKeychain(f *testing.F) {
	f.Add([]byte(`{"auths": {"myregistry.azurecr.io": {"username": "u", "password": "p"}}}`), "myregistry.azurecr.io")
	f.Add([]byte(`{"auths": {"https://index.docker.io/v1/": {"auth": "ZG9ja2VyOmh1Yg=="}}}`), "index.docker.io")
	f.Add([]byte(`{"auths": {"docker.io": {"username": "a"}, "https://index.docker.io/v1/": {"username": "b"}}}`), "registry-1.docker.io")
	f.Add([]byte(`{"auths": {"127.0.0.1:5000": {"auth": "dXNlcjpwYXNz", "identitytoken": "t"}}}`), "127.0.0.1:5000")
	f.Add([]byte(`{"auths": {"Reg.Example.com/path": {"registrytoken": "r"}}}`), "reg.example.com")
	f.Add([]byte(`{"auths": {"*.example.com": {"username": "w"}, "r?.example.com": {"username": "q"}, "r1.example.com": {"username": "e"}}}`), "r1.example.com")
	f.Add([]byte(`{"auths": {"x": {"auth": "!!"}}}`), "x")
	f.Add([]byte(`{"auths": null}`), "")
	f.Fuzz(func(t *testing.T, doc []byte, registry string) {
		k, err := FromSecret(map[string][]byte{".dockerconfigjson": doc})
		if err != nil {
			return
		}
		// What the input names, read independently: each key's
		// credentials as written, and with "auth" decoded.
		var raw struct {
			Auths map[string]struct {
				Username, Password, Auth, IdentityToken, RegistryToken string
			}
		}
		if err := json.Unmarshal(doc, &raw); err != nil {
			t.Fatalf("the keychain accepted a document encoding/json refuses: %v", err)
		}
		var named []authn.AuthConfig
		for _, a := range raw.Auths {
			named = append(named, authn.AuthConfig{Username: a.Username, Password: a.Password, IdentityToken: a.IdentityToken, RegistryToken: a.RegistryToken})
			for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding} {
				if b, err := enc.DecodeString(a.Auth); err == nil {
					if u, p, ok := strings.Cut(string(b), ":"); ok {
						named = append(named, authn.AuthConfig{Username: u, Password: p, IdentityToken: a.IdentityToken, RegistryToken: a.RegistryToken})
					}
				}
			}
		}
		resolve := func(k authn.Keychain) *authn.AuthConfig {
			a, err := k.Resolve(registryResource(registry))
			if err != nil {
				t.Fatalf("Resolve: %v", err)
			}
			if a == authn.Anonymous {
				return nil
			}
			cfg, err := a.Authorization()
			if err != nil {
				t.Fatal(err)
			}
			return cfg
		}
		got := resolve(k)
		// A key spelling exactly this registry (no path, no wildcard)
		// always lends it credentials (a wildcard entry may outrank it,
		// as in the kubelet).
		want, ok := registryKey(registry)
		exact := false
		for key := range raw.Auths {
			if kk, kok := registryKey(key); ok && kok && kk == want && !strings.Contains(want, "/") {
				if again, _ := registryKey(kk); again == kk {
					exact = true
				}
			}
		}
		if exact && got == nil {
			t.Fatalf("registry %q is spelled by a key of the document, yet anonymous", registry)
		}
		// Credentials are always those of some entry of the document.
		if got != nil && !slices.Contains(named, *got) {
			t.Fatalf("registry %q got %+v, which no entry holds", registry, *got)
		}
		// Every parse answers the same.
		k2, err := FromSecret(map[string][]byte{".dockerconfigjson": doc})
		if err != nil {
			t.Fatal(err)
		}
		again := resolve(k2)
		if (again == nil) != (got == nil) || (got != nil && *again != *got) {
			t.Fatalf("second parse answered %+v, first %+v", again, got)
		}
	})
}
