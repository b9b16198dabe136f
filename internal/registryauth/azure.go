package registryauth

// Azure Container Registry with the operator's Azure identity: an Azure AD
// access token for ACR's scope, exchanged at the registry's
// /oauth2/exchange for an ACR refresh token, which is the password (user
// 00000000-0000-0000-0000-000000000000) go-containerregistry then takes to
// the registry's /oauth2/token, as `az acr login` does for Docker.

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"github.com/google/go-containerregistry/pkg/authn"
	"golang.org/x/sync/singleflight"
	"k8s.io/utils/clock"
	"k8s.io/utils/lru"

	"github.com/mlflow-operator/mlflow-operator/internal/failure"
)

// DefaultACRHostSuffixes are the registry hosts of Azure Container Registry
// in the public cloud, Azure China and Azure US Government.
var DefaultACRHostSuffixes = []string{".azurecr.io", ".azurecr.cn", ".azurecr.us"}

const (
	// DefaultACRScope is the Azure AD scope of ACR's token exchange.
	DefaultACRScope = "https://containerregistry.azure.net/.default"
	// ACRUsername goes with an ACR refresh token as the password.
	ACRUsername = "00000000-0000-0000-0000-000000000000"
	// defaultAuthorityHost is Azure AD of the public cloud; AKS's webhook
	// sets AZURE_AUTHORITY_HOST for the others.
	defaultAuthorityHost = "https://login.microsoftonline.com/"
	// maxRefreshTokenLife bounds how long an ACR refresh token is reused
	// (they live 3 hours): a revoked one is not held on to for long.
	maxRefreshTokenLife = time.Hour
	// defaultMaxRegistries bounds the cache of ACR refresh tokens.
	defaultMaxRegistries = 64
)

// AzureOptions configure the Azure keychain. The zero value reads the
// environment AKS's workload identity webhook sets (AZURE_CLIENT_ID,
// AZURE_TENANT_ID, AZURE_FEDERATED_TOKEN_FILE, AZURE_AUTHORITY_HOST); without
// AZURE_FEDERATED_TOKEN_FILE it uses a managed identity through IMDS
// (user-assigned when AZURE_CLIENT_ID is set).
type AzureOptions struct {
	// HostSuffixes are the registry hosts that get Azure credentials: one
	// starting with a dot matches the hosts below it (".azurecr.io":
	// "myacr.azurecr.io"), one without also that host itself
	// ("myacr.azurecr.io"); DefaultACRHostSuffixes when empty. The Azure AD
	// token is sent to these hosts: list only Azure Container Registry's.
	HostSuffixes []string
	// Scope of the Azure AD token; DefaultACRScope when empty.
	Scope string
	// Getenv reads the environment; os.Getenv when nil.
	Getenv func(string) string
	// Transport carries every request (tests); when nil, a copy of
	// http.DefaultTransport (with the environment's proxy) for Azure AD and
	// registries, and one without a proxy for IMDS.
	Transport http.RoundTripper
	// IMDSEndpoint; DefaultIMDSEndpoint when empty.
	IMDSEndpoint string
	// Timeout bounds each HTTP request; 30 s when zero.
	Timeout time.Duration
	// MaxRegistries bounds the refresh tokens cached; 64 when zero.
	MaxRegistries int
	// Clock; the real one when nil.
	Clock clock.PassiveClock
	Log   logr.Logger
}

// AzureKeychain answers for registries whose host ends in one of its
// suffixes with ACR credentials from the operator's Azure identity, and
// anonymous for every other registry (so it can follow others in a
// multi-keychain). Tokens are fetched when a request needs them, shared by
// concurrent builds, and reused until shortly before they expire.
type AzureKeychain struct {
	suffixes []string
	scope    string
	cred     credential
	http     *httpClient
	clock    clock.PassiveClock
	log      logr.Logger

	group   singleflight.Group
	mu      sync.Mutex
	aad     cachedToken // guarded by mu
	refresh *lru.Cache  // registry host -> cachedToken
}

// cachedToken is a token, when it expires and when to stop using it.
type cachedToken struct {
	value              string
	expires, refreshAt time.Time
}

// cached is a token valid for lifetime from now, used until a little
// before it expires (5 minutes, or half its life when that is shorter).
func cached(value string, now time.Time, lifetime time.Duration) cachedToken {
	return cachedToken{value: value, expires: now.Add(lifetime), refreshAt: now.Add(lifetime - min(5*time.Minute, lifetime/2))}
}

func (t cachedToken) fresh(now time.Time) bool { return t.value != "" && now.Before(t.refreshAt) }

// NewAzureKeychain reads the environment and returns the keychain; it makes
// no request.
func NewAzureKeychain(o AzureOptions) (*AzureKeychain, error) {
	getenv := o.Getenv
	if getenv == nil {
		getenv = osGetenv
	}
	timeout := o.Timeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	k := &AzureKeychain{scope: o.Scope, clock: o.Clock, log: o.Log}
	if k.scope == "" {
		k.scope = DefaultACRScope
	}
	if k.clock == nil {
		k.clock = clock.RealClock{}
	}
	suffixes := o.HostSuffixes
	if len(suffixes) == 0 {
		suffixes = DefaultACRHostSuffixes
	}
	for _, s := range suffixes {
		s = strings.ToLower(strings.TrimSpace(s))
		if s == "" {
			continue
		}
		if strings.Trim(s, ".") == "" {
			return nil, fmt.Errorf("ACR host suffix %q names every host", s)
		}
		k.suffixes = append(k.suffixes, s)
	}
	size := o.MaxRegistries
	if size <= 0 {
		size = defaultMaxRegistries
	}
	k.refresh = lru.New(size)

	rt, imdsRT := o.Transport, o.Transport
	if rt == nil {
		rt, imdsRT = defaultTransport(true), defaultTransport(false)
	}
	k.http = newHTTPClient(rt, timeout)
	clientID, tenantID := getenv("AZURE_CLIENT_ID"), getenv("AZURE_TENANT_ID")
	if file := getenv("AZURE_FEDERATED_TOKEN_FILE"); file != "" {
		if clientID == "" || tenantID == "" {
			return nil, fmt.Errorf("AZURE_FEDERATED_TOKEN_FILE is set but AZURE_CLIENT_ID or AZURE_TENANT_ID is not (does the ServiceAccount carry the annotation azure.workload.identity/client-id?)")
		}
		authority := getenv("AZURE_AUTHORITY_HOST")
		if authority == "" {
			authority = defaultAuthorityHost
		}
		wi, err := newWorkloadIdentity(k.http, authority, tenantID, clientID, file)
		if err != nil {
			return nil, err
		}
		k.cred = wi
	} else {
		endpoint := o.IMDSEndpoint
		if endpoint == "" {
			endpoint = DefaultIMDSEndpoint
		}
		k.cred = &managedIdentity{http: newHTTPClient(imdsRT, timeout), endpoint: endpoint, clientID: clientID}
	}
	return k, nil
}

// Describe says which Azure identity the keychain uses and for which hosts.
func (k *AzureKeychain) Describe() string {
	return fmt.Sprintf("%s for registries %s", k.cred.describe(), strings.Join(k.suffixes, ", "))
}

// IsACR tells whether registry (host[:port]) gets Azure credentials.
func (k *AzureKeychain) IsACR(registry string) bool {
	host := strings.ToLower(registry)
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	for _, s := range k.suffixes {
		if strings.HasPrefix(s, ".") && strings.HasSuffix(host, s) && len(host) > len(s) ||
			!strings.HasPrefix(s, ".") && (host == s || strings.HasSuffix(host, "."+s)) {
			return true
		}
	}
	return false
}

// Resolve implements authn.Keychain; it makes no request (the token is
// fetched when the registry asks for credentials).
func (k *AzureKeychain) Resolve(r authn.Resource) (authn.Authenticator, error) {
	if !k.IsACR(r.RegistryStr()) {
		return authn.Anonymous, nil
	}
	return &acrAuthenticator{k: k, registry: strings.ToLower(r.RegistryStr())}, nil
}

// acrAuthenticator gives one registry's ACR refresh token.
type acrAuthenticator struct {
	k        *AzureKeychain
	registry string
}

func (a *acrAuthenticator) Authorization() (*authn.AuthConfig, error) {
	return a.AuthorizationContext(context.Background())
}

func (a *acrAuthenticator) AuthorizationContext(ctx context.Context) (*authn.AuthConfig, error) {
	tok, err := a.k.refreshToken(ctx, a.registry)
	if err != nil {
		return nil, err
	}
	return &authn.AuthConfig{Username: ACRUsername, Password: tok}, nil
}

// refreshToken is registry's ACR refresh token, from the cache or
// exchanged for a (cached) Azure AD token.
func (k *AzureKeychain) refreshToken(ctx context.Context, registry string) (string, error) {
	if v, ok := k.refresh.Get(registry); ok && v.(cachedToken).fresh(k.clock.Now()) {
		return v.(cachedToken).value, nil
	}
	t, err := k.shared(ctx, "acr\x00"+registry, func(ctx context.Context) (cachedToken, error) {
		if v, ok := k.refresh.Get(registry); ok && v.(cachedToken).fresh(k.clock.Now()) {
			return v.(cachedToken), nil
		}
		aad, err := k.aadToken(ctx)
		if err != nil {
			return cachedToken{}, err
		}
		start := k.clock.Now()
		tok, err := k.exchange(ctx, registry, aad.value)
		if err != nil {
			return cachedToken{}, err
		}
		// Until its own expiry when it says (a JWT's exp), else the Azure AD
		// token's, and at most maxRefreshTokenLife.
		expires := aad.expires
		if exp, ok := jwtExpiry(tok); ok {
			expires = exp
		}
		life := min(expires.Sub(start), maxRefreshTokenLife)
		if life <= 0 {
			return cachedToken{}, failure.Errorf(failure.Unauthorized, failure.Registry, "ACR token exchange at %s: the refresh token has expired", registry)
		}
		c := cached(tok, start, life)
		k.refresh.Add(registry, c)
		k.log.V(1).Info("ACR refresh token obtained", "registry", registry, "reusedFor", life.String())
		return c, nil
	})
	return t.value, err
}

// aadToken is the Azure AD access token for the ACR scope, from the cache
// or the identity.
func (k *AzureKeychain) aadToken(ctx context.Context) (cachedToken, error) {
	return k.shared(ctx, "aad", func(ctx context.Context) (cachedToken, error) {
		k.mu.Lock()
		t := k.aad
		k.mu.Unlock()
		if t.fresh(k.clock.Now()) {
			return t, nil
		}
		start := k.clock.Now()
		v, life, err := k.cred.token(ctx, k.scope)
		if err != nil {
			return cachedToken{}, err
		}
		t = cached(v, start, life)
		k.mu.Lock()
		k.aad = t
		k.mu.Unlock()
		k.log.V(1).Info("Azure AD token obtained", "identity", k.cred.describe(), "validFor", life.String())
		return t, nil
	})
}

// exchange trades an Azure AD token for registry's ACR refresh token.
func (k *AzureKeychain) exchange(ctx context.Context, registry, aad string) (string, error) {
	form := url.Values{"grant_type": {"access_token"}, "service": {registry}, "access_token": {aad}}
	if t := k.cred.tenant(); t != "" {
		form.Set("tenant", t)
	}
	// Always HTTPS: the Azure AD token goes in the body.
	req, err := http.NewRequest(http.MethodPost, "https://"+registry+"/oauth2/exchange", strings.NewReader(form.Encode()))
	if err != nil {
		return "", failure.New(failure.Invalid, failure.Registry, "ACR token exchange", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	what := "ACR token exchange at " + registry
	a, err := k.http.do(ctx, req, what, aad)
	if err != nil {
		return "", err
	}
	if a.status != http.StatusOK {
		if a.status == http.StatusUnauthorized {
			// The registry refused the Azure AD token: get a new one next
			// time rather than offering it again until it expires.
			k.mu.Lock()
			k.aad = cachedToken{}
			k.mu.Unlock()
		}
		return "", refusal(what, a, aad)
	}
	var out struct {
		RefreshToken string `json:"refresh_token"`
	}
	if err := json.Unmarshal(a.body, &out); err != nil || out.RefreshToken == "" {
		return "", failure.Errorf(failure.Other, failure.Registry, "%s: the answer holds no refresh token", what)
	}
	return out.RefreshToken, nil
}

// shared runs fn once for concurrent callers of one key. fn runs without
// the first caller's cancellation (its requests have their own deadlines),
// so that one build giving up does not fail the others; a caller whose
// context ends stops waiting.
func (k *AzureKeychain) shared(ctx context.Context, key string, fn func(context.Context) (cachedToken, error)) (cachedToken, error) {
	ch := k.group.DoChan(key, func() (any, error) {
		return fn(context.WithoutCancel(ctx))
	})
	select {
	case r := <-ch:
		if r.Err != nil {
			return cachedToken{}, r.Err
		}
		return r.Val.(cachedToken), nil
	case <-ctx.Done():
		return cachedToken{}, failure.New(failure.Unreachable, failure.Registry, "waiting for an Azure token", ctx.Err())
	}
}

// jwtExpiry reads the exp claim of a JWT without verifying it: only to know
// when to stop reusing it.
func jwtExpiry(tok string) (time.Time, bool) {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 || len(parts[1]) > maxAnswerBytes {
		return time.Time{}, false
	}
	payload, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return time.Time{}, false
	}
	var claims struct {
		Exp int64 `json:"exp"`
	}
	if json.Unmarshal(payload, &claims) != nil || claims.Exp <= 0 {
		return time.Time{}, false
	}
	return time.Unix(claims.Exp, 0), true
}
