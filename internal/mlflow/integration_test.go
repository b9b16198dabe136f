package mlflow_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/mlflow-operator/mlflow-operator/internal/mlflow"
	"github.com/mlflow-operator/mlflow-operator/test/mlflowtest"
)

// These tests run against a real `mlflow server` with real logged
// scikit-learn models (test/mlflowtest).

var (
	server *mlflowtest.Server
	// iris has versions 1 (alias champion, stage Staging) and 2 (alias
	// challenger, stage Production); v1 of "runs-iris" has a runs:/ source.
	iris    []mlflowtest.Result
	runsRes mlflowtest.Result
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	var err error
	server, err = mlflowtest.Start(mlflowtest.Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer server.Close()
	res, err := server.Fixture(context.Background(),
		mlflowtest.Op{"op": "register", "model": "iris", "seed": 1, "alias": "champion", "stage": "Staging"},
		mlflowtest.Op{"op": "register", "model": "iris", "seed": 2, "alias": "challenger", "stage": "Production"},
		mlflowtest.Op{"op": "register_run_artifacts", "model": "runs-iris"},
	)
	if err != nil {
		fmt.Fprintln(os.Stderr, err, "\n", server.Logs())
		return 1
	}
	iris, runsRes = res[:2], res[2]
	return m.Run()
}

func newClient(t *testing.T, opts ...mlflow.Option) *mlflow.Client {
	t.Helper()
	c, err := mlflow.New(server.URL, append([]mlflow.Option{mlflow.WithRetries(2, 20*time.Millisecond, 100*time.Millisecond)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestResolve(t *testing.T) {
	c := newClient(t)
	tests := []struct {
		name        string
		ref         mlflow.Reference
		wantVersion string
		wantRun     string
		wantReason  string
	}{
		{"alias", mlflow.Reference{Name: "iris", Alias: "champion"}, "1", iris[0].RunID, ""},
		{"other alias", mlflow.Reference{Name: "iris", Alias: "challenger"}, "2", iris[1].RunID, ""},
		{"stage", mlflow.Reference{Name: "iris", Stage: "Production"}, "2", iris[1].RunID, ""},
		{"stage staging", mlflow.Reference{Name: "iris", Stage: "Staging"}, "1", iris[0].RunID, ""},
		{"pinned version", mlflow.Reference{Name: "iris", Version: "1"}, "1", iris[0].RunID, ""},
		{"missing alias", mlflow.Reference{Name: "iris", Alias: "nobody"}, "", "", mlflow.ReasonAliasNotFound},
		{"missing model by alias", mlflow.Reference{Name: "ghost", Alias: "champion"}, "", "", mlflow.ReasonModelNotFound},
		{"missing model by stage", mlflow.Reference{Name: "ghost", Stage: "Production"}, "", "", mlflow.ReasonModelNotFound},
		{"missing model by version", mlflow.Reference{Name: "ghost", Version: "1"}, "", "", mlflow.ReasonModelNotFound},
		{"missing version", mlflow.Reference{Name: "iris", Version: "99"}, "", "", mlflow.ReasonVersionNotFound},
		{"empty stage", mlflow.Reference{Name: "runs-iris", Stage: "Production"}, "", "", mlflow.ReasonStageEmpty},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			mv, err := c.Resolve(context.Background(), tc.ref)
			if tc.wantReason != "" {
				var re *mlflow.ResolveError
				if !errors.As(err, &re) || re.Reason != tc.wantReason {
					t.Fatalf("err %v, want reason %s", err, tc.wantReason)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if mv.Version != tc.wantVersion || mv.RunID != tc.wantRun || mv.Status != mlflow.StatusReady || mv.Source == "" {
				t.Errorf("got version %s run %s status %s source %q, want %s %s READY", mv.Version, mv.RunID, mv.Status, mv.Source, tc.wantVersion, tc.wantRun)
			}
		})
	}
}

func TestAliasMoved(t *testing.T) {
	ctx := context.Background()
	c := newClient(t)
	res, err := server.Fixture(ctx, mlflowtest.Op{"op": "register", "model": "moving", "seed": 3, "alias": "prod"},
		mlflowtest.Op{"op": "register", "model": "moving", "seed": 4})
	if err != nil {
		t.Fatal(err)
	}
	mv, err := c.Resolve(ctx, mlflow.Reference{Name: "moving", Alias: "prod"})
	if err != nil || mv.Version != res[0].Version {
		t.Fatalf("before: %v %v", mv, err)
	}
	if _, err := server.Fixture(ctx, mlflowtest.Op{"op": "set_alias", "model": "moving", "alias": "prod", "version": res[1].Version}); err != nil {
		t.Fatal(err)
	}
	mv, err = c.Resolve(ctx, mlflow.Reference{Name: "moving", Alias: "prod"})
	if err != nil || mv.Version != res[1].Version {
		t.Fatalf("after the move: %+v %v, want version %s", mv, err, res[1].Version)
	}
	if _, err := server.Fixture(ctx, mlflowtest.Op{"op": "delete_alias", "model": "moving", "alias": "prod"}); err != nil {
		t.Fatal(err)
	}
	_, err = c.Resolve(ctx, mlflow.Reference{Name: "moving", Alias: "prod"})
	var re *mlflow.ResolveError
	if !errors.As(err, &re) || re.Reason != mlflow.ReasonAliasNotFound {
		t.Fatalf("after delete: %v, want AliasNotFound", err)
	}
}

// sha256Tree maps every file below dir (relative path) to its SHA-256.
func sha256Tree(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		h := sha256.New()
		if _, err := io.Copy(h, f); err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		out[filepath.ToSlash(rel)] = hex.EncodeToString(h.Sum(nil))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// storedDir is where the server stored a version's artifacts on disk.
func storedDir(t *testing.T, uri string) string {
	t.Helper()
	p, ok := strings.CutPrefix(uri, "mlflow-artifacts:/")
	if !ok {
		t.Fatalf("artifact URI %q is not served by the tracking server", uri)
	}
	return filepath.Join(server.ArtifactsDir(), filepath.FromSlash(p))
}

func TestDownloadVersionByteIdentical(t *testing.T) {
	ctx := context.Background()
	c := newClient(t)
	for _, tc := range []struct {
		name, model, version string
	}{
		{"logged model source (models:/m-...)", "iris", iris[0].Version},
		{"run artifacts source (runs:/...)", "runs-iris", runsRes.Version},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			m, err := c.DownloadVersion(ctx, tc.model, tc.version, dir)
			if err != nil {
				t.Fatal(err)
			}
			stored := sha256Tree(t, storedDir(t, m.ResolvedURI))
			got := sha256Tree(t, dir)
			if len(stored) < 5 {
				t.Fatalf("the server stored only %d files: %v", len(stored), stored)
			}
			if len(got) != len(stored) {
				t.Errorf("downloaded %d files, the server stored %d", len(got), len(stored))
			}
			for p, sum := range stored {
				if got[p] != sum {
					t.Errorf("%s: downloaded sha256 %q, stored %q", p, got[p], sum)
				}
			}
			for _, f := range m.Files {
				if stored[f.Path] != f.SHA256 {
					t.Errorf("manifest %s sha256 %s, stored %s", f.Path, f.SHA256, stored[f.Path])
				}
			}
			for _, want := range []string{"MLmodel", "requirements.txt", "python_env.yaml", "serving_input_example.json"} {
				if _, ok := got[want]; !ok {
					t.Errorf("no %s downloaded", want)
				}
			}
			// The digest depends on the content only.
			m2, err := c.DownloadVersion(ctx, tc.model, tc.version, t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			if m.Digest() != m2.Digest() {
				t.Errorf("digest changed between two downloads: %s %s", m.Digest(), m2.Digest())
			}
		})
	}
	// Two versions of different models have different digests.
	a, err := c.DownloadVersion(ctx, "iris", iris[0].Version, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	b, err := c.DownloadVersion(ctx, "iris", iris[1].Version, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if a.Digest() == b.Digest() {
		t.Error("different versions have the same digest")
	}
}

func TestDownloadViaGetArtifact(t *testing.T) {
	// Storage the server cannot list: only the files MLmodel names come
	// through model-versions/get-artifact. Exercised on the real server by
	// asking for that path directly.
	dir := t.TempDir()
	files, err := newClient(t).DownloadNamedFiles(context.Background(), "iris", iris[0].Version, dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range files {
		names = append(names, f.Path)
	}
	sort.Strings(names)
	stored := sha256Tree(t, storedDir(t, mustDownloadURI(t, "iris", iris[0].Version)))
	for _, f := range files {
		if stored[f.Path] != f.SHA256 {
			t.Errorf("%s differs from the stored file", f.Path)
		}
	}
	for _, want := range []string{"MLmodel", "model.skops", "requirements.txt"} {
		if sort.SearchStrings(names, want) == len(names) || names[sort.SearchStrings(names, want)] != want {
			t.Errorf("%s not fetched; got %v", want, names)
		}
	}
}

func mustDownloadURI(t *testing.T, name, version string) string {
	t.Helper()
	uri, err := newClient(t).GetDownloadURI(context.Background(), name, version)
	if err != nil {
		t.Fatal(err)
	}
	return uri
}

func TestServerStoppedThenBack(t *testing.T) {
	ctx := context.Background()
	c := newClient(t, mlflow.WithTimeout(2*time.Second))
	ref := mlflow.Reference{Name: "iris", Alias: "champion"}
	if _, err := c.Resolve(ctx, ref); err != nil {
		t.Fatal(err)
	}
	server.Stop()
	restarted := false
	defer func() {
		if !restarted {
			_ = server.Restart()
		}
	}()
	_, err := c.Resolve(ctx, ref)
	var re *mlflow.ResolveError
	if !errors.As(err, &re) || re.Reason != mlflow.ReasonMLflowUnreachable || !mlflow.IsUnreachable(err) {
		t.Fatalf("with the server stopped: %v, want MLflowUnreachable", err)
	}
	if err := server.Restart(); err != nil {
		t.Fatal(err)
	}
	restarted = true
	mv, err := c.Resolve(ctx, ref)
	if err != nil || mv.Version != "1" {
		t.Fatalf("after restart: %v %v", mv, err)
	}
}

func TestContextCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := newClient(t).Resolve(ctx, mlflow.Reference{Name: "iris", Alias: "champion"})
	if err == nil || !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v, want context.Canceled", err)
	}
}

func TestBasicAuthServer(t *testing.T) {
	ctx := context.Background()
	s, err := mlflowtest.Start(mlflowtest.Options{BasicAuth: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Fixture(ctx,
		mlflowtest.Op{"op": "register", "model": "secured", "alias": "champion"},
		mlflowtest.Op{"op": "create_user", "username": "deployer", "password": "deployer-pw-12345"},
	); err != nil {
		t.Fatal(err)
	}
	ref := mlflow.Reference{Name: "secured", Alias: "champion"}
	tests := []struct {
		name       string
		auth       mlflow.Auth
		wantReason string
	}{
		{"good credentials", mlflow.Auth{Username: "deployer", Password: "deployer-pw-12345"}, ""},
		{"basic wins over a token", mlflow.Auth{Username: "deployer", Password: "deployer-pw-12345", Token: "garbage"}, ""},
		{"wrong password", mlflow.Auth{Username: "deployer", Password: "nope"}, mlflow.ReasonMLflowUnauthorized},
		{"unknown user", mlflow.Auth{Username: "mallory", Password: "x"}, mlflow.ReasonMLflowUnauthorized},
		{"no credentials", mlflow.Auth{}, mlflow.ReasonMLflowUnauthorized},
		{"bearer token the server does not know", mlflow.Auth{Token: "abc"}, mlflow.ReasonMLflowUnauthorized},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := mlflow.New(s.URL, mlflow.WithAuth(tc.auth), mlflow.WithRetries(0, 0, 0))
			if err != nil {
				t.Fatal(err)
			}
			mv, err := c.Resolve(ctx, ref)
			if tc.wantReason == "" {
				if err != nil || mv.Version != "1" {
					t.Fatalf("%v %v", mv, err)
				}
				// Artifacts come through with the same credentials.
				if _, err := c.DownloadVersion(ctx, "secured", "1", t.TempDir()); err != nil {
					t.Fatalf("download: %v", err)
				}
				return
			}
			var re *mlflow.ResolveError
			if !errors.As(err, &re) || re.Reason != tc.wantReason || !mlflow.IsUnauthorized(err) {
				t.Fatalf("err %v, want %s", err, tc.wantReason)
			}
			if strings.Contains(err.Error(), "deployer-pw") {
				t.Error("the error shows the password")
			}
		})
	}
}

func TestReadArtifact(t *testing.T) {
	c := newClient(t)
	data, err := c.ReadArtifact(context.Background(), "iris", iris[0].Version, "serving_input_example.json", 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(filepath.Join(storedDir(t, mustDownloadURI(t, "iris", iris[0].Version)), "serving_input_example.json"))
	if err != nil {
		t.Fatal(err)
	}
	if string(data) != string(want) || !strings.Contains(string(data), "dataframe_split") {
		t.Errorf("read %q, stored %q", data, want)
	}
	if _, err := c.ReadArtifact(context.Background(), "iris", iris[0].Version, "no-such-file.json", 1<<20); !mlflow.IsNotFound(err) {
		t.Errorf("missing file: %v, want not found", err)
	}
	if _, err := c.ReadArtifact(context.Background(), "iris", iris[0].Version, "../../../etc/passwd", 1<<20); !errors.Is(err, mlflow.ErrUnsafePath) {
		t.Errorf("escaping path: %v", err)
	}
}
