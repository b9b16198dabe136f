package imagebuild

import (
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
)

func TestDockerConfigKeychain(t *testing.T) {
	doc := []byte(`{"auths": {
		"myregistry.azurecr.io": {"username": "00000000-0000-0000-0000-000000000000", "password": "acr-token"},
		"https://index.docker.io/v1/": {"auth": "ZG9ja2VyOmh1Yg=="},
		"127.0.0.1:5000": {"auth": "dXNlcjpwYXNz"}
	}}`)
	k, err := NewDockerConfigKeychain(doc)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		ref, user, pass string
	}{
		{"myregistry.azurecr.io/models/iris", "00000000-0000-0000-0000-000000000000", "acr-token"},
		{"docker.io/library/python", "docker", "hub"},
		{"127.0.0.1:5000/models/iris", "user", "pass"},
		{"ghcr.io/other/repo", "", ""},
	}
	for _, tc := range tests {
		ref, err := name.ParseReference(tc.ref, name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		a, err := k.Resolve(ref.Context())
		if err != nil {
			t.Fatal(err)
		}
		if tc.user == "" {
			if a != authn.Anonymous {
				t.Errorf("%s: %v, want anonymous", tc.ref, a)
			}
			continue
		}
		cfg, err := a.Authorization()
		if err != nil {
			t.Fatal(err)
		}
		if cfg.Username != tc.user || cfg.Password != tc.pass {
			t.Errorf("%s: %s/%s, want %s/%s", tc.ref, cfg.Username, cfg.Password, tc.user, tc.pass)
		}
	}
	for _, bad := range []string{`not json`, `{"auths": {"x": {"auth": "!!"}}}`, `{"auths": {"x": {"auth": "bm9jb2xvbg=="}}}`} {
		if _, err := NewDockerConfigKeychain([]byte(bad)); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}

func TestDockerConfigKeychainSpellingsOfOneRegistry(t *testing.T) {
	// Two spellings of Docker Hub and two of one host, with different
	// credentials: the same (lexically first) wins on every parse, not
	// whichever map order came first.
	doc := []byte(`{"auths": {
		"https://index.docker.io/v1/": {"username": "second", "password": "b"},
		"docker.io": {"username": "first", "password": "a"},
		"registry.example.com": {"username": "lower", "password": "c"},
		"Registry.Example.com": {"username": "upper", "password": "d"}
	}}`)
	want := map[string]string{"docker.io/library/python": "first", "registry.example.com/m/iris": "upper"}
	for range 50 {
		k, err := NewDockerConfigKeychain(doc)
		if err != nil {
			t.Fatal(err)
		}
		for ref, user := range want {
			r, err := name.ParseReference(ref)
			if err != nil {
				t.Fatal(err)
			}
			a, err := k.Resolve(r.Context())
			if err != nil {
				t.Fatal(err)
			}
			cfg, err := a.Authorization()
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Username != user {
				t.Fatalf("%s: user %q, want %q (the lexically first spelling)", ref, cfg.Username, user)
			}
		}
	}
}
