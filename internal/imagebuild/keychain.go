package imagebuild

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
)

// DockerConfigKeychain resolves credentials from the content of a
// kubernetes.io/dockerconfigjson Secret (its .dockerconfigjson key):
// {"auths": {"registry.example.com": {"username", "password"} or {"auth"}}}.
// Registries it does not name get anonymous access, so that it can lead a
// multi-keychain. When several keys name one registry, the lexically first
// one's credentials are used.
type DockerConfigKeychain struct {
	auths map[string]authn.AuthConfig
}

// NewDockerConfigKeychain parses a .dockerconfigjson document.
func NewDockerConfigKeychain(data []byte) (*DockerConfigKeychain, error) {
	var doc struct {
		Auths map[string]struct {
			Username      string `json:"username"`
			Password      string `json:"password"`
			Auth          string `json:"auth"`
			IdentityToken string `json:"identitytoken"`
			RegistryToken string `json:"registrytoken"`
		} `json:"auths"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("invalid docker config JSON: %w", err)
	}
	k := &DockerConfigKeychain{auths: map[string]authn.AuthConfig{}}
	// Several spellings may name one registry ("docker.io" and
	// "https://index.docker.io/v1/", "Registry.example.com" and
	// "registry.example.com"). Taken in map order, which of their
	// credentials wins would change from one parse to the next; taken in
	// sorted order, the lexically first spelling wins, every time.
	for _, host := range slices.Sorted(maps.Keys(doc.Auths)) {
		a := doc.Auths[host]
		key := normalizeRegistry(host)
		if _, seen := k.auths[key]; seen {
			continue
		}
		cfg := authn.AuthConfig{Username: a.Username, Password: a.Password, IdentityToken: a.IdentityToken, RegistryToken: a.RegistryToken}
		if a.Auth != "" && cfg.Username == "" {
			raw, err := base64.StdEncoding.DecodeString(a.Auth)
			if err != nil {
				return nil, fmt.Errorf("invalid auth entry for %s: not base64", host)
			}
			user, pass, ok := strings.Cut(string(raw), ":")
			if !ok {
				return nil, fmt.Errorf("invalid auth entry for %s: want user:password", host)
			}
			cfg.Username, cfg.Password = user, pass
		}
		k.auths[key] = cfg
	}
	return k, nil
}

// Resolve implements authn.Keychain.
func (k *DockerConfigKeychain) Resolve(r authn.Resource) (authn.Authenticator, error) {
	if cfg, ok := k.auths[normalizeRegistry(r.RegistryStr())]; ok {
		return authn.FromConfig(cfg), nil
	}
	return authn.Anonymous, nil
}

// normalizeRegistry maps the spellings people use in docker configs
// ("https://index.docker.io/v1/", "docker.io", "host:port/") to one key.
func normalizeRegistry(host string) string {
	h := strings.TrimPrefix(strings.TrimPrefix(host, "https://"), "http://")
	h, _, _ = strings.Cut(h, "/")
	switch h {
	case "docker.io", "registry-1.docker.io", "index.docker.io":
		return "index.docker.io"
	}
	return strings.ToLower(h)
}
