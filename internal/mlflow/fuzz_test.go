package mlflow

// Fuzz targets for what an MLflow server, which may be hostile, controls:
// artifact paths, the artifact listing, and webhook payloads. Run one with
//
//	go test -run '^$' -fuzz '^FuzzArtifactListing$' -fuzztime 60s ./internal/mlflow/
//
// The seeds (f.Add and testdata/fuzz/) run with the unit tests.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func FuzzSafeJoin(f *testing.F) {
	for _, rel := range []string{"MLmodel", "data/model.pkl", "a/./b", "../etc/passwd", "a/../../b", "/etc/passwd", "",
		"..", `a\..\b`, "a/..", "nul\x00", "./", "a//b/", "...", "a/.../b", "C:/x", "~/x"} {
		f.Add("/models", rel)
	}
	f.Add("", "a/b/../c")
	f.Add("relative/dir", "x/../../y")
	f.Fuzz(func(t *testing.T, dir, rel string) {
		got, err := SafeJoin(dir, rel)
		if err != nil {
			return
		}
		if dir == "" {
			// The cleaned path itself: local, with slashes.
			if !filepath.IsLocal(filepath.FromSlash(got)) || path.Clean(got) != got || slices.Contains(strings.Split(got, "/"), "..") {
				t.Fatalf("SafeJoin(%q, %q) = %q, not a clean local path", dir, rel, got)
			}
			return
		}
		// Inside dir (or dir itself), whatever dir is.
		inside, err := filepath.Rel(filepath.Clean(dir), got)
		if err != nil || !filepath.IsLocal(inside) {
			t.Fatalf("SafeJoin(%q, %q) = %q, outside the directory (%q, %v)", dir, rel, got, inside, err)
		}
		// The same as the path it names below "" (what the listing and the
		// manifest record).
		clean, err := SafeJoin("", rel)
		if err != nil || filepath.Join(dir, filepath.FromSlash(clean)) != got {
			t.Fatalf("SafeJoin(%q, %q) = %q, but below \"\" %q (%v)", dir, rel, got, clean, err)
		}
	})
}

// listingServer plays an MLflow server for DownloadVersion: the version's
// files are at mlflow-artifacts:/root, the top folder lists as top, every
// folder below as nested, and each file holds "content of <its path>".
type listingServer struct{ top, nested []byte }

func (s listingServer) RoundTrip(r *http.Request) (*http.Response, error) {
	status, body := http.StatusOK, []byte(nil)
	switch p := r.URL.Path; {
	case p == apiPrefix+"model-versions/get-download-uri":
		body = []byte(`{"artifact_uri": "mlflow-artifacts:/root"}`)
	case p == artifactsPrefix && r.URL.Query().Get("path") == "root":
		body = s.top
	case p == artifactsPrefix:
		body = s.nested
	case strings.HasPrefix(p, artifactsPrefix+"/root/"):
		body = []byte("content of " + strings.TrimPrefix(p, artifactsPrefix+"/root/"))
	default:
		status, body = http.StatusNotFound, []byte(`{"error_code": "RESOURCE_DOES_NOT_EXIST"}`)
	}
	return &http.Response{
		StatusCode: status, Header: http.Header{"Content-Type": {"application/json"}},
		Body: io.NopCloser(bytes.NewReader(body)), ContentLength: int64(len(body)), Request: r,
	}, nil
}

func FuzzArtifactListing(f *testing.F) {
	f.Add([]byte(`{"files": [{"path": "MLmodel", "is_dir": false, "file_size": 20}, {"path": "data", "is_dir": true}]}`),
		[]byte(`{"files": [{"path": "data/model.pkl", "file_size": 27}]}`))
	f.Add([]byte(`{"files": [{"path": "../../etc/passwd", "file_size": 1}]}`), []byte(`{}`))
	f.Add([]byte(`{"files": [{"path": "/etc/passwd"}]}`), []byte(`{}`))
	f.Add([]byte(`{"files": [{"path": "a\\..\\..\\x"}]}`), []byte(`{}`))
	f.Add([]byte(`{"files": [{"path": "d", "is_dir": true}]}`), []byte(`{"files": [{"path": "d", "is_dir": true}]}`)) // nests for ever
	f.Add([]byte(`{"files": [{"path": "x"}, {"path": "x"}]}`), []byte(`{}`))
	f.Add([]byte(`{"files": [{"path": "x", "file_size": -5}]}`), []byte(`{}`))
	f.Add([]byte(`{"files": [{"path": "a/..", "is_dir": true}]}`), []byte(`{}`))
	f.Add([]byte(`{"files": [{"path": "."}]}`), []byte(`{}`))
	f.Add([]byte(`{"files": [{"path": "d", "is_dir": true}]}`), []byte(`{"files": [{"path": ".."}]}`))
	f.Add([]byte(`not json`), []byte(`{}`))
	f.Fuzz(func(t *testing.T, top, nested []byte) {
		base := t.TempDir()
		dir := filepath.Join(base, "model")
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		c, err := New("http://mlflow.test", WithTransport(listingServer{top, nested}), WithRetries(0, time.Millisecond, time.Millisecond),
			WithDownloadLimits(1<<20, 64, 3))
		if err != nil {
			t.Fatal(err)
		}
		m, err := c.DownloadVersion(context.Background(), "iris", "1", dir)

		// Whatever happened, nothing was written beside the model folder.
		if entries, _ := os.ReadDir(base); len(entries) != 1 {
			t.Fatalf("%d entries beside the model folder", len(entries)-1)
		}
		if err != nil {
			return
		}
		// Each file is listed once, in order, at a clean local path, and
		// holds what the server sent for that path.
		var paths []string
		for _, file := range m.Files {
			paths = append(paths, file.Path)
			if clean, err := SafeJoin("", file.Path); err != nil || clean != file.Path {
				t.Fatalf("manifest path %q is not clean (%q, %v)", file.Path, clean, err)
			}
			data, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(file.Path)))
			sum := sha256.Sum256(data)
			if err != nil || string(data) != "content of "+file.Path || file.Size != int64(len(data)) || file.SHA256 != hex.EncodeToString(sum[:]) {
				t.Fatalf("file %q: %q (%v), manifest %+v", file.Path, data, err, file)
			}
		}
		if !slices.IsSorted(paths) || len(slices.Compact(slices.Clone(paths))) != len(paths) {
			t.Fatalf("manifest paths %q are not sorted and unique", paths)
		}
		// And the folder holds nothing else.
		filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				rel, _ := filepath.Rel(dir, p)
				if !slices.Contains(paths, filepath.ToSlash(rel)) {
					t.Errorf("%s on disk is not in the manifest", rel)
				}
			}
			return nil
		})
	})
}

// FuzzWebhookEventRoundTrip adds to webhook_test.go's FuzzParseWebhookEvent
// (nothing accepted lacks an entity, an action or a name) that an accepted
// event is what it reads as: written out again, it parses to the same.
func FuzzWebhookEventRoundTrip(f *testing.F) {
	f.Add([]byte(`{"entity": "model_version_alias", "action": "created", "timestamp": "2026-01-01T00:00:00Z",
		"data": {"name": "iris", "alias": "champion", "version": "3"}}`))
	f.Add([]byte(`{"entity": "model_version_tag", "action": "set", "data": {"name": "iris", "version": "3", "key": "k", "value": "v", "tags": {}}}`))
	f.Add([]byte(`{"entity": "", "action": "created", "data": {"name": "iris"}}`))
	f.Add([]byte(`{"entity": "x", "action": "y", "data": {"name": ""}}`))
	f.Add([]byte(`{"entity": "x", "action": "y", "data": {"name": "\ud800"}}`))
	f.Add([]byte(`{"entity": "x", "action": "y", "data": null}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, body []byte) {
		e, err := ParseWebhookEvent(body)
		if err != nil {
			if e != nil {
				t.Fatal("an event with an error")
			}
			return
		}
		if e.Entity == "" || e.Action == "" || e.Data.Name == "" {
			t.Fatalf("accepted an event without entity, action or model name: %+v", e)
		}
		if e.Event() != e.Entity+"."+e.Action {
			t.Fatalf("Event() = %q", e.Event())
		}
		// What was accepted reads back the same once written out again.
		out, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		again, err := ParseWebhookEvent(out)
		if err != nil {
			t.Fatalf("the event written back (%s) is refused: %v", out, err)
		}
		if out2, _ := json.Marshal(again); !bytes.Equal(out, out2) {
			t.Fatalf("round trip changed the event: %s, then %s", out, out2)
		}
	})
}
