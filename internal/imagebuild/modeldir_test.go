package imagebuild

import (
	"archive/tar"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mlflow-operator/mlflow-operator/internal/failure"
)

// readLayer reads a FileLayer's entries: path -> header and content.
func readLayer(t *testing.T, l *FileLayer) (map[string]*tar.Header, map[string][]byte) {
	t.Helper()
	rc, err := l.Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	hdrs, data := map[string]*tar.Header{}, map[string][]byte{}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return hdrs, data
		}
		if err != nil {
			t.Fatal(err)
		}
		hdrs[h.Name] = h
		if data[h.Name], err = io.ReadAll(tr); err != nil {
			t.Fatal(err)
		}
	}
}

// links makes the symbolic links name -> target below dir, parents first.
func links(t *testing.T, dir string, pairs ...string) {
	t.Helper()
	for i := 0; i < len(pairs); i += 2 {
		full := filepath.Join(dir, pairs[i])
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(pairs[i+1], full); err != nil {
			t.Fatal(err)
		}
	}
}

func TestLinksResolvedThroughChains(t *testing.T) {
	refused := []struct {
		name  string
		links []string // name, target, ...
		link  string   // the link the message must name
	}{
		// Each link below stays inside as text; the chain leaves.
		{"parent through an intermediate link", []string{"data/x/up", "../..", "evil", "data/x/up/.."}, "evil"},
		{"link to a link to the root, then up", []string{"top", ".", "evil", "top/.."}, "evil"},
		{"link to a link that leaves", []string{"a/b", "../..", "evil", "a/b/etc/passwd"}, "a/b"},
		{"absolute", []string{"evil", "/etc/passwd"}, "evil"},
		{"absolute into the model directory on disk", nil, "evil"}, // filled in below
		{"through a link to an absolute path", []string{"abs", "/etc", "zz/evil", "../abs/passwd"}, "abs"},
		{"dangling", []string{"evil", "missing"}, "evil"},
		{"dangling, climbing out from nothing", []string{"evil", "missing/../../x"}, "evil"},
		{"through a file", []string{"evil", "data/model.pkl/x"}, "evil"},
		{"loop", []string{"evil", "loop2", "loop2", "evil"}, "evil"},
		{"self", []string{"evil", "evil"}, "evil"},
	}
	for _, tc := range refused {
		t.Run(tc.name, func(t *testing.T) {
			dir := modelDir(t)
			if tc.links == nil {
				tc.links = []string{"evil", filepath.Join(dir, "data", "model.pkl")}
			}
			links(t, dir, tc.links...)
			for name, err := range map[string]error{"ValidateModelDir": ValidateModelDir(dir), "NewModelLayer": layerErr(dir)} {
				if !errors.Is(err, ErrUnsafeEntry) || failure.KindOf(err) != failure.Invalid || failure.SubjectOf(err) != failure.Build {
					t.Fatalf("%s: %v (kind %v, subject %q), want an invalid build for an unsafe entry", name, err, failure.KindOf(err), failure.SubjectOf(err))
				}
				if !strings.Contains(err.Error(), `"`+tc.link+`"`) {
					t.Errorf("%s: %q does not name the link %s", name, err, tc.link)
				}
			}
		})
	}

	// Links that end inside stay links, relative, straight to where the
	// chain ends.
	dir := modelDir(t)
	os.MkdirAll(filepath.Join(dir, "a", "b"), 0o755)
	links(t, dir,
		"a/ok", "../data/model.pkl",
		"chain1", "chain2",
		"chain2", "data/model.pkl",
		"d2", "data",
		"a/b/via-dir-link", "../../d2/model.pkl",
		"a/up", "..",
		"self", ".",
		"a/detour", "b/./../../a/b/../../code//run.sh",
		"a/b/top-then-down", "../../self/data",
	)
	l, err := NewModelLayer(dir, LayerOptions{})
	if err != nil {
		t.Fatalf("links inside refused: %v", err)
	}
	defer l.Close()
	hdrs, _ := readLayer(t, l)
	for name, want := range map[string]string{
		"model-link.pkl":    "data/model.pkl",
		"a/ok":              "../data/model.pkl",
		"chain1":            "data/model.pkl",
		"chain2":            "data/model.pkl",
		"d2":                "data",
		"a/b/via-dir-link":  "../../data/model.pkl",
		"a/up":              "..",
		"self":              ".",
		"a/detour":          "../code/run.sh",
		"a/b/top-then-down": "../../data",
	} {
		h := hdrs["opt/ml/model/"+name]
		if h == nil || h.Typeflag != tar.TypeSymlink || h.Linkname != want || h.Mode != 0o777 || h.Uid != 0 || h.Gid != 0 {
			t.Errorf("%s: %+v, want a link to %q owned by root", name, h, want)
		}
	}
}

// layerErr is NewModelLayer's error, the layer closed.
func layerErr(dir string) error {
	l, err := NewModelLayer(dir, LayerOptions{})
	if l != nil {
		l.Close()
	}
	return err
}

func TestModelFilesOwnedByRootReadOnly(t *testing.T) {
	dir := modelDir(t)
	// Writable by everyone on disk: the layer does not care.
	os.Chmod(filepath.Join(dir, "MLmodel"), 0o666)
	os.Chmod(filepath.Join(dir, "code", "run.sh"), 0o777)
	l, err := NewModelLayer(dir, LayerOptions{ModTime: time.Unix(1_790_000_000, 0)})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	hdrs, _ := readLayer(t, l)
	want := map[string]int64{
		"opt/": 0o755, "opt/ml/": 0o755, // the parents, as in any image
		"opt/ml/model/": 0o555, "opt/ml/model/data/": 0o555, "opt/ml/model/code/": 0o555,
		"opt/ml/model/MLmodel": 0o444, "opt/ml/model/data/model.pkl": 0o444, "opt/ml/model/code/run.sh": 0o555,
		"opt/ml/model/model-link.pkl": 0o777,
	}
	for name, h := range hdrs {
		if h.Uid != 0 || h.Gid != 0 || h.Uname != "" || h.Gname != "" {
			t.Errorf("%s: owner %d:%d (%q:%q), want 0:0 without names", name, h.Uid, h.Gid, h.Uname, h.Gname)
		}
		if h.Mode&0o222 != 0 && h.Typeflag != tar.TypeSymlink && strings.HasPrefix(name, "opt/ml/model/") {
			t.Errorf("%s: mode %o is writable", name, h.Mode)
		}
		if m, ok := want[name]; ok && h.Mode != m {
			t.Errorf("%s: mode %o, want %o", name, h.Mode, m)
		}
	}
	for name := range want {
		if hdrs[name] == nil {
			t.Errorf("%s missing", name)
		}
	}
}

func TestSwappedFileRefused(t *testing.T) {
	// A file replaced between the walk's Lstat and its open: by a link
	// leaving the model directory, by a link to another model file, by
	// another file. None of them may be archived under the file's name.
	outside := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(outside, []byte("SECRET, NOT PART OF THE MODEL"), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, swap := range map[string]func(dir, p string) error{
		"link outside": func(_, p string) error {
			os.Remove(p)
			return os.Symlink(outside, p)
		},
		"relative link outside": func(dir, p string) error {
			os.Remove(p)
			rel, _ := filepath.Rel(filepath.Dir(p), outside)
			return os.Symlink(rel, p)
		},
		"link inside": func(_, p string) error {
			os.Remove(p)
			return os.Symlink("MLmodel", p)
		},
		"other file": func(dir, p string) error {
			other := filepath.Join(dir, ".other")
			if err := os.WriteFile(other, []byte("other"), 0o644); err != nil {
				return err
			}
			return os.Rename(other, p)
		},
	} {
		t.Run(name, func(t *testing.T) {
			dir := modelDir(t)
			small := filepath.Join(dir, "small.txt")
			if err := os.WriteFile(small, []byte("four"), 0o644); err != nil {
				t.Fatal(err)
			}
			testHookBeforeOpen = func(rel string) {
				if rel == "small.txt" {
					if err := swap(dir, small); err != nil {
						t.Error(err)
					}
				}
			}
			t.Cleanup(func() { testHookBeforeOpen = nil })
			l, err := NewModelLayer(dir, LayerOptions{})
			if err == nil {
				_, data := readLayer(t, l)
				l.Close()
				t.Fatalf("archived small.txt as %q", data["opt/ml/model/small.txt"])
			}
			// What Build makes of it: retried, the build's.
			if err := modelFilesError("archive the model", err); failure.KindOf(err) != failure.Other || failure.SubjectOf(err) != failure.Build {
				t.Errorf("err %v (kind %v, subject %q), want a retried build failure", err, failure.KindOf(err), failure.SubjectOf(err))
			}
		})
	}
}

func TestStreamedBuildKeepsModelFailure(t *testing.T) {
	// A model file that changes during a streamed upload fails the build as
	// a build failure, not as the registry's.
	_, host := newRegistry(t)
	base := pushBase(t, host, "application/vnd.docker.distribution.manifest.v2+json")
	dir := modelDir(t)
	testHookBeforeOpen = func(rel string) {
		if rel == "MLmodel" {
			other := filepath.Join(dir, ".other")
			os.WriteFile(other, []byte("changed"), 0o644)
			os.Rename(other, filepath.Join(dir, "MLmodel"))
		}
	}
	t.Cleanup(func() { testHookBeforeOpen = nil })
	_, err := (&Builder{}).Build(context.Background(), request(dir, base, host+"/models/iris", "t"))
	if failure.KindOf(err) != failure.Other || failure.SubjectOf(err) != failure.Build || !strings.Contains(err.Error(), "changed while") {
		t.Fatalf("err %v (kind %v, subject %q), want a build failure naming the change", err, failure.KindOf(err), failure.SubjectOf(err))
	}
}

func TestNamesThatAreNotUTF8Archived(t *testing.T) {
	// A tar holds any name; the walk must too (found by FuzzModelLayer:
	// fs.WalkDir over an os.Root's fs.FS refuses such names).
	dir := modelDir(t)
	if err := os.MkdirAll(filepath.Join(dir, "\x96"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "\x96", "0"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	l, err := NewModelLayer(dir, LayerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if _, data := readLayer(t, l); string(data["opt/ml/model/\x96/0"]) != "x" {
		t.Errorf("the file below a directory named %q is missing", "\x96")
	}
}
