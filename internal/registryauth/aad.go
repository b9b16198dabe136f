package registryauth

// Azure AD access tokens for the operator's own identity, by the two
// documented HTTP exchanges:
//
//   - workload identity (what AKS's webhook sets up): the federated token
//     file's content is the client assertion of an OAuth 2.0 client
//     credentials grant, POST <authority>/<tenant>/oauth2/v2.0/token;
//   - managed identity: GET the Instance Metadata Service's token endpoint,
//     with the header Metadata: true.
//
// Written here rather than taken from github.com/Azure/azure-sdk-for-go/sdk/azidentity:
// azidentity (which allows a custom authority host and transport) would
// bring azcore, MSAL for Go, golang-jwt and several more modules for two
// requests, adds discovery requests of its own, and does not bound the size
// of the answers it reads; the ACR exchange that follows is ours either way.
// The price: following those two protocols is our job (they are stable and
// documented, and the tests below play both sides).

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/mlflow-operator/mlflow-operator/internal/failure"
	"github.com/mlflow-operator/mlflow-operator/internal/text"
)

const (
	// maxAnswerBytes bounds every answer read from Azure AD, IMDS or a
	// registry's token endpoints (tokens are a few KiB).
	maxAnswerBytes = 64 << 10
	// maxTokenFileBytes bounds the federated token file (a JWT).
	maxTokenFileBytes = 64 << 10
	// maxDetailBytes bounds the part of an error answer quoted in an error.
	maxDetailBytes = 400
)

// credential gets Azure AD access tokens.
type credential interface {
	// token returns an access token for scope and how long it is valid.
	token(ctx context.Context, scope string) (string, time.Duration, error)
	// tenant is the tenant the tokens come from, "" when unknown.
	tenant() string
	describe() string
}

// httpClient does one bounded request: in time (each call has its own
// deadline) and in the size of the answer read. It never follows
// redirects: a redirect would carry a token or an assertion elsewhere.
type httpClient struct {
	client  *http.Client
	timeout time.Duration
}

func newHTTPClient(rt http.RoundTripper, timeout time.Duration) *httpClient {
	return &httpClient{timeout: timeout, client: &http.Client{
		Transport:     rt,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// answer is a response's status and (bounded) body.
type answer struct {
	status int
	body   []byte
}

// do sends req within the client's timeout; what names the request in
// errors, secrets are values to keep out of them.
func (c *httpClient) do(ctx context.Context, req *http.Request, what string, secrets ...string) (answer, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	resp, err := c.client.Do(req.WithContext(ctx))
	if err != nil {
		return answer{}, failure.New(failure.Unreachable, failure.Registry, what, errors.New(redact(err.Error(), secrets)))
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswerBytes+1))
	if err != nil {
		return answer{}, failure.New(failure.Unreachable, failure.Registry, what, errors.New(redact(err.Error(), secrets)))
	}
	if len(body) > maxAnswerBytes {
		return answer{}, failure.Errorf(failure.Unreachable, failure.Registry, "%s: the answer is larger than %d bytes", what, maxAnswerBytes)
	}
	return answer{status: resp.StatusCode, body: body}, nil
}

// refusal is the failure of a request answered with an error status: its
// kind by the status, the answer's own error code and description (never
// the raw body, which may hold anything), secrets removed.
func refusal(what string, a answer, secrets ...string) error {
	kind := failure.Other
	switch {
	case a.status == http.StatusBadRequest || a.status == http.StatusUnauthorized || a.status == http.StatusForbidden:
		kind = failure.Unauthorized
	case a.status == http.StatusNotFound || a.status == http.StatusGone || a.status == http.StatusTooManyRequests || a.status >= 500:
		// IMDS answers 404 and 410 while it starts or updates.
		kind = failure.Unreachable
	}
	msg := fmt.Sprintf("%s: HTTP %d", what, a.status)
	if d := errorDetail(a.body); d != "" {
		msg += ": " + text.Shorten(redact(d, secrets), maxDetailBytes)
	}
	return failure.Errorf(kind, failure.Registry, "%s", msg)
}

// errorDetail reads the error of an OAuth answer ({"error",
// "error_description"}) or a registry's ({"errors": [{"code", "message"}]}).
func errorDetail(body []byte) string {
	var e struct {
		Error       json.RawMessage `json:"error"`
		Description string          `json:"error_description"`
		Errors      []struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"errors"`
	}
	if json.Unmarshal(body, &e) != nil {
		return ""
	}
	var code string
	if json.Unmarshal(e.Error, &code) != nil {
		code = ""
	}
	switch {
	case code != "" || e.Description != "":
		return strings.TrimSpace(code + " " + e.Description)
	case len(e.Errors) > 0:
		return strings.TrimSpace(e.Errors[0].Code + " " + e.Errors[0].Message)
	}
	return ""
}

// redact removes every secret from s.
func redact(s string, secrets []string) string {
	for _, v := range secrets {
		if len(v) >= 4 {
			s = strings.ReplaceAll(s, v, "[redacted]")
		}
	}
	return s
}

// seconds reads a lifetime written as a JSON number or string (IMDS writes
// strings).
type seconds int64

func (s *seconds) UnmarshalJSON(b []byte) error {
	str := strings.Trim(string(b), `"`)
	n, err := strconv.ParseInt(str, 10, 64)
	if err != nil {
		return errors.New("expires_in is not a number")
	}
	*s = seconds(n)
	return nil
}

// tokenAnswer is an OAuth token answer.
type tokenAnswer struct {
	AccessToken string  `json:"access_token"`
	ExpiresIn   seconds `json:"expires_in"`
}

// accessToken reads a token answer of what.
func accessToken(what string, a answer) (string, time.Duration, error) {
	var t tokenAnswer
	if err := json.Unmarshal(a.body, &t); err != nil || t.AccessToken == "" {
		return "", 0, failure.Errorf(failure.Other, failure.Registry, "%s: the answer holds no access token", what)
	}
	if t.ExpiresIn <= 0 {
		return "", 0, failure.Errorf(failure.Other, failure.Registry, "%s: the answer has no positive expires_in", what)
	}
	return t.AccessToken, time.Duration(t.ExpiresIn) * time.Second, nil
}

// workloadIdentity is Azure AD workload identity: the Kubernetes service
// account token AKS projects into AZURE_FEDERATED_TOKEN_FILE, exchanged for
// an Azure AD token of the application AZURE_CLIENT_ID trusts it for.
type workloadIdentity struct {
	http                        *httpClient
	tokenURL                    string
	clientID, tenantID, idToken string // idToken: the token file's path
}

func newWorkloadIdentity(c *httpClient, authorityHost, tenantID, clientID, tokenFile string) (*workloadIdentity, error) {
	u, err := url.Parse(authorityHost)
	if err != nil || u.Scheme != "https" || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("AZURE_AUTHORITY_HOST %q: want an https:// URL", authorityHost)
	}
	if !validTenant(tenantID) {
		return nil, fmt.Errorf("AZURE_TENANT_ID %q is not a tenant ID or domain", tenantID)
	}
	u.Path = strings.TrimSuffix(u.Path, "/") + "/" + tenantID + "/oauth2/v2.0/token"
	return &workloadIdentity{http: c, tokenURL: u.String(), clientID: clientID, tenantID: tenantID, idToken: tokenFile}, nil
}

// validTenant: a GUID or a domain name, nothing that could change the path.
func validTenant(t string) bool {
	if t == "" || len(t) > 253 {
		return false
	}
	for _, r := range t {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '.') {
			return false
		}
	}
	return !strings.Contains(t, "..")
}

func (w *workloadIdentity) tenant() string { return w.tenantID }

func (w *workloadIdentity) describe() string {
	return fmt.Sprintf("Azure workload identity (client %s, tenant %s)", w.clientID, w.tenantID)
}

func (w *workloadIdentity) token(ctx context.Context, scope string) (string, time.Duration, error) {
	// Read each time: the kubelet rotates the projected token.
	assertion, err := readBounded(w.idToken, maxTokenFileBytes)
	if err != nil {
		return "", 0, failure.New(failure.Unauthorized, failure.Registry, "Azure workload identity: read AZURE_FEDERATED_TOKEN_FILE", err)
	}
	form := url.Values{
		"client_id":             {w.clientID},
		"scope":                 {scope},
		"grant_type":            {"client_credentials"},
		"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"},
		"client_assertion":      {assertion},
	}
	req, err := http.NewRequest(http.MethodPost, w.tokenURL, strings.NewReader(form.Encode()))
	if err != nil {
		return "", 0, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	const what = "Azure workload identity: Azure AD token"
	a, err := w.http.do(ctx, req, what, assertion)
	if err != nil {
		return "", 0, err
	}
	if a.status != http.StatusOK {
		return "", 0, refusal(what, a, assertion)
	}
	return accessToken(what, a)
}

// readBounded reads a file of at most limit bytes, trimmed; errors say
// what failed, never the content.
func readBounded(path string, limit int64) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return "", err
	}
	if int64(len(b)) > limit {
		return "", fmt.Errorf("%s is larger than %d bytes", path, limit)
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return "", fmt.Errorf("%s is empty", path)
	}
	return s, nil
}

// DefaultIMDSEndpoint is the Azure Instance Metadata Service's token
// endpoint.
const DefaultIMDSEndpoint = "http://169.254.169.254/metadata/identity/oauth2/token"

// managedIdentity is an Azure managed identity through IMDS: the node's
// (AKS kubelet identity) or, with clientID, a user-assigned one the VM or
// scale set holds.
type managedIdentity struct {
	http     *httpClient
	endpoint string
	clientID string
}

func (m *managedIdentity) tenant() string { return "" }

func (m *managedIdentity) describe() string {
	if m.clientID == "" {
		return "Azure managed identity (IMDS, system-assigned)"
	}
	return fmt.Sprintf("Azure managed identity (IMDS, client %s)", m.clientID)
}

func (m *managedIdentity) token(ctx context.Context, scope string) (string, time.Duration, error) {
	u, err := url.Parse(m.endpoint)
	if err != nil {
		return "", 0, err
	}
	q := u.Query()
	q.Set("api-version", "2018-02-01")
	// IMDS takes a resource, not a scope.
	q.Set("resource", strings.TrimSuffix(scope, "/.default"))
	if m.clientID != "" {
		q.Set("client_id", m.clientID)
	}
	u.RawQuery = q.Encode()
	req, err := http.NewRequest(http.MethodGet, u.String(), nil)
	if err != nil {
		return "", 0, err
	}
	req.Header.Set("Metadata", "true")
	const what = "Azure managed identity: IMDS token"
	a, err := m.http.do(ctx, req, what)
	if err != nil {
		return "", 0, err
	}
	if a.status != http.StatusOK {
		return "", 0, refusal(what, a)
	}
	return accessToken(what, a)
}
