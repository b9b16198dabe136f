package registryauth

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	corev1 "k8s.io/api/core/v1"
)

func dockerConfigJSON(doc string) map[string][]byte {
	return map[string][]byte{corev1.DockerConfigJsonKey: []byte(doc)}
}

// creds resolves ref with k: "" for anonymous, else user/password.
func creds(t *testing.T, k authn.Keychain, ref string) string {
	t.Helper()
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	a, err := k.Resolve(r.Context())
	if err != nil {
		t.Fatal(err)
	}
	if a == authn.Anonymous {
		return ""
	}
	cfg, err := a.Authorization()
	if err != nil {
		t.Fatal(err)
	}
	return cfg.Username + "/" + cfg.Password
}

func TestSecretKeychain(t *testing.T) {
	k, err := FromSecret(dockerConfigJSON(`{"auths": {
		"myregistry.azurecr.io": {"username": "00000000-0000-0000-0000-000000000000", "password": "acr-token"},
		"https://index.docker.io/v1/": {"auth": "ZG9ja2VyOmh1Yg=="},
		"127.0.0.1:5000": {"auth": "dXNlcjpwYXNz"}
	}}`))
	if err != nil {
		t.Fatal(err)
	}
	for ref, want := range map[string]string{
		"myregistry.azurecr.io/models/iris": "00000000-0000-0000-0000-000000000000/acr-token",
		"docker.io/library/python":          "docker/hub",
		"python:3.12":                       "docker/hub",
		"127.0.0.1:5000/models/iris":        "user/pass", // unpadded base64, as the kubelet reads it
		"127.0.0.1:5001/models/iris":        "",          // the port must match
		"ghcr.io/other/repo":                "",
		"other.azurecr.io/models/iris":      "",
	} {
		if got := creds(t, k, ref); got != want {
			t.Errorf("%s: %q, want %q", ref, got, want)
		}
	}
}

func TestSecretKeychainRefusesBrokenConfigsWithoutQuotingThem(t *testing.T) {
	for doc, want := range map[string]string{
		`not json`: "not valid JSON",
		`{"auths": {"x": {"auth": "!!hunter2!!"}}}`:               `entry "x": "auth" is not base64`,
		`{"auths": {"x": {"auth": "bm9jb2xvbg=="}}}`:              "not base64 of user:password",
		`{"auths": {"x": {"password": hunter2}}}`:                 "not valid JSON (at byte",
		`{"auths": {"x": {"password": 12345678}}}`:                "wrong JSON type",
		`{"auths": {"x": {"username": "u", "password": "hunter2"`: "not valid JSON",
		`{"auths": ["hunter2"]}`:                                  "wrong JSON type",
	} {
		_, err := FromSecret(dockerConfigJSON(doc))
		if err == nil {
			t.Errorf("%s accepted", doc)
			continue
		}
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %q, want %q", doc, err, want)
		}
		for _, secret := range []string{"hunter2", "12345678", "bm9jb2xvbg", "nocolon"} {
			if strings.Contains(err.Error(), secret) {
				t.Errorf("%s: the error quotes the Secret: %q", doc, err)
			}
		}
	}
	if _, err := FromSecret(map[string][]byte{"config.json": []byte(`{}`)}); !errors.Is(err, ErrNoDockerConfig) {
		t.Errorf("no docker config key: %v", err)
	}
	if _, err := FromSecret(dockerConfigJSON("")); err == nil || !strings.Contains(err.Error(), "empty") {
		t.Errorf("empty key: %v", err)
	}
	big := `{"auths": {"x": {"password": "` + strings.Repeat("a", maxDockerConfigBytes) + `"}}}`
	if _, err := FromSecret(dockerConfigJSON(big)); err == nil || !strings.Contains(err.Error(), "more than") {
		t.Errorf("oversized config: %v", err)
	}
	var many strings.Builder
	many.WriteString(`{"auths": {`)
	for i := range maxDockerConfigEntries + 1 {
		if i > 0 {
			many.WriteString(",")
		}
		fmt.Fprintf(&many, `"r%d.example.com": {}`, i)
	}
	many.WriteString(`}}`)
	if _, err := FromSecret(dockerConfigJSON(many.String())); err == nil || !strings.Contains(err.Error(), "more than") {
		t.Errorf("too many registries: %v", err)
	}
}

func TestSecretKeychainSpellingsOfOneRegistry(t *testing.T) {
	// Two spellings of Docker Hub and two of one host, with different
	// credentials: the same (lexically first) wins on every parse, not
	// whichever map order came first.
	doc := dockerConfigJSON(`{"auths": {
		"https://index.docker.io/v1/": {"username": "second", "password": "b"},
		"docker.io": {"username": "first", "password": "a"},
		"registry.example.com": {"username": "lower", "password": "c"},
		"Registry.Example.com": {"username": "upper", "password": "d"},
		"https://reg.example.com/v2/": {"username": "v2", "password": "e"}
	}}`)
	want := map[string]string{"docker.io/library/python": "first/a", "registry.example.com/m/iris": "upper/d",
		"Registry.Example.com/m/iris": "upper/d", "reg.example.com/m/iris": "v2/e"}
	for range 50 {
		k, err := FromSecret(doc)
		if err != nil {
			t.Fatal(err)
		}
		for ref, w := range want {
			if got := creds(t, k, ref); got != w {
				t.Fatalf("%s: %q, want %q (the lexically first spelling)", ref, got, w)
			}
		}
	}
}

// The kubelet's matching, which the old parser did not have: wildcard
// hosts, repository paths (the most specific entry wins), and "auth" over
// username and password.
func TestSecretKeychainMatchesLikeTheKubelet(t *testing.T) {
	auth := func(u, p string) string { return base64.StdEncoding.EncodeToString([]byte(u + ":" + p)) }
	k, err := FromSecret(dockerConfigJSON(`{"auths": {
		"*.azurecr.io": {"username": "wild", "password": "w"},
		"registry.example.com": {"username": "host", "password": "h"},
		"registry.example.com/team-a": {"username": "team", "password": "t"},
		"registry.example.com/team-a/special": {"username": "special", "password": "s"},
		"both.example.com": {"username": "ignored", "password": "x", "auth": "` + auth("from-auth", "p:w") + `"}
	}}`))
	if err != nil {
		t.Fatal(err)
	}
	for ref, want := range map[string]string{
		"myacr.azurecr.io/models/iris":               "wild/w",
		"a.b.azurecr.io/models/iris":                 "", // one label per *
		"azurecr.io/models/iris":                     "",
		"registry.example.com/team-b/iris":           "host/h",
		"registry.example.com/team-a/iris":           "team/t",
		"registry.example.com/team-a/special/iris":   "special/s",
		"both.example.com/m/iris":                    "from-auth/p:w",
		"registry.example.com.evil.example/team-a/x": "",
	} {
		if got := creds(t, k, ref); got != want {
			t.Errorf("%s: %q, want %q", ref, got, want)
		}
	}
}

func TestSecretKeychainReadsDockercfg(t *testing.T) {
	// kubernetes.io/dockercfg: the entries without "auths"; taken when
	// there is no .dockerconfigjson.
	k, err := FromSecret(map[string][]byte{corev1.DockerConfigKey: []byte(`{"reg.example.com": {"username": "old", "password": "cfg"}}`)})
	if err != nil {
		t.Fatal(err)
	}
	if got := creds(t, k, "reg.example.com/m/iris"); got != "old/cfg" {
		t.Errorf("dockercfg: %q", got)
	}
	k, err = FromSecret(map[string][]byte{
		corev1.DockerConfigKey:     []byte(`{"reg.example.com": {"username": "old", "password": "cfg"}}`),
		corev1.DockerConfigJsonKey: []byte(`{"auths": {"reg.example.com": {"username": "new", "password": "json"}}}`),
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := creds(t, k, "reg.example.com/m/iris"); got != "new/json" {
		t.Errorf("both keys: %q, want .dockerconfigjson's", got)
	}
}

func TestSecretKeychainKeepsAColonInTheUsername(t *testing.T) {
	k, err := FromSecret(dockerConfigJSON(`{"auths": {"reg.example.com": {"username": "a:b", "password": "c:d", "identitytoken": "idt"}}}`))
	if err != nil {
		t.Fatal(err)
	}
	r, _ := name.ParseReference("reg.example.com/m/iris")
	a, _ := k.Resolve(r.Context())
	cfg, err := a.Authorization()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Username != "a:b" || cfg.Password != "c:d" || cfg.IdentityToken != "idt" {
		t.Errorf("%+v", *cfg)
	}
}
