package mlflow

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mlflow-operator/mlflow-operator/internal/failure"
)

// Unit tests of artifact handling: path safety, the files an MLmodel file
// names, and the retries of one file's download.

func TestSafeJoin(t *testing.T) {
	for _, tc := range []struct {
		rel string
		ok  bool
	}{
		{"MLmodel", true}, {"data/model.pkl", true}, {"a/./b", true},
		{"../etc/passwd", false}, {"a/../../b", false}, {"/etc/passwd", false}, {"", false},
		{"..", false}, {"a\\..\\b", false}, {"a/..", false}, {"nul\x00", false},
	} {
		_, err := SafeJoin("/models", tc.rel)
		if (err == nil) != tc.ok {
			t.Errorf("SafeJoin(%q) err %v, want ok=%v", tc.rel, err, tc.ok)
		}
		if err != nil && (!errors.Is(err, ErrUnsafePath) || !failure.IsTerminal(err) || failure.SubjectOf(err) != failure.MLflow) {
			t.Errorf("SafeJoin(%q) err %v is not a terminal MLflow ErrUnsafePath", tc.rel, err)
		}
	}
}

func TestFilesNamedBy(t *testing.T) {
	mlmodel := []byte(`artifact_path: mlflow-artifacts:/0/models/m-1/artifacts
flavors:
  python_function:
    env: {conda: conda.yaml, virtualenv: python_env.yaml}
    loader_module: mlflow.sklearn
    model_path: model.skops
  sklearn:
    pickled_model: model.skops
    code: null
  evil:
    data: ../../etc/shadow
saved_input_example_info:
  artifact_path: input_example.json
  serving_input_path: serving_input_example.json
`)
	got := filesNamedBy(mlmodel)
	want := map[string]bool{"model.skops": true, "requirements.txt": true, "serving_input_example.json": true}
	seen := map[string]bool{}
	for _, f := range got {
		seen[f] = true
		if f == "../../etc/shadow" {
			t.Error("an escaping path from MLmodel was kept")
		}
	}
	for f := range want {
		if !seen[f] {
			t.Errorf("%s missing from %v", f, got)
		}
	}
}

// TestDownloadFileRetries checks which failed downloads are tried again,
// with a server that fails a set number of times before serving the file.
func TestDownloadFileRetries(t *testing.T) {
	content := []byte("model bytes")
	sum := sha256.Sum256(content)
	tests := []struct {
		name     string
		failures int32
		fail     func(w http.ResponseWriter)
		wantKind failure.Kind
		wantOK   bool
		calls    int32
	}{
		{"503 then the file", 2, func(w http.ResponseWriter) { w.WriteHeader(http.StatusServiceUnavailable) }, 0, true, 3},
		{"cut short then the file", 1, func(w http.ResponseWriter) {
			w.Header().Set("Content-Length", strconv.Itoa(len(content)))
			w.Write(content[:3])
		}, 0, true, 2},
		{"503 beyond retries", 10, func(w http.ResponseWriter) { w.WriteHeader(http.StatusServiceUnavailable) }, failure.Unreachable, false, 3},
		{"404 is not retried", 10, func(w http.ResponseWriter) { w.WriteHeader(http.StatusNotFound) }, failure.NotFound, false, 1},
		{"403 is not retried", 10, func(w http.ResponseWriter) { w.WriteHeader(http.StatusForbidden) }, failure.Unauthorized, false, 1},
		{"a missing file answered with a 500 is not retried", 10, func(w http.ResponseWriter) {
			w.WriteHeader(http.StatusInternalServerError)
			fmt.Fprint(w, `{"error_code":"RESOURCE_DOES_NOT_EXIST","message":"no file"}`)
		}, failure.NotFound, false, 1},
		// The version's file is too large: that does not pass.
		{"over the size limit is not retried", 10, func(w http.ResponseWriter) { w.Write(make([]byte, 100)) }, failure.Invalid, false, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var calls atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if calls.Add(1) <= tc.failures {
					tc.fail(w)
					return
				}
				w.Write(content)
			}))
			defer srv.Close()
			c, err := New(srv.URL, WithRetries(2, time.Millisecond, 5*time.Millisecond), WithMaxArtifactBytes(64))
			if err != nil {
				t.Fatal(err)
			}
			u, _ := url.Parse(srv.URL + "/file")
			dir := t.TempDir()
			f, err := c.downloadFile(context.Background(), u, dir, "data/model.pkl", c.newBudget("m", "1"), 0)
			if tc.wantOK != (err == nil) {
				t.Fatalf("err %v", err)
			}
			if calls.Load() != tc.calls {
				t.Errorf("%d calls, want %d", calls.Load(), tc.calls)
			}
			if err != nil {
				if failure.KindOf(err) != tc.wantKind || failure.SubjectOf(err) != failure.MLflow {
					t.Errorf("kind %v subject %q, want %v MLflow (%v)", failure.KindOf(err), failure.SubjectOf(err), tc.wantKind, err)
				}
				return
			}
			got, err := os.ReadFile(filepath.Join(dir, "data", "model.pkl"))
			if err != nil || string(got) != string(content) {
				t.Fatalf("file %q %v", got, err)
			}
			if f.Path != "data/model.pkl" || f.Size != int64(len(content)) || f.SHA256 != hex.EncodeToString(sum[:]) {
				t.Errorf("manifest entry %+v", f)
			}
		})
	}
}

// TestDownloadFileRefusesUnsafePath checks that an unsafe path is a
// terminal failure about MLflow's answer, not a plain error retried for
// ever.
func TestDownloadFileRefusesUnsafePath(t *testing.T) {
	c, _ := New("http://mlflow")
	u, _ := url.Parse("http://mlflow/file")
	_, err := c.downloadFile(context.Background(), u, t.TempDir(), "../outside", c.newBudget("m", "1"), 0)
	if !errors.Is(err, ErrUnsafePath) || failure.KindOf(err) != failure.Invalid || failure.SubjectOf(err) != failure.MLflow {
		t.Errorf("err %v, want an Invalid MLflow ErrUnsafePath", err)
	}
}
