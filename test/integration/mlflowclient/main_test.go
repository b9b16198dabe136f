// Package mlflowclient tests the MLflow client (internal/mlflow) against a
// real `mlflow server` with real logged scikit-learn models
// (test/harness/mlflowserver): resolution of aliases, stages and versions,
// artifact downloads byte for byte, basic auth, and a server that stops and
// comes back. It needs the Python environment hack/python-env.sh creates;
// the client's unit tests, in its own package, need nothing.
package mlflowclient

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mlflow-operator/mlflow-operator/internal/mlflow"
	"github.com/mlflow-operator/mlflow-operator/test/harness/mlflowserver"
)

var (
	server *mlflowserver.Server
	// iris has versions 1 (alias champion, stage Staging) and 2 (alias
	// challenger, stage Production); v1 of "runs-iris" has a runs:/ source.
	iris    []mlflowserver.Result
	runsRes mlflowserver.Result
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	var err error
	server, err = mlflowserver.Start(mlflowserver.Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer server.Close()
	res, err := server.Fixture(context.Background(),
		mlflowserver.Op{"op": "register", "model": "iris", "seed": 1, "alias": "champion", "stage": "Staging"},
		mlflowserver.Op{"op": "register", "model": "iris", "seed": 2, "alias": "challenger", "stage": "Production"},
		mlflowserver.Op{"op": "register_run_artifacts", "model": "runs-iris"},
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

func mustDownloadURI(t *testing.T, name, version string) string {
	t.Helper()
	uri, err := newClient(t).GetDownloadURI(context.Background(), name, version)
	if err != nil {
		t.Fatal(err)
	}
	return uri
}
