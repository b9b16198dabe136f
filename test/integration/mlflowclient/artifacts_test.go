package mlflowclient

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/mlflow-operator/mlflow-operator/internal/failure"
	"github.com/mlflow-operator/mlflow-operator/internal/mlflow"
)

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
	if _, err := c.ReadArtifact(context.Background(), "iris", iris[0].Version, "no-such-file.json", 1<<20); !failure.IsNotFound(err) {
		t.Errorf("missing file: %v, want not found", err)
	}
	if _, err := c.ReadArtifact(context.Background(), "iris", iris[0].Version, "../../../etc/passwd", 1<<20); !errors.Is(err, mlflow.ErrUnsafePath) {
		t.Errorf("escaping path: %v", err)
	}
}
