package mlflow

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mlflow-operator/mlflow-operator/internal/failure"
)

// Unit tests of where the client's requests may go: artifact hosts named by
// MLflow, redirects, the credentials each host gets, and the dial guard. The
// MLflow server is an attacker's here: every answer may name any host.

// recorder is an HTTP server that records the Authorization header of every
// request it gets.
type recorder struct {
	*httptest.Server
	mu    sync.Mutex
	auths []string
	paths []string
}

func newRecorder(t *testing.T, h http.HandlerFunc) *recorder {
	t.Helper()
	r := &recorder{}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		r.auths = append(r.auths, req.Header.Get("Authorization"))
		r.paths = append(r.paths, req.URL.Path)
		r.mu.Unlock()
		if h != nil {
			h(w, req)
		}
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *recorder) seen() (auths, paths []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.auths...), append([]string(nil), r.paths...)
}

func (r *recorder) host() string { return strings.TrimPrefix(r.URL, "http://") }

const secretToken = "namespace-secret-token"

// TestRedirectToAnotherHostRefused checks that a redirect to a host that is
// neither the tracking server nor listed is refused, for a JSON request and
// an artifact download alike, and that the host never hears of it. Another
// port of the same address is another host: net/http alone would forward
// the Authorization header there.
func TestRedirectToAnotherHostRefused(t *testing.T) {
	other := newRecorder(t, nil)
	tracking := newRecorder(t, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+"/stolen", http.StatusFound)
	})
	c, err := New(tracking.URL, WithAuth(Auth{Token: secretToken}), WithRetries(2, time.Millisecond, time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	u, _ := url.Parse(tracking.URL + "/file")
	for name, call := range map[string]func() error{
		"JSON request": func() error { _, err := c.GetModelVersion(ctx, "m", "1"); return err },
		"download":     func() error { _, err := c.downloadFile(ctx, u, t.TempDir(), "f", c.newBudget("m", "1"), 0); return err },
	} {
		err := call()
		if failure.KindOf(err) != failure.Refused || failure.SubjectOf(err) != failure.MLflow {
			t.Errorf("%s: %v, want a Refused MLflow", name, err)
		}
		want := fmt.Sprintf("artifact host %q is not the tracking server and is not allowed (operator flag --mlflow-artifact-hosts)", other.host())
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: message %q does not say %q", name, err, want)
		}
	}
	if auths, _ := other.seen(); len(auths) != 0 {
		t.Errorf("the other host got %d requests", len(auths))
	}
	if auths, _ := tracking.seen(); len(auths) != 2 {
		t.Errorf("the tracking server got %d requests, want 2: a refusal is not retried", len(auths))
	}
}

// TestRedirectToArtifactHostWithoutCredentials checks that a redirect to a
// listed artifact host is followed without the tracking server's
// credentials, and that a redirect back to the tracking server gets them
// again.
func TestRedirectToArtifactHostWithoutCredentials(t *testing.T) {
	var tracking *recorder
	other := newRecorder(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/back" {
			http.Redirect(w, r, tracking.URL+"/again", http.StatusFound)
			return
		}
		fmt.Fprint(w, "model bytes")
	})
	tracking = newRecorder(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/file":
			http.Redirect(w, r, other.URL+"/blob", http.StatusTemporaryRedirect)
		case "/loop":
			http.Redirect(w, r, other.URL+"/back", http.StatusFound)
		default:
			fmt.Fprint(w, "back home")
		}
	})
	for _, auth := range []Auth{{Token: secretToken}, {Username: "u", Password: secretToken}} {
		c, err := New(tracking.URL, WithAuth(auth), WithArtifactHosts(strings.ToUpper(other.host())), WithRetries(0, 0, 0))
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range []string{"/file", "/loop"} {
			u, _ := url.Parse(tracking.URL + p)
			if _, err := c.downloadFile(context.Background(), u, t.TempDir(), "f", c.newBudget("m", "1"), 0); err != nil {
				t.Fatalf("%s: %v", p, err)
			}
		}
	}
	auths, paths := other.seen()
	for i, a := range auths {
		if a != "" {
			t.Errorf("the artifact host got Authorization %q on %s", a, paths[i])
		}
	}
	auths, paths = tracking.seen()
	for i, a := range auths {
		if a == "" {
			t.Errorf("the tracking server got no credentials on %s", paths[i])
		}
	}
	if len(auths) != 6 {
		t.Errorf("the tracking server got %d requests (%v), want 6", len(auths), paths)
	}
}

func TestRedirectLimit(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		http.Redirect(w, r, fmt.Sprintf("/hop%d", calls.Load()), http.StatusFound)
	}))
	defer srv.Close()
	c, _ := New(srv.URL, WithRetries(0, 0, 0))
	_, err := c.GetModelVersion(context.Background(), "m", "1")
	if err == nil || !strings.Contains(err.Error(), "stopped after 5 redirects") {
		t.Errorf("err %v, want stopped after 5 redirects", err)
	}
	if calls.Load() != 6 {
		t.Errorf("%d requests, want the first and 5 redirects", calls.Load())
	}
}

// TestArtifactHostFromMLflowAnswer checks where the files of a version are
// fetched from when MLflow names another host, directly, behind a run or
// behind a logged model: refused unless listed, and then fetched without
// the tracking server's credentials.
func TestArtifactHostFromMLflowAnswer(t *testing.T) {
	other := newRecorder(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == artifactsPrefix {
			fmt.Fprint(w, `{"files":[{"path":"MLmodel","is_dir":false,"file_size":5}]}`)
			return
		}
		fmt.Fprint(w, "flavr")
	})
	foreign := "mlflow-artifacts://" + other.host() + "/0/models/m-1/artifacts"
	for _, tc := range []struct{ name, source string }{
		{"download URI", foreign},
		{"run artifact URI", "runs:/r1/model"},
		{"logged model artifact URI", "models:/m-1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tracking := newRecorder(t, func(w http.ResponseWriter, r *http.Request) {
				switch strings.TrimPrefix(r.URL.Path, apiPrefix) {
				case "model-versions/get-download-uri":
					fmt.Fprintf(w, `{"artifact_uri":%q}`, tc.source)
				case "runs/get":
					fmt.Fprintf(w, `{"run":{"info":{"artifact_uri":"mlflow-artifacts://%s/0/r1/artifacts"}}}`, other.host())
				case "logged-models/m-1":
					fmt.Fprintf(w, `{"model":{"info":{"artifact_uri":%q}}}`, foreign)
				default:
					http.NotFound(w, r)
				}
			})
			ctx := context.Background()
			c, _ := New(tracking.URL, WithAuth(Auth{Token: secretToken}), WithRetries(0, 0, 0))
			_, err := c.DownloadVersion(ctx, "iris", "1", t.TempDir())
			want := fmt.Sprintf("artifact host %q is not the tracking server and is not allowed (operator flag --mlflow-artifact-hosts)", other.host())
			if failure.KindOf(err) != failure.Refused || failure.SubjectOf(err) != failure.MLflow || err.Error() != want {
				t.Fatalf("not allowed: %v, want a Refused MLflow %q", err, want)
			}
			if _, err := c.ReadArtifact(ctx, "iris", "1", "MLmodel", 0); failure.KindOf(err) != failure.Refused {
				t.Errorf("ReadArtifact, not allowed: %v", err)
			}
			if auths, _ := other.seen(); len(auths) != 0 {
				t.Fatalf("the other host got %d requests before it was allowed", len(auths))
			}

			c, _ = New(tracking.URL, WithAuth(Auth{Token: secretToken}), WithRetries(0, 0, 0), WithArtifactHosts(other.host()))
			m, err := c.DownloadVersion(ctx, "iris", "1", t.TempDir())
			if err != nil || len(m.Files) != 1 || !strings.HasPrefix(m.ResolvedURI, "mlflow-artifacts://"+other.host()+"/") {
				t.Fatalf("allowed: %+v %v", m, err)
			}
			if data, err := c.ReadArtifact(ctx, "iris", "1", "MLmodel", 0); err != nil || string(data) != "flavr" {
				t.Fatalf("ReadArtifact, allowed: %q %v", data, err)
			}
			auths, paths := other.seen()
			if len(auths) != 3 {
				t.Errorf("the artifact host got %v, want a listing and two files", paths)
			}
			for i, a := range auths {
				if a != "" {
					t.Errorf("the artifact host got Authorization %q on %s", a, paths[i])
				}
			}
			for _, a := range func() []string { a, _ := tracking.seen(); return a }() {
				if a != "Bearer "+secretToken {
					t.Errorf("the tracking server got Authorization %q", a)
				}
			}
			other.mu.Lock()
			other.auths, other.paths = nil, nil
			other.mu.Unlock()
		})
	}
}

func TestAddressGuard(t *testing.T) {
	_, lab, _ := net.ParseCIDR("169.254.10.0/24")
	_, all, _ := net.ParseCIDR("0.0.0.0/0")
	for _, tc := range []struct {
		addr     string
		guard    addressGuard
		refused  string
		whatNote string
	}{
		{"10.0.0.5:5000", addressGuard{}, "", ""},
		{"[2001:db8::1]:443", addressGuard{}, "", ""},
		{"169.254.169.254:80", addressGuard{}, "link-local", ""},
		{"169.254.169.254:80", addressGuard{loopback: true}, "link-local", "loopback tracking does not open link-local"},
		{"[fe80::1]:80", addressGuard{}, "link-local", ""},
		{"[::ffff:169.254.169.254]:80", addressGuard{}, "link-local", "an IPv4-mapped address is the IPv4 one"},
		{"127.0.0.1:5000", addressGuard{}, "loopback", ""},
		{"127.0.0.2:5000", addressGuard{}, "loopback", ""},
		{"[::1]:5000", addressGuard{}, "loopback", ""},
		{"127.0.0.1:5000", addressGuard{loopback: true}, "", ""},
		{"0.0.0.0:5000", addressGuard{loopback: true}, "unspecified", ""},
		{"[::]:5000", addressGuard{loopback: true}, "unspecified", ""},
		{"0.0.0.0:5000", addressGuard{allowed: []*net.IPNet{all}}, "unspecified", "never opened"},
		{"169.254.10.7:80", addressGuard{allowed: []*net.IPNet{lab}}, "", "opened by the administrator"},
		{"169.254.11.7:80", addressGuard{allowed: []*net.IPNet{lab}}, "link-local", ""},
	} {
		err := tc.guard.check(tc.addr)
		if tc.refused == "" {
			if err != nil {
				t.Errorf("%s (%+v): %v", tc.addr, tc.guard, err)
			}
			continue
		}
		if failure.KindOf(err) != failure.Refused || err == nil || !strings.Contains(err.Error(), tc.refused) {
			t.Errorf("%s (%+v, %s): %v, want refused as %s", tc.addr, tc.guard, tc.whatNote, err, tc.refused)
		}
	}
	for host, want := range map[string]bool{"127.0.0.1": true, "::1": true, "localhost": true, "mlflow.localhost": true,
		"10.0.0.1": false, "mlflow.svc": false, "localhost.example.com": false} {
		if isLoopbackHost(host) != want {
			t.Errorf("isLoopbackHost(%q) = %v", host, !want)
		}
	}
}

// withHosts makes the client dial names as these addresses: a stand-in for
// DNS, so that a name can resolve to a refused address.
func withHosts(m map[string]string) Option { return func(c *Client) { c.hosts = m } }

// TestDialGuardThroughNames checks that the dial guard judges the address a
// name resolves to, on redirects to listed artifact hosts: a host name the
// administrator allowed is still not fetched from when it resolves to
// loopback (the tracking server is not loopback) or to the cloud's metadata
// address; and the tracking server itself, loopback behind a name, needs
// WithAllowedAddresses.
func TestDialGuardThroughNames(t *testing.T) {
	sneaky, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Skipf("cannot listen on 127.0.0.2: %v", err)
	}
	defer sneaky.Close()
	var sneakyConns atomic.Int32
	go func() {
		for {
			conn, err := sneaky.Accept()
			if err != nil {
				return
			}
			sneakyConns.Add(1)
			conn.Close()
		}
	}()
	_, sneakyPort, _ := net.SplitHostPort(sneaky.Addr().String())
	targets := map[string]string{
		"sneaky":   "http://sneaky.test:" + sneakyPort + "/x",
		"metadata": "http://metadata.test/latest/meta-data/iam/security-credentials/",
		"literal":  "http://169.254.169.254/latest/meta-data/",
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if to, ok := targets[r.URL.Query().Get("name")]; ok {
			http.Redirect(w, r, to, http.StatusFound)
			return
		}
		fmt.Fprint(w, `{"model_version":{"name":"ok","version":"1"}}`)
	}))
	defer srv.Close()
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(srv.URL, "http://"))
	hosts := withHosts(map[string]string{"mlflow.test": "127.0.0.1", "sneaky.test": "127.0.0.2", "metadata.test": "169.254.169.254"})
	artifactHosts := WithArtifactHosts("sneaky.test:"+sneakyPort, "metadata.test", "169.254.169.254")
	_, trackingNet, _ := net.ParseCIDR("127.0.0.1/32")
	ctx := context.Background()

	// The tracking server's name is not loopback: its loopback address is
	// refused until the administrator opens it.
	c, _ := New("http://mlflow.test:"+port, hosts, artifactHosts, WithRetries(0, 0, 0))
	if _, err := c.GetModelVersion(ctx, "ok", "1"); failure.KindOf(err) != failure.Refused || !strings.Contains(err.Error(), "connecting to 127.0.0.1 is refused") {
		t.Fatalf("loopback tracking server behind a name: %v, want refused", err)
	}
	c, _ = New("http://mlflow.test:"+port, hosts, artifactHosts, WithAllowedAddresses(trackingNet), WithRetries(2, time.Millisecond, time.Millisecond))
	if _, err := c.GetModelVersion(ctx, "ok", "1"); err != nil {
		t.Fatalf("opened tracking server: %v", err)
	}
	for name, want := range map[string]string{
		"sneaky":   "connecting to 127.0.0.2 is refused: the address is loopback",
		"metadata": "connecting to 169.254.169.254 is refused: the address is link-local",
		"literal":  "connecting to 169.254.169.254 is refused: the address is link-local",
	} {
		_, err := c.GetModelVersion(ctx, name, "1")
		if failure.KindOf(err) != failure.Refused || failure.SubjectOf(err) != failure.MLflow || !strings.Contains(fmt.Sprint(err), want) {
			t.Errorf("%s: %v, want a Refused MLflow saying %q", name, err, want)
		}
		var fe *failure.Error
		if !errors.As(err, &fe) {
			t.Errorf("%s: not a failure", name)
		}
	}
	if n := sneakyConns.Load(); n != 0 {
		t.Errorf("the loopback listener got %d connections", n)
	}
}

func TestTrackingURIWithCredentialsRefused(t *testing.T) {
	_, err := New("https://deployer:hunter2@mlflow.example.com")
	if failure.KindOf(err) != failure.Invalid || failure.SubjectOf(err) != failure.MLflow || err == nil ||
		strings.Contains(err.Error(), "hunter2") {
		t.Errorf("err %v, want an Invalid MLflow that does not show the password", err)
	}
	c, err := New("https://mlflow.example.com/prefix/")
	if err != nil || c.TrackingURI() != "https://mlflow.example.com/prefix" {
		t.Errorf("TrackingURI %q %v", c.TrackingURI(), err)
	}
	// Even a client whose URI holds user information (which New refuses)
	// never writes it out.
	c.home.User = url.UserPassword("deployer", "hunter2")
	if got := c.TrackingURI(); strings.Contains(got, "hunter2") || strings.Contains(got, "deployer") {
		t.Errorf("TrackingURI %q shows the credentials", got)
	}
}
