package mlflowclient

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/mlflow-operator/mlflow-operator/internal/failure"
	"github.com/mlflow-operator/mlflow-operator/internal/mlflow"
	"github.com/mlflow-operator/mlflow-operator/test/harness/mlflowserver"
)

// The client against a real MLflow server that places a version's files on
// another host, as an attacker's server (or a misconfigured one) does: the
// credentials of a namespace go to the tracking server only, and the other
// host is contacted only when the operator's administrator listed it.

// hostRecorder listens on an address and records the connections it gets
// and the Authorization header of each request, answering 404.
type hostRecorder struct {
	ln    net.Listener
	mu    sync.Mutex
	conns int
	auths []string
	paths []string
}

func listenRecorder(t *testing.T, addr string) *hostRecorder {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("cannot listen on %s: %v", addr, err)
	}
	r := &hostRecorder{ln: ln}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			r.mu.Lock()
			r.conns++
			r.mu.Unlock()
			go r.serve(conn)
		}
	}()
	return r
}

func (r *hostRecorder) serve(conn net.Conn) {
	defer conn.Close()
	br := bufio.NewReader(conn)
	for {
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		r.mu.Lock()
		r.auths = append(r.auths, req.Header.Get("Authorization"))
		r.paths = append(r.paths, req.URL.String())
		r.mu.Unlock()
		fmt.Fprint(conn, "HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: 61\r\n\r\n"+
			`{"error_code":"RESOURCE_DOES_NOT_EXIST","message":"not here"}`)
	}
}

func (r *hostRecorder) seen() (conns int, auths, paths []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.conns, append([]string(nil), r.auths...), append([]string(nil), r.paths...)
}

// TestForeignArtifactHost registers versions whose files MLflow says are on
// 127.0.0.2 (its source, or the artifact URI of the run its runs:/ source
// names). 127.0.0.2 is loopback, which the dial guard lets through because
// the tracking server is on 127.0.0.1: the host allowlist alone must refuse
// it.
//
// MLflow refuses such locations unless the server allows host-addressed
// mlflow-artifacts URIs (MLFLOW_ALLOWED_HOST_ADDRESSED_ARTIFACT_SCHEMES),
// so a server of its own is started with it: as configured, or as an
// attacker's server answers anyway.
func TestForeignArtifactHost(t *testing.T) {
	ctx := context.Background()
	other := listenRecorder(t, "127.0.0.2:0")
	host := other.ln.Addr().String()
	t.Setenv("MLFLOW_ALLOWED_HOST_ADDRESSED_ARTIFACT_SCHEMES", "mlflow-artifacts")
	s, err := mlflowserver.Start(mlflowserver.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	res, err := s.Fixture(ctx,
		mlflowserver.Op{"op": "register_foreign_source", "model": "foreign", "artifact_root": "mlflow-artifacts://" + host + "/exp", "via": "source"},
		mlflowserver.Op{"op": "register_foreign_source", "model": "foreign", "artifact_root": "mlflow-artifacts://" + host + "/exp", "via": "run"},
	)
	if err != nil {
		t.Fatal(err)
	}
	newClient := func(t *testing.T, opts ...mlflow.Option) *mlflow.Client {
		t.Helper()
		c, err := mlflow.New(s.URL, append([]mlflow.Option{mlflow.WithRetries(0, 0, 0)}, opts...)...)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	auth := mlflow.WithAuth(mlflow.Auth{Token: "namespace-secret-token"})
	refused := fmt.Sprintf("artifact host %q is not the tracking server and is not allowed (operator flag --mlflow-artifact-hosts)", host)
	for i, via := range []string{"source", "run"} {
		t.Run(via, func(t *testing.T) {
			version := res[i].Version
			c := newClient(t, auth)
			mv, err := c.Resolve(ctx, mlflow.Reference{Name: "foreign", Version: version})
			if err != nil {
				t.Fatal(err)
			}
			// The host is in the version's source, or only in the
			// artifact URI of the run the source names: the refusal
			// below, which names the host, then comes from following
			// the run.
			uri, err := c.GetDownloadURI(ctx, "foreign", version)
			if want := "runs:/" + res[i].RunID + "/model"; err != nil || via == "source" && !strings.Contains(uri, "mlflow-artifacts://"+host+"/exp/") ||
				via == "run" && uri != want {
				t.Fatalf("source %q, download URI %q (%v): not what the fixture registered", mv.Source, uri, err)
			}
			dir := t.TempDir()
			_, err = c.DownloadVersion(ctx, "foreign", version, dir)
			if failure.KindOf(err) != failure.Refused || failure.SubjectOf(err) != failure.MLflow || err.Error() != refused {
				t.Errorf("download: %v, want a Refused MLflow %q", err, refused)
			}
			if _, err := c.ReadArtifact(ctx, "foreign", version, "serving_input_example.json", 1<<20); failure.KindOf(err) != failure.Refused {
				t.Errorf("read: %v, want Refused", err)
			}
			if entries, _ := os.ReadDir(dir); len(entries) != 0 {
				t.Errorf("%d files written", len(entries))
			}
			if conns, _, _ := other.seen(); conns != 0 {
				t.Fatalf("the other host got %d connections", conns)
			}
		})
	}

	// Listed by the administrator, the host is asked, without the
	// namespace's credentials.
	c := newClient(t, auth, mlflow.WithArtifactHosts(host))
	_, err = c.DownloadVersion(ctx, "foreign", res[0].Version, t.TempDir())
	if !failure.IsNotFound(err) {
		t.Errorf("allowed host answering 404: %v, want NotFound", err)
	}
	conns, auths, paths := other.seen()
	if conns == 0 || len(auths) == 0 {
		t.Fatalf("the allowed host got %d connections, %d requests", conns, len(auths))
	}
	for i, a := range auths {
		if a != "" {
			t.Errorf("the artifact host got Authorization %q on %s", a, paths[i])
		}
	}
	if !strings.HasPrefix(paths[0], "/api/2.0/mlflow-artifacts/artifacts?path=exp%2F") {
		t.Errorf("the artifact host was asked %s, want a listing below exp/", paths[0])
	}
}

// TestDownloadLimitsOnListing checks the limits against what a real server
// lists: its sizes are those of the stored files, so a limit of exactly
// their sum passes, one byte less is refused before a file is fetched; and
// so for the number of files.
func TestDownloadLimitsOnListing(t *testing.T) {
	ctx := context.Background()
	stored := storedDir(t, mustDownloadURI(t, "iris", iris[0].Version))
	var total int64
	files := 0
	for p := range sha256Tree(t, stored) {
		fi, err := os.Stat(stored + "/" + p)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(p, "/") {
			t.Fatalf("the iris model has a folder (%s): the file count below assumes none", p)
		}
		total += fi.Size()
		files++
	}
	if _, err := newClient(t, mlflow.WithDownloadLimits(total, files, 0)).DownloadVersion(ctx, "iris", iris[0].Version, t.TempDir()); err != nil {
		t.Fatalf("limits of exactly %d bytes and %d files: %v", total, files, err)
	}
	for _, tc := range []struct {
		opt        mlflow.Option
		start, end string
	}{
		{mlflow.WithDownloadLimits(total-1, 0, 0), `version 1 of model "iris" has `, " (operator flag --max-model-bytes)"},
		{mlflow.WithDownloadLimits(0, files-1, 0), fmt.Sprintf(`version 1 of model "iris" has more than %d files and folders`, files-1), " (operator flag --max-model-files)"},
	} {
		dir := t.TempDir()
		_, err := newClient(t, tc.opt).DownloadVersion(ctx, "iris", iris[0].Version, dir)
		if failure.KindOf(err) != failure.Invalid || err == nil || !strings.HasPrefix(err.Error(), tc.start) || !strings.HasSuffix(err.Error(), tc.end) {
			t.Errorf("err %v, want Invalid %q...%q", err, tc.start, tc.end)
		}
		if entries, _ := os.ReadDir(dir); len(entries) != 0 {
			t.Errorf("%d files written before the refusal", len(entries))
		}
	}
}
