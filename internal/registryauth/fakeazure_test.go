package registryauth

// fakeAzure plays, over real HTTPS on one local listener, Azure AD's token
// endpoint (host login.example.com), IMDS (plain HTTP, its own listener),
// and an Azure Container Registry (host myacr.example.com): /oauth2/exchange,
// /oauth2/token, and go-containerregistry's in-memory registry behind a
// Bearer challenge whose realm is that token endpoint. Each role checks
// what the real one checks.

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"
	clocktesting "k8s.io/utils/clock/testing"
)

const (
	testTenant    = "11111111-2222-3333-4444-555555555555"
	testClient    = "66666666-7777-8888-9999-000000000000"
	testAssertion = "eyJhbGciOiJSUzI1NiJ9.federated-service-account-token.signature"
)

type fakeAzure struct {
	t      *testing.T
	server *httptest.Server
	imds   *httptest.Server
	clock  *clocktesting.FakePassiveClock
	port   string

	// Counters of each endpoint's successful answers.
	aadCalls, imdsCalls, exchangeCalls, tokenCalls atomic.Int32

	mu sync.Mutex
	// aadAnswer, when set, replaces Azure AD's answer (status, body).
	aadAnswer func(w http.ResponseWriter, r *http.Request) bool
	aadLife   int // seconds
	// refreshLife is the exp of the ACR refresh tokens minted.
	refreshLife time.Duration
	aadTokens   map[string]bool // issued Azure AD tokens
	refresh     map[string]bool // issued refresh tokens
	access      map[string]bool // issued registry access tokens
	wantTenant  string          // the exchange's tenant ("" for IMDS)
}

func newFakeAzure(t *testing.T) *fakeAzure {
	f := &fakeAzure{t: t, clock: clocktesting.NewFakePassiveClock(time.Unix(1_900_000_000, 0)), aadLife: 3600,
		refreshLife: 3 * time.Hour, aadTokens: map[string]bool{}, refresh: map[string]bool{}, access: map[string]bool{}, wantTenant: testTenant}
	reg := registry.New(registry.Logger(log.New(testWriter{t}, "", 0)))
	mux := http.NewServeMux()
	mux.HandleFunc("POST login.example.com/{tenant}/oauth2/v2.0/token", f.aad)
	mux.HandleFunc("POST myacr.example.com/oauth2/exchange", f.exchange)
	mux.HandleFunc("GET myacr.example.com/oauth2/token", f.token)
	mux.Handle("myacr.example.com/v2/", f.requireBearer(reg))
	f.server = httptest.NewTLSServer(mux)
	t.Cleanup(f.server.Close)
	_, f.port, _ = net.SplitHostPort(f.server.Listener.Addr().String())
	f.imds = httptest.NewServer(http.HandlerFunc(f.imdsToken))
	t.Cleanup(f.imds.Close)
	return f
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// registry is the ACR host as references name it.
func (f *fakeAzure) registry() string { return "myacr.example.com:" + f.port }

// transport trusts the server's certificate and dials every TLS host to it
// (login.example.com and myacr.example.com), plain HTTP to IMDS.
func (f *fakeAzure) transport() http.RoundTripper {
	t := f.server.Client().Transport.(*http.Transport).Clone()
	t.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		target := f.server.Listener.Addr().String()
		if addr == f.imds.Listener.Addr().String() {
			target = addr
		}
		return (&net.Dialer{}).DialContext(ctx, network, target)
	}
	return t
}

// env is the workload identity environment AKS's webhook injects.
func (f *fakeAzure) env() func(string) string {
	file := filepath.Join(f.t.TempDir(), "azure-identity-token")
	if err := os.WriteFile(file, []byte(testAssertion+"\n"), 0o600); err != nil {
		f.t.Fatal(err)
	}
	vars := map[string]string{"AZURE_CLIENT_ID": testClient, "AZURE_TENANT_ID": testTenant,
		"AZURE_FEDERATED_TOKEN_FILE": file, "AZURE_AUTHORITY_HOST": "https://login.example.com:" + f.port + "/"}
	return func(k string) string { return vars[k] }
}

// keychain is an Azure keychain against f with workload identity.
func (f *fakeAzure) keychain(o AzureOptions) *AzureKeychain {
	f.t.Helper()
	if o.Getenv == nil {
		o.Getenv = f.env()
	}
	if o.HostSuffixes == nil {
		o.HostSuffixes = []string{".example.com"}
	}
	o.Transport, o.Clock = f.transport(), f.clock
	k, err := NewAzureKeychain(o)
	if err != nil {
		f.t.Fatal(err)
	}
	return k
}

func (f *fakeAzure) fail(w http.ResponseWriter, status int, format string, args ...any) {
	f.t.Errorf(format, args...)
	http.Error(w, fmt.Sprintf(format, args...), status)
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

func (f *fakeAzure) aad(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	answer := f.aadAnswer
	f.mu.Unlock()
	if answer != nil && answer(w, r) {
		return
	}
	if err := r.ParseForm(); err != nil {
		f.fail(w, 400, "form: %v", err)
		return
	}
	for k, want := range map[string]string{"client_id": testClient, "client_assertion": testAssertion,
		"client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
		"scope":                 DefaultACRScope, "grant_type": "client_credentials"} {
		if got := r.PostForm.Get(k); got != want {
			f.fail(w, 400, "Azure AD: %s = %q, want %q", k, got, want)
			return
		}
	}
	if r.PathValue("tenant") != testTenant {
		f.fail(w, 400, "Azure AD: tenant %q", r.PathValue("tenant"))
		return
	}
	writeJSON(w, map[string]any{"token_type": "Bearer", "expires_in": f.aadLife, "access_token": f.mint(f.aadTokens, "aad", time.Duration(f.aadLife)*time.Second, &f.aadCalls)})
}

func (f *fakeAzure) imdsToken(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if r.Method != http.MethodGet || r.URL.Path != "/metadata/identity/oauth2/token" || r.Header.Get("Metadata") != "true" ||
		q.Get("api-version") == "" || q.Get("resource") != "https://containerregistry.azure.net" {
		f.fail(w, 400, "IMDS: %s %s Metadata=%q", r.Method, r.URL, r.Header.Get("Metadata"))
		return
	}
	if q.Get("client_id") != "" && q.Get("client_id") != testClient {
		w.WriteHeader(http.StatusBadRequest)
		writeJSON(w, map[string]string{"error": "invalid_request", "error_description": "Identity not found"})
		return
	}
	// IMDS writes numbers as strings.
	writeJSON(w, map[string]string{"token_type": "Bearer", "expires_in": fmt.Sprint(f.aadLife),
		"access_token": f.mint(f.aadTokens, "imds", time.Duration(f.aadLife)*time.Second, &f.imdsCalls)})
}

// mint issues a JWT-shaped token valid for life from the fake clock's now.
func (f *fakeAzure) mint(into map[string]bool, kind string, life time.Duration, counter *atomic.Int32) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := counter.Add(1)
	claims, _ := json.Marshal(map[string]any{"exp": f.clock.Now().Add(life).Unix(), "n": n, "kind": kind})
	tok := "eyJhbGciOiJub25lIn0." + base64.RawURLEncoding.EncodeToString(claims) + ".sig"
	into[tok] = true
	return tok
}

func (f *fakeAzure) issued(set map[string]bool, tok string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return set[tok]
}

func (f *fakeAzure) exchange(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		f.fail(w, 400, "form: %v", err)
		return
	}
	f.mu.Lock()
	wantTenant := f.wantTenant
	f.mu.Unlock()
	if r.PostForm.Get("grant_type") != "access_token" || r.PostForm.Get("service") != f.registry() || r.PostForm.Get("tenant") != wantTenant {
		f.fail(w, 400, "exchange: %v", r.PostForm)
		return
	}
	if !f.issued(f.aadTokens, r.PostForm.Get("access_token")) {
		w.WriteHeader(http.StatusUnauthorized)
		writeJSON(w, map[string]any{"errors": []map[string]string{{"code": "UNAUTHORIZED", "message": "invalid Azure AD token"}}})
		return
	}
	f.mu.Lock()
	life := f.refreshLife
	f.mu.Unlock()
	writeJSON(w, map[string]string{"refresh_token": f.mint(f.refresh, "refresh", life, &f.exchangeCalls)})
}

// token is ACR's token endpoint as go-containerregistry uses it with a
// username and password: GET with Basic auth.
func (f *fakeAzure) token(w http.ResponseWriter, r *http.Request) {
	user, pass, ok := r.BasicAuth()
	if !ok || user != ACRUsername || !f.issued(f.refresh, pass) || r.URL.Query().Get("service") != f.registry() {
		w.WriteHeader(http.StatusUnauthorized)
		writeJSON(w, map[string]any{"errors": []map[string]string{{"code": "UNAUTHORIZED", "message": "authentication required"}}})
		return
	}
	writeJSON(w, map[string]string{"access_token": f.mint(f.access, "access", 5*time.Minute, &f.tokenCalls)})
}

// requireBearer lets through requests bearing a token of ours, and
// challenges the others to get one at the token endpoint.
func (f *fakeAzure) requireBearer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || !f.issued(f.access, tok) {
			w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm="https://%s/oauth2/token",service="%s"`, f.registry(), f.registry()))
			w.WriteHeader(http.StatusUnauthorized)
			writeJSON(w, map[string]any{"errors": []map[string]string{{"code": "UNAUTHORIZED", "message": "authentication required"}}})
			return
		}
		next.ServeHTTP(w, r)
	})
}
