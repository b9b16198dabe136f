package imagebuild

// Fuzz targets for what reads untrusted input here: a model directory
// downloaded from an MLflow server that may be hostile. (A Secret's docker
// config is fuzzed in internal/registryauth.) Run one with
//
//	go test -run '^$' -fuzz '^FuzzModelLayer$' -fuzztime 60s ./internal/imagebuild/
//
// The seeds (f.Add and testdata/fuzz/) run with the unit tests.

import (
	"archive/tar"
	"errors"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mlflow-operator/mlflow-operator/internal/failure"
)

// A model script builds a model directory, one operation a line:
//
//	d <path>           a directory (and its parents)
//	f <path>           a file (0644) holding its path
//	x <path>           an executable file (0755)
//	l <path> <target>  a symbolic link
//	p <name>           a named pipe, at the top
//
// Paths are local; every operation goes through an os.Root of the
// directory, so that links made earlier cannot lead a later one out of it
// (the fuzzer runs as whoever runs the tests). Failing operations are
// skipped: the fuzzer makes many.
func buildModelScript(t *testing.T, dir, script string) {
	t.Helper()
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	lines := strings.Split(script, "\n")
	if len(lines) > 64 {
		lines = lines[:64]
	}
	for _, line := range lines {
		op, rest, _ := strings.Cut(line, " ")
		p, target, _ := strings.Cut(rest, " ")
		if !filepath.IsLocal(p) || strings.ContainsRune(p+target, 0) {
			continue
		}
		if op != "p" && op != "d" {
			root.MkdirAll(filepath.Dir(p), 0o755)
		}
		switch op {
		case "d":
			root.MkdirAll(p, 0o755)
		case "f":
			root.WriteFile(p, []byte(p), 0o644)
		case "x":
			root.WriteFile(p, []byte(p), 0o755)
		case "l":
			root.Symlink(target, p)
		case "p":
			if !strings.ContainsRune(p, '/') { // no parent to lead elsewhere
				syscall.Mkfifo(filepath.Join(dir, p), 0o644)
			}
		}
	}
}

func FuzzModelLayer(f *testing.F) {
	f.Add("f MLmodel\nd data\nf data/model.pkl\nx code/run.sh\nl model-link.pkl data/model.pkl")
	f.Add("d d/x\nl d/x/up ../..\nl evil d/x/up/..")     // a parent through an intermediate link
	f.Add("l top .\nl evil top/..")                      // a link to the root, then up
	f.Add("l a b\nl b c\nl c data/f\nf data/f")          // a chain ending inside
	f.Add("l loop1 loop2\nl loop2 loop1")                // a loop
	f.Add("l abs /etc/passwd")                           // absolute
	f.Add("d a/b\nl a/b/c ../../..\nf a/b/c/x")          // a write through a link leaving: refused by the root
	f.Add("p fifo\nf x")                                 // a named pipe
	f.Add("l self .\nl a/b/deep ../../self/self/x\nf x") // links through links to the root
	f.Fuzz(func(t *testing.T, script string) {
		dir := t.TempDir()
		buildModelScript(t, dir, script)
		opts := LayerOptions{ModTime: time.Unix(1_790_000_000, 0)}
		verr := ValidateModelDir(dir)
		l, err := NewModelLayer(dir, opts)
		if (verr == nil) != (err == nil) {
			t.Fatalf("ValidateModelDir says %v, NewModelLayer %v", verr, err)
		}
		if err != nil {
			if !errors.Is(err, ErrUnsafeEntry) {
				t.Fatalf("a directory of files, directories, links and pipes failed otherwise than as unsafe: %v", err)
			}
			if failure.KindOf(err) != failure.Invalid || failure.SubjectOf(err) != failure.Build {
				t.Fatalf("unsafe entry of kind %v, subject %q", failure.KindOf(err), failure.SubjectOf(err))
			}
			return
		}
		defer l.Close()

		// Every link of the directory resolves, on disk, inside it.
		realDir, err := filepath.EvalSymlinks(dir)
		if err != nil {
			t.Fatal(err)
		}
		filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.Type()&fs.ModeSymlink != 0 {
				to, err := filepath.EvalSymlinks(p)
				if err != nil {
					t.Errorf("accepted link %s does not resolve: %v", p, err)
				} else if to != realDir && !strings.HasPrefix(to, realDir+string(filepath.Separator)) {
					t.Errorf("accepted link %s resolves to %s, outside %s", p, to, realDir)
				}
			}
			return nil
		})

		// The layer, read back.
		rc, err := l.Uncompressed()
		if err != nil {
			t.Fatal(err)
		}
		defer rc.Close()
		model := strings.TrimPrefix(ModelPath, "/")
		names := map[string]bool{}
		var linksIn []*tar.Header
		tr := tar.NewReader(rc)
		for {
			h, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			name := strings.TrimSuffix(h.Name, "/")
			names[name] = true
			if name == "opt" || name == "opt/ml" {
				continue
			}
			if (name != model && !strings.HasPrefix(name, model+"/")) || path.Clean(name) != name {
				t.Fatalf("entry %q is not a clean path in %s", h.Name, ModelPath)
			}
			if h.Uid != 0 || h.Gid != 0 || h.Uname != "" || h.Gname != "" {
				t.Fatalf("entry %q owned by %d:%d", h.Name, h.Uid, h.Gid)
			}
			switch h.Typeflag {
			case tar.TypeDir:
				if h.Mode != 0o555 {
					t.Fatalf("directory %q mode %o", h.Name, h.Mode)
				}
			case tar.TypeReg:
				if h.Mode != 0o444 && h.Mode != 0o555 {
					t.Fatalf("file %q mode %o", h.Name, h.Mode)
				}
				got, _ := io.ReadAll(tr)
				want, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(strings.TrimPrefix(name, model))))
				if err != nil || string(got) != string(want) {
					t.Fatalf("file %q holds %q, the directory %q (%v)", h.Name, got, want, err)
				}
			case tar.TypeSymlink:
				linksIn = append(linksIn, h)
			default:
				t.Fatalf("entry %q of type %c", h.Name, h.Typeflag)
			}
		}
		// No link leaves the model directory, and each names an entry of
		// the layer (the image resolves it without the base's help).
		for _, h := range linksIn {
			to := path.Join(path.Dir(h.Name), h.Linkname)
			if path.IsAbs(h.Linkname) || (to != model && !strings.HasPrefix(to, model+"/")) {
				t.Fatalf("link %q -> %q leaves %s", h.Name, h.Linkname, ModelPath)
			}
			if !names[to] {
				t.Fatalf("link %q -> %q names no entry of the layer", h.Name, h.Linkname)
			}
		}

		// The same input, elsewhere, gives the same layer.
		other := t.TempDir()
		buildModelScript(t, other, script)
		l2, err := NewModelLayer(other, opts)
		if err != nil {
			t.Fatalf("the same script in another directory: %v", err)
		}
		defer l2.Close()
		d1, _ := l.Digest()
		d2, _ := l2.Digest()
		if d1 != d2 {
			t.Fatalf("the same script gave layers %s and %s", d1, d2)
		}
	})
}
