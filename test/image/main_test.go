// Package image tests the operator's own image as `make image` builds it
// (hack/operator-image): both platforms, a static binary, the user, the
// files, the labels, a digest that does not change between builds, a push
// to a real registry (Debian's docker-registry) and back, and that the
// Dockerfile describes the same image.
//
// The binaries are built once for each platform (go build is what takes
// time: several minutes with a cold build cache, seconds after `make image`)
// and every test assembles images from them; one test builds the amd64
// binary a second time.
package image

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
)

// What the images of these tests are built with.
const (
	testVersion  = "v0.0.0-test"
	testRevision = "0123456789abcdef0123456789abcdef01234567"
	testSource   = "https://example.com/mlflow-operator"
	testLicenses = "Apache-2.0"
	testEpoch    = "1767225600" // 2026-01-01T00:00:00Z
	testCreated  = "2026-01-01T00:00:00Z"
)

var archs = []string{"amd64", "arm64"}

// The shared state TestMain builds.
var (
	root     string            // the repository
	work     string            // the temporary folder of this run
	tool     string            // the operator-image binary
	caDeb    string            // the fetched ca-certificates .deb
	bins     map[string]string // arch -> /manager built once
	sidecars map[string]string // arch -> /request-metrics built once
	built    string            // the OCI layout built from bins
	digest   string            // its index digest
)

func TestMain(m *testing.M) { os.Exit(run(m)) }

func run(m *testing.M) int {
	_, file, _, _ := runtime.Caller(0)
	root = filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
	var err error
	if work, err = os.MkdirTemp("", "operator-image-test-"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(work)
	if err := setup(); err != nil {
		fmt.Fprintln(os.Stderr, "test/image setup:", err)
		return 1
	}
	return m.Run()
}

func setup() error {
	tool = filepath.Join(work, "operator-image")
	if _, err := command("go", "build", "-o", tool, "./hack/operator-image"); err != nil {
		return err
	}
	out, err := command(tool, "fetch-ca", "-cache", filepath.Join(root, "bin", "operator-image"))
	if err != nil {
		return err
	}
	caDeb = strings.TrimSpace(out)
	t := time.Now()
	if _, err := command(tool, "compile", "-out", filepath.Join(work, "bins"), "-version", testVersion); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "test/image: built the operator for %s in %s\n", strings.Join(archs, " and "), time.Since(t).Round(time.Second))
	bins, sidecars = map[string]string{}, map[string]string{}
	for _, a := range archs {
		bins[a] = filepath.Join(work, "bins", "manager-linux-"+a)
		sidecars[a] = filepath.Join(work, "bins", "request-metrics-linux-"+a)
	}
	built = filepath.Join(work, "image")
	digest, err = buildLayout(built, bins)
	return err
}

// command runs a program in the repository and returns its standard output;
// its standard error goes into the error.
func command(name string, args ...string) (string, error) {
	return commandEnv(nil, name, args...)
}

// commandEnv is command with more environment variables.
func commandEnv(env []string, name string, args ...string) (string, error) {
	cmd := exec.Command(name, args...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("%s %s: %v\n%s", filepath.Base(name), strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String(), nil
}

// buildArgs are the build command's flags for these tests, with the given
// /manager binaries (arch -> path) and the /request-metrics built once.
func buildArgs(out string, binaries map[string]string) []string {
	args := []string{"build", "-out", out, "-ca-deb", caDeb, "-epoch", testEpoch,
		"-version", testVersion, "-revision", testRevision, "-source", testSource, "-licenses", testLicenses}
	var plats []string
	for _, a := range archs {
		if p, ok := binaries[a]; ok {
			args = append(args, "-binary", "linux/"+a+"="+p, "-request-metrics-binary", "linux/"+a+"="+sidecars[a])
			plats = append(plats, "linux/"+a)
		}
	}
	return append(args, "-platforms", strings.Join(plats, ","))
}

// buildLayout builds an OCI layout from the binaries and returns the index
// digest the tool printed.
func buildLayout(out string, binaries map[string]string) (string, error) {
	stdout, err := command(tool, buildArgs(out, binaries)...)
	return strings.TrimSpace(stdout), err
}

// index reads the one image index of an OCI layout.
func index(t *testing.T, dir string) v1.ImageIndex {
	t.Helper()
	p, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	im, err := p.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(im.Manifests) != 1 || !im.Manifests[0].MediaType.IsIndex() {
		t.Fatalf("%s: want one image index in index.json, found %+v", dir, im.Manifests)
	}
	idx, err := p.ImageIndex(im.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	return idx
}

// platformImages are the images of an index by architecture, checking that
// each is there once, for linux.
func platformImages(t *testing.T, idx v1.ImageIndex) map[string]v1.Image {
	t.Helper()
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]v1.Image{}
	for _, d := range im.Manifests {
		if d.Platform == nil || d.Platform.OS != "linux" {
			t.Fatalf("manifest %s: platform %+v, want linux/...", d.Digest, d.Platform)
		}
		if _, dup := out[d.Platform.Architecture]; dup {
			t.Fatalf("two manifests for linux/%s", d.Platform.Architecture)
		}
		img, err := idx.Image(d.Digest)
		if err != nil {
			t.Fatal(err)
		}
		out[d.Platform.Architecture] = img
	}
	return out
}

// entry is one tar entry of an image, all layers in order.
type entry struct {
	name     string
	typ      byte
	mode     int64
	uid, gid int
	uname    string
	gname    string
	mtime    time.Time
	data     []byte
}

// entries lists every layer's tar entries, with the content of regular files.
func entries(t *testing.T, img v1.Image) []entry {
	t.Helper()
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	var out []entry
	for _, l := range layers {
		rc, err := l.Uncompressed()
		if err != nil {
			t.Fatal(err)
		}
		tr := tar.NewReader(rc)
		for {
			h, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			data, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, entry{h.Name, h.Typeflag, h.Mode, h.Uid, h.Gid, h.Uname, h.Gname, h.ModTime.UTC(), data})
		}
		rc.Close()
	}
	return out
}

func file(t *testing.T, es []entry, name string) []byte {
	t.Helper()
	for _, e := range es {
		if e.name == name {
			return e.data
		}
	}
	t.Fatalf("no %s in the image", name)
	return nil
}
