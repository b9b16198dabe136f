package mlflow

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mlflow-operator/mlflow-operator/internal/failure"
)

// Unit tests of the download limits: what one version's download may hold
// and how long it may go without a byte.

// fakeArtifacts is a tracking server whose version "3" of "iris" has the
// files of tree (path to content) and lists each with listed[path] as its
// size when set, else its length. fetched counts the files downloaded.
type fakeArtifacts struct {
	tree    map[string]string
	listed  map[string]int64
	fetched atomic.Int32
}

func (f *fakeArtifacts) serve(t *testing.T) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == apiPrefix+"model-versions/get-download-uri":
			fmt.Fprint(w, `{"artifact_uri":"mlflow-artifacts:/0/m/artifacts"}`)
		case r.URL.Path == artifactsPrefix:
			dir := strings.TrimPrefix(strings.TrimPrefix(r.URL.Query().Get("path"), "0/m/artifacts"), "/")
			var entries []string
			seen := map[string]bool{}
			for p, content := range f.tree {
				rest, ok := strings.CutPrefix(p, dir+"/")
				if dir == "" {
					rest, ok = p, true
				}
				if !ok {
					continue
				}
				name, _, isDir := strings.Cut(rest, "/")
				full := strings.TrimPrefix(dir+"/"+name, "/")
				if seen[full] {
					continue
				}
				seen[full] = true
				size, ok := f.listed[full]
				if !ok {
					size = int64(len(content))
				}
				entries = append(entries, fmt.Sprintf(`{"path":%q,"is_dir":%v,"file_size":%d}`, full, isDir, size))
			}
			fmt.Fprintf(w, `{"files":[%s]}`, strings.Join(entries, ","))
		default:
			p := strings.TrimPrefix(r.URL.Path, artifactsPrefix+"/0/m/artifacts/")
			content, ok := f.tree[p]
			if !ok {
				http.NotFound(w, r)
				return
			}
			f.fetched.Add(1)
			fmt.Fprint(w, content)
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestDownloadLimits(t *testing.T) {
	kib := func(n int) string { return strings.Repeat("x", n<<10) }
	tests := []struct {
		name string
		tree map[string]string
		// listed overrides sizes in the listing.
		listed  map[string]int64
		opts    []Option
		want    string
		fetched int32
	}{
		{"within the limits", map[string]string{"MLmodel": "a", "data/model.pkl": kib(2)},
			nil, []Option{WithDownloadLimits(3<<10, 3, 1)}, "", 2},
		{"total over the limit, told by the listing before any fetch",
			map[string]string{"MLmodel": "a", "a.bin": kib(6), "b/c.bin": kib(6) + strings.Repeat("x", 512)},
			nil, []Option{WithDownloadLimits(10<<10, 0, 0)},
			`version 3 of model "iris" has 12.5 KiB of artifacts; the limit is 10 KiB (operator flag --max-model-bytes)`, 0},
		{"more bytes than listed, caught while streaming",
			map[string]string{"a.bin": kib(6), "b.bin": kib(6)}, map[string]int64{"a.bin": 1, "b.bin": 1},
			[]Option{WithDownloadLimits(10<<10, 0, 0)},
			`version 3 of model "iris" has more than 10 KiB of artifacts; the limit is 10 KiB (operator flag --max-model-bytes)`, 2},
		{"a negative size does not make room", map[string]string{"a.bin": kib(6), "b.bin": kib(6)}, map[string]int64{"a.bin": -1 << 40},
			[]Option{WithDownloadLimits(10<<10, 0, 0)},
			`version 3 of model "iris" has more than 10 KiB of artifacts; the limit is 10 KiB (operator flag --max-model-bytes)`, 2},
		{"too many files", map[string]string{"a": "1", "b": "2", "c/d": "3"}, nil, []Option{WithDownloadLimits(0, 3, 0)},
			`version 3 of model "iris" has more than 3 files and folders; the limit is 3 (operator flag --max-model-files)`, 0},
		{"folders too deep", map[string]string{"MLmodel": "a", "a/b/c/d.bin": "x"}, nil, []Option{WithDownloadLimits(0, 0, 2)},
			`version 3 of model "iris" has artifacts in folders nested 3 deep; the limit is 2 (operator flag --max-model-depth)`, 0},
		{"no folders at depth 1", map[string]string{"MLmodel": "a", "a/b/x": "x"}, nil, []Option{WithDownloadLimits(0, 0, 1)},
			`version 3 of model "iris" has artifacts in folders nested 2 deep; the limit is 1 (operator flag --max-model-depth)`, 0},
		{"one file over the per-file limit", map[string]string{"MLmodel": "a", "big.bin": kib(2)}, nil,
			[]Option{WithMaxArtifactBytes(1 << 10)}, `artifact "big.bin" of version 3 of model "iris" is larger than 1 KiB, the limit for this file`, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fa := &fakeArtifacts{tree: tc.tree, listed: tc.listed}
			c, err := New(fa.serve(t).URL, append([]Option{WithRetries(0, 0, 0)}, tc.opts...)...)
			if err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			m, err := c.DownloadVersion(context.Background(), "iris", "3", dir)
			if tc.want == "" {
				if err != nil || len(m.Files) != len(tc.tree) {
					t.Fatalf("%+v %v", m, err)
				}
			} else if failure.KindOf(err) != failure.Invalid || failure.SubjectOf(err) != failure.MLflow || err.Error() != tc.want {
				t.Fatalf("err %v (%v %s), want an Invalid MLflow %q", err, failure.KindOf(err), failure.SubjectOf(err), tc.want)
			}
			if n := fa.fetched.Load(); n != tc.fetched {
				t.Errorf("%d files fetched, want %d", n, tc.fetched)
			}
			if entries, _ := os.ReadDir(dir); tc.fetched == 0 && len(entries) != 0 {
				t.Errorf("%d entries written before the refusal", len(entries))
			}
		})
	}
}

// TestMLmodelBounded checks that the MLmodel file of storage the server
// cannot list, which is read into memory, is bounded.
func TestMLmodelBounded(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case apiPrefix + "model-versions/get-download-uri":
			fmt.Fprint(w, `{"artifact_uri":"s3://bucket/models/3"}`)
		case "/model-versions/get-artifact":
			w.Write(make([]byte, maxMetadataBytes+1))
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	c, _ := New(srv.URL, WithRetries(0, 0, 0))
	_, err := c.DownloadVersion(context.Background(), "iris", "3", t.TempDir())
	want := `artifact "MLmodel" of version 3 of model "iris" is larger than 1 MiB, the limit for this file`
	if failure.KindOf(err) != failure.Invalid || err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("err %v, want Invalid %q", err, want)
	}
}

// stallingServer sends the first bytes of a body of 100 (or, with
// beforeHeaders, nothing) and then waits until the test ends.
func stallingServer(t *testing.T, beforeHeaders bool) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	done := make(chan struct{})
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		if !beforeHeaders {
			w.Header().Set("Content-Length", "100")
			w.Write([]byte("first bytes"))
			w.(http.Flusher).Flush()
		}
		select {
		case <-done:
		case <-r.Context().Done():
		}
	}))
	var once sync.Once
	t.Cleanup(func() { once.Do(func() { close(done) }); srv.Close() })
	return srv, &calls
}

func TestIdleTimeout(t *testing.T) {
	for _, beforeHeaders := range []bool{false, true} {
		t.Run(fmt.Sprintf("stalls before the headers: %v", beforeHeaders), func(t *testing.T) {
			srv, calls := stallingServer(t, beforeHeaders)
			c, _ := New(srv.URL, WithIdleTimeout(100*time.Millisecond), WithRetries(1, time.Millisecond, time.Millisecond))
			u := mustURL(t, srv.URL+"/file")
			start := time.Now()
			_, err := c.downloadFile(context.Background(), u, t.TempDir(), "model.pkl", c.newBudget("m", "1"), 0)
			if failure.KindOf(err) != failure.Unreachable || !errors.Is(err, errIdle) || !strings.Contains(err.Error(), "no data from the server for 100ms") {
				t.Fatalf("err %v, want Unreachable: no data", err)
			}
			if calls.Load() != 2 {
				t.Errorf("%d calls, want 2 (the idle download is tried again)", calls.Load())
			}
			if d := time.Since(start); d > 10*time.Second {
				t.Errorf("took %v", d)
			}
		})
	}
	// A slow server that keeps sending is not idle: the timeout is between
	// bytes, not for the whole file.
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "10")
		for range 10 {
			w.Write([]byte("x"))
			w.(http.Flusher).Flush()
			time.Sleep(40 * time.Millisecond)
		}
	}))
	defer slow.Close()
	c, _ := New(slow.URL, WithIdleTimeout(200*time.Millisecond), WithRetries(0, 0, 0))
	f, err := c.downloadFile(context.Background(), mustURL(t, slow.URL+"/file"), t.TempDir(), "model.pkl", c.newBudget("m", "1"), 0)
	if err != nil || f.Size != 10 {
		t.Fatalf("slow but steady: %+v %v", f, err)
	}
}

func TestHumanBytes(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1024: "1 KiB", 1536: "1.5 KiB", 10 << 30: "10 GiB",
		25 << 29: "12.5 GiB", 16 << 30: "16 GiB", 1 << 62: "4 EiB"} {
		if got := humanBytes(n); got != want {
			t.Errorf("humanBytes(%d) = %q, want %q", n, got, want)
		}
	}
}

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}
