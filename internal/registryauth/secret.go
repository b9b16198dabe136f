// Package registryauth says who the operator is to an image registry: the
// credentials of a tenant's pull or push Secret, read the way the kubelet
// reads imagePullSecrets, and the operator's own identity (its Docker config,
// then Azure workload or managed identity for Azure Container Registry, then
// Google Application Default Credentials for GCR and Artifact Registry).
//
// Which of the two a build gets is decided by internal/builds (a Secret
// named in the ModelDeployment, else the operator's identity only where an
// administrator granted it); this package only answers for a registry.
// Secret values and tokens go into registry requests and nowhere else:
// errors name the Secret's key or the registry, never a value.
package registryauth

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	k8schain "github.com/google/go-containerregistry/pkg/authn/kubernetes"
	corev1 "k8s.io/api/core/v1"
)

const (
	// maxDockerConfigBytes bounds a Secret's docker config: the API server
	// refuses Secrets larger than 1 MiB, this holds should one get through
	// (or the data come from elsewhere).
	maxDockerConfigBytes = 1 << 20
	// maxDockerConfigEntries bounds the registries one Secret may name.
	maxDockerConfigEntries = 1024
)

// ErrNoDockerConfig: the Secret holds neither a .dockerconfigjson nor a
// .dockercfg key.
var ErrNoDockerConfig = fmt.Errorf("no %s or %s key (want a Secret of type %s or %s)",
	corev1.DockerConfigJsonKey, corev1.DockerConfigKey, corev1.SecretTypeDockerConfigJson, corev1.SecretTypeDockercfg)

// FromSecret returns the registry credentials of an image pull Secret's
// data, matched as the kubelet matches imagePullSecrets (go-containerregistry's
// pkg/authn/kubernetes does the matching):
//
//   - .dockerconfigjson ({"auths": {...}}, type kubernetes.io/dockerconfigjson)
//     or, without it, .dockercfg (the entries alone, kubernetes.io/dockercfg).
//     The key decides the format; the Secret's type is not needed (the
//     kubelet also wants the type; an Opaque Secret with the key works here,
//     as it did before).
//   - An entry names a host ("myacr.azurecr.io", "host:5000"), a host and a
//     path ("registry.example.com/team-a": only repositories under it), or a
//     wildcard host ("*.azurecr.io": one label per *). The port must match.
//     When several match, the kubelet's order decides (keys in reverse
//     lexical order: a path beats its prefix, a host usually its wildcard).
//   - "https://", "http://" and a trailing "/v1/" or "/v2/" are ignored; host
//     names are compared without case; docker.io, index.docker.io and
//     registry-1.docker.io are one registry, Docker Hub. When several entries
//     spell one registry, the lexically first one's credentials are used, on
//     every parse.
//   - "auth" (base64 of user:password), when present, wins over "username"
//     and "password", as in the kubelet. "identitytoken" and "registrytoken"
//     are passed on.
//
// Registries no entry matches get anonymous access (authn.Anonymous), so
// that a Secret for one registry never lends another registry anything.
// Errors say what is wrong and where, never a value of the Secret.
func FromSecret(data map[string][]byte) (authn.Keychain, error) {
	entries, err := dockerConfigEntries(data)
	if err != nil {
		return nil, err
	}
	if len(entries) > maxDockerConfigEntries {
		return nil, fmt.Errorf("more than %d registries", maxDockerConfigEntries)
	}
	// One entry per registry key, the lexically first spelling winning:
	// handed to go-containerregistry in map order, which of several
	// spellings wins would change from one parse to the next.
	auths := map[string]json.RawMessage{}
	for _, name := range slices.Sorted(maps.Keys(entries)) {
		key, ok := registryKey(name)
		if again, _ := registryKey(key); !ok || again != key {
			// As the kubelet: an entry that names no registry is skipped
			// (and one whose key would read differently a second time, so
			// that go-containerregistry keys every entry as here).
			continue
		}
		if _, seen := auths[key]; seen {
			continue
		}
		cfg, err := decodeEntry(entries[name])
		if err != nil {
			return nil, fmt.Errorf("entry %q: %w", name, err)
		}
		// Re-encoded without "auth", so that a username holding a colon
		// survives the round trip through go-containerregistry's parser.
		raw, err := json.Marshal(map[string]string{"username": cfg.Username, "password": cfg.Password,
			"identitytoken": cfg.IdentityToken, "registrytoken": cfg.RegistryToken})
		if err != nil {
			return nil, errors.New("cannot encode an entry")
		}
		auths[key] = raw
	}
	doc, err := json.Marshal(map[string]any{"auths": auths})
	if err != nil {
		return nil, errors.New("cannot encode the docker config")
	}
	kc, err := k8schain.NewFromPullSecrets(context.Background(), []corev1.Secret{{
		Type: corev1.SecretTypeDockerConfigJson,
		Data: map[string][]byte{corev1.DockerConfigJsonKey: doc},
	}})
	if err != nil {
		// Its messages may quote an entry; ours have been checked above.
		return nil, errors.New("the docker config cannot be read")
	}
	return secretKeychain{kc}, nil
}

// dockerConfigEntries reads the registry entries of a Secret's data, from
// .dockerconfigjson or, without it, .dockercfg.
func dockerConfigEntries(data map[string][]byte) (map[string]json.RawMessage, error) {
	key, wrapped := corev1.DockerConfigJsonKey, true
	b, ok := data[key]
	if !ok {
		key, wrapped = corev1.DockerConfigKey, false
		if b, ok = data[key]; !ok {
			return nil, ErrNoDockerConfig
		}
	}
	if len(b) == 0 {
		return nil, fmt.Errorf("key %s is empty", key)
	}
	if len(b) > maxDockerConfigBytes {
		return nil, fmt.Errorf("key %s holds more than %d bytes", key, maxDockerConfigBytes)
	}
	var entries map[string]json.RawMessage
	if wrapped {
		var doc struct {
			Auths map[string]json.RawMessage `json:"auths"`
		}
		if err := decodeJSON(b, &doc); err != nil {
			return nil, fmt.Errorf("key %s: %w", key, err)
		}
		entries = doc.Auths
	} else if err := decodeJSON(b, &entries); err != nil {
		return nil, fmt.Errorf("key %s: %w", key, err)
	}
	return entries, nil
}

// entry is one registry's credentials as a docker config writes them.
type entry struct {
	Username      string `json:"username"`
	Password      string `json:"password"`
	Auth          string `json:"auth"`
	IdentityToken string `json:"identitytoken"`
	RegistryToken string `json:"registrytoken"`
}

func decodeEntry(raw json.RawMessage) (authn.AuthConfig, error) {
	var e entry
	if err := decodeJSON(raw, &e); err != nil {
		return authn.AuthConfig{}, err
	}
	cfg := authn.AuthConfig{Username: e.Username, Password: e.Password, IdentityToken: e.IdentityToken, RegistryToken: e.RegistryToken}
	if e.Auth == "" {
		return cfg, nil
	}
	// The kubelet's reading: padded or unpadded standard base64 of
	// user:password, and it replaces username and password.
	enc := base64.RawStdEncoding
	if strings.HasSuffix(strings.TrimSpace(e.Auth), "=") {
		enc = base64.StdEncoding
	}
	decoded, err := enc.DecodeString(e.Auth)
	if err != nil {
		return cfg, errors.New(`"auth" is not base64`)
	}
	user, pass, ok := strings.Cut(string(decoded), ":")
	if !ok {
		return cfg, errors.New(`"auth" is not base64 of user:password`)
	}
	cfg.Username, cfg.Password = user, pass
	return cfg, nil
}

// decodeJSON is json.Unmarshal with errors that hold no byte of the input
// (encoding/json quotes the character it stumbled on, and numbers it could
// not store).
func decodeJSON(b []byte, v any) error {
	err := json.Unmarshal(b, v)
	if err == nil {
		return nil
	}
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syntax):
		return fmt.Errorf("not valid JSON (at byte %d)", syntax.Offset)
	case errors.As(err, &typ):
		return fmt.Errorf("not a docker config: wrong JSON type at byte %d, want %s", typ.Offset, typ.Type)
	default:
		return errors.New("not a docker config")
	}
}

// registryKey is the registry (and path) an entry name means, as the kubelet
// keys it, with the host lower-cased and Docker Hub's spellings made one.
func registryKey(name string) (string, bool) {
	v := name
	if !strings.HasPrefix(v, "https://") && !strings.HasPrefix(v, "http://") {
		v = "https://" + v
	}
	u, err := url.Parse(v)
	if err != nil || u.Host == "" {
		return "", false
	}
	host := hubHost(strings.ToLower(u.Host))
	p := u.Path
	for strings.HasPrefix(p, "/v1/") || strings.HasPrefix(p, "/v2/") {
		p = p[3:]
	}
	if p == "" || p == "/" {
		return host, true
	}
	return host + p, true
}

// hubHost maps Docker Hub's spellings to the one go-containerregistry uses
// for references (docker.io/library/python is index.docker.io/library/python).
func hubHost(host string) string {
	switch host {
	case "docker.io", "registry-1.docker.io", "index.docker.io":
		return "index.docker.io"
	}
	return host
}

// secretKeychain is go-containerregistry's kubelet-style keyring, asked with
// the registry host lower-cased and Docker Hub spelled as the keys are.
type secretKeychain struct{ kc authn.Keychain }

func (k secretKeychain) Resolve(r authn.Resource) (authn.Authenticator, error) {
	return k.kc.Resolve(normalResource{r})
}

// normalResource spells a resource's registry as registryKey does.
type normalResource struct{ authn.Resource }

func (r normalResource) RegistryStr() string {
	return hubHost(strings.ToLower(r.Resource.RegistryStr()))
}

func (r normalResource) String() string {
	reg, s := r.Resource.RegistryStr(), r.Resource.String()
	if rest, ok := strings.CutPrefix(s, reg); ok {
		return r.RegistryStr() + rest
	}
	return s
}
