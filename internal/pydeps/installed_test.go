package pydeps

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"runtime"
	"sort"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// tarEntry is one tar entry of a test layer.
type tarEntry struct {
	name     string
	body     string
	typeflag byte // tar.TypeReg when zero
	linkname string
}

// testMetadata returns a METADATA file with a description that mentions
// other names and versions, which must not be read as headers.
func testMetadata(name, version string) string {
	return fmt.Sprintf("Metadata-Version: 2.1\nName: %s\nVersion: %s\nSummary: test\n\nName: not-%s\nVersion: 0.0.0\n", name, version, name)
}

// testTar builds an uncompressed tar from entries.
func testTar(t testing.TB, entries []tarEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		hdr := &tar.Header{Name: e.name, Typeflag: e.typeflag, Linkname: e.linkname, Mode: 0o644}
		switch hdr.Typeflag {
		case 0:
			hdr.Typeflag = tar.TypeReg
			hdr.Size = int64(len(e.body))
		case tar.TypeDir:
			hdr.Mode = 0o755
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if hdr.Typeflag == tar.TypeReg {
			if _, err := io.WriteString(tw, e.body); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// testImage builds an image with one layer per entry list, in order.
func testImage(t testing.TB, layers ...[]tarEntry) v1.Image {
	t.Helper()
	var ls []v1.Layer
	for _, entries := range layers {
		data := testTar(t, entries)
		l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
			return io.NopCloser(bytes.NewReader(data)), nil
		})
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
	}
	img, err := mutate.AppendLayers(empty.Image, ls...)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// testDist is a dist-info METADATA entry under site.
func testDist(site, folder, name, version string) tarEntry {
	return tarEntry{name: site + "/" + folder + ".dist-info/METADATA", body: testMetadata(name, version)}
}

func TestInspectImageLayersAndWhiteouts(t *testing.T) {
	const site = "usr/local/lib/python3.11/site-packages"
	base := []tarEntry{
		{name: "usr/", typeflag: tar.TypeDir},
		{name: "usr/local/lib/python3.11/", typeflag: tar.TypeDir},
		{name: site + "/", typeflag: tar.TypeDir},
		testDist(site, "numpy-1.26.4", "numpy", "1.26.4"),
		testDist(site, "requests-2.31.0", "requests", "2.31.0"),
		testDist(site, "scikit_learn-1.9.1", "scikit-learn", "1.9.1"),
		testDist(site, "six-1.16.0", "six", "1.16.0"),
		testDist(site, "Flask-3.0.0", "Flask", "3.0.0"),
		{name: site + "/flask-3.0.0.dist-info/RECORD", body: "flask/__init__.py,,\n"},
	}
	upgrade := []tarEntry{
		// pip upgraded numpy: the old dist-info is whited out, the new one added.
		// The whiteout comes after the addition to check that a whiteout only
		// hides lower layers.
		testDist(site, "numpy-2.4.6", "numpy", "2.4.6"),
		{name: site + "/.wh.numpy-1.26.4.dist-info"},
		// requests was uninstalled.
		{name: "./" + site + "/.wh.requests-2.31.0.dist-info"},
		// six was upgraded without a whiteout: the later layer wins.
		testDist(site, "six-1.17.0", "six", "1.17.0"),
		// A whiteout of one file inside a dist-info removes that file only.
		{name: site + "/Flask-3.0.0.dist-info/.wh.RECORD"},
		// AUFS bookkeeping entries are not whiteouts of anything.
		{name: site + "/.wh..wh.plnk"},
	}
	img := testImage(t, base, upgrade)

	got, err := InspectImage(img)
	if err != nil {
		t.Fatalf("InspectImage: %v", err)
	}
	want := &Installed{
		Python:     "3.11",
		PythonFull: "3.11", // no PYTHON_VERSION in the config
		Packages: map[string]string{
			"numpy":        "2.4.6",
			"scikit-learn": "1.9.1",
			"six":          "1.17.0",
			"flask":        "3.0.0",
		},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("InspectImage =\n  %+v\nwant\n  %+v", got, want)
	}
}

func TestInspectImageOpaqueAndRemovedPython(t *testing.T) {
	const site311 = "usr/local/lib/python3.11/site-packages"
	const site312 = "usr/local/lib/python3.12/site-packages"
	base := []tarEntry{
		testDist(site311, "numpy-1.26.4", "numpy", "1.26.4"),
		testDist(site311, "pandas-2.2.0", "pandas", "2.2.0"),
		testDist("opt/venv/lib/python3.11/site-packages", "torch-2.1.0+cpu", "torch", "2.1.0+cpu"),
		testDist("opt/venv/lib/python3.11/site-packages", "pillow-10.0.0", "pillow", "10.0.0"),
	}
	rebuild := []tarEntry{
		// Python 3.11 was removed and 3.12 installed.
		{name: "usr/local/lib/.wh.python3.11"},
		{name: "usr/local/lib/python3.12/", typeflag: tar.TypeDir},
		testDist(site312, "numpy-2.4.6", "numpy", "2.4.6"),
		// The venv's site-packages was replaced as a whole.
		{name: "opt/venv/lib/python3.11/site-packages/", typeflag: tar.TypeDir},
		{name: "opt/venv/lib/python3.11/site-packages/.wh..wh..opq"},
		testDist("opt/venv/lib/python3.11/site-packages", "torch-2.4.0", "torch", "2.4.0"),
	}
	img := testImage(t, base, rebuild)

	got, err := InspectImage(img)
	if err != nil {
		t.Fatalf("InspectImage: %v", err)
	}
	want := map[string]string{"numpy": "2.4.6", "torch": "2.4.0"}
	if !reflect.DeepEqual(got.Packages, want) {
		t.Errorf("Packages = %v, want %v", got.Packages, want)
	}
	// One distribution each under 3.11 (venv) and 3.12: the newer wins the tie.
	if got.Python != "3.12" {
		t.Errorf("Python = %q, want 3.12", got.Python)
	}
}

func TestInspectImageRootOpaque(t *testing.T) {
	base := []tarEntry{testDist("usr/lib/python3.9/site-packages", "six-1.16.0", "six", "1.16.0")}
	wipe := []tarEntry{{name: ".wh..wh..opq"}, {name: "etc/hostname", body: "x\n"}}
	got, err := InspectImage(testImage(t, base, wipe))
	if err != nil {
		t.Fatalf("InspectImage: %v", err)
	}
	if len(got.Packages) != 0 || got.Python != "" {
		t.Errorf("InspectImage = %+v, want nothing after an opaque root", got)
	}
}

func TestInspectImagePythonFolder(t *testing.T) {
	tests := []struct {
		name    string
		entries []tarEntry
		want    string
	}{
		{"none", []tarEntry{{name: "etc/os-release", body: "ID=debian\n"}}, ""},
		{"usr/lib", []tarEntry{{name: "usr/lib/python3.11/os.py", body: "#\n"}}, "3.11"},
		{"usr/local/lib dir entry", []tarEntry{{name: "usr/local/lib/python3.12/", typeflag: tar.TypeDir}}, "3.12"},
		{"lib at the root", []tarEntry{{name: "./lib/python3.10/", typeflag: tar.TypeDir}}, "3.10"},
		{"absolute tar names", []tarEntry{{name: "/usr/lib/python3.13/abc.py", body: "#\n"}}, "3.13"},
		// mutate.Extract refuses such a tar; reading it as rooted is harmless here.
		{"dot-dot tar names", []tarEntry{{name: "../usr/lib/python3.12/abc.py", body: "#\n"}}, "3.12"},
		{"not a python folder", []tarEntry{
			{name: "usr/lib/python3/dist-packages/", typeflag: tar.TypeDir},
			{name: "usr/lib/python3.11-config/", typeflag: tar.TypeDir},
			{name: "usr/share/python3.11/", typeflag: tar.TypeDir},
		}, ""},
		{"highest folder without packages", []tarEntry{
			{name: "usr/lib/python3.9/", typeflag: tar.TypeDir},
			{name: "usr/lib/python3.11/", typeflag: tar.TypeDir},
			{name: "usr/lib/python3.10/", typeflag: tar.TypeDir},
		}, "3.11"},
		{"folder holding the packages", []tarEntry{
			{name: "usr/lib/python3.12/", typeflag: tar.TypeDir},
			testDist("usr/local/lib/python3.10/site-packages", "a-1", "a", "1"),
			testDist("usr/local/lib/python3.10/site-packages", "b-1", "b", "1"),
		}, "3.10"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := InspectImage(testImage(t, tt.entries))
			if err != nil {
				t.Fatalf("InspectImage: %v", err)
			}
			if got.Python != tt.want {
				t.Errorf("Python = %q, want %q", got.Python, tt.want)
			}
			if got.PythonFull != tt.want {
				t.Errorf("PythonFull = %q, want %q (the folder's, with no PYTHON_VERSION)", got.PythonFull, tt.want)
			}
		})
	}
}

func TestInspectImageDistPackages(t *testing.T) {
	entries := []tarEntry{
		{name: "usr/lib/python3.11/", typeflag: tar.TypeDir},
		testDist("usr/lib/python3/dist-packages", "PyYAML-6.0.1", "PyYAML", "6.0.1"),
		testDist("usr/lib/python3/dist-packages", "python_apt-2.6.0", "python-apt", "2.6.0"),
		// Old-style egg-info from a Debian package.
		{name: "usr/lib/python3/dist-packages/six-1.16.0.egg-info/PKG-INFO", body: testMetadata("six", "1.16.0")},
		// Headers missing: the folder name is used.
		{name: "usr/lib/python3/dist-packages/chardet-5.1.0.dist-info/METADATA", body: "Metadata-Version: 2.1\n\nno headers\n"},
		// A symbolic link named METADATA is not read.
		{name: "usr/lib/python3/dist-packages/linked-1.0.dist-info/METADATA", typeflag: tar.TypeSymlink,
			linkname: "../PyYAML-6.0.1.dist-info/METADATA"},
		// Not metadata of an installed distribution.
		{name: "usr/share/doc/foo-1.0.dist-info/METADATA", body: testMetadata("foo", "1.0")},
		{name: "usr/lib/python3/dist-packages/bar-1.0.dist-info/RECORD", body: "Name: bar\nVersion: 1.0\n"},
	}
	got, err := InspectImage(testImage(t, entries))
	if err != nil {
		t.Fatalf("InspectImage: %v", err)
	}
	want := &Installed{
		Python:     "3.11",
		PythonFull: "3.11", // no PYTHON_VERSION in the config
		Packages: map[string]string{
			"pyyaml":     "6.0.1",
			"python-apt": "2.6.0",
			"six":        "1.16.0",
			"chardet":    "5.1.0",
		},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("InspectImage =\n  %+v\nwant\n  %+v", got, want)
	}
}

func TestInspectImageLargeMetadata(t *testing.T) {
	// A header line longer than the read buffer, before Version, and a long
	// description must neither fail nor hide the headers. The folder name
	// disagrees with the headers, which win.
	body := "Metadata-Version: 2.1\nName: big\nSummary: " + strings.Repeat("Version: 9\t", 50_000) + "\nVersion: 1.2.3\n\n" + strings.Repeat("text\n", 100_000)
	entries := []tarEntry{{name: "usr/lib/python3.11/site-packages/big-0.0.1.dist-info/METADATA", body: body}}
	got, err := InspectImage(testImage(t, entries))
	if err != nil {
		t.Fatalf("InspectImage: %v", err)
	}
	if got.Packages["big"] != "1.2.3" {
		t.Errorf("Packages = %v, want big 1.2.3", got.Packages)
	}
}

func TestInspectImageNil(t *testing.T) {
	if _, err := InspectImage(nil); err == nil {
		t.Error("InspectImage(nil) succeeded, want an error")
	}
}

// withConfig returns img with a platform ("linux/arm/v7") and environment
// variables in its config, as a registry serves them.
func withConfig(t testing.TB, img v1.Image, platform string, env ...string) v1.Image {
	t.Helper()
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cfg = cfg.DeepCopy()
	parts := strings.SplitN(platform, "/", 3)
	cfg.OS = parts[0]
	if len(parts) > 1 {
		cfg.Architecture = parts[1]
	}
	if len(parts) > 2 {
		cfg.Variant = parts[2]
	}
	cfg.Config.Env = env
	out, err := mutate.ConfigFile(img, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestInspectImageConfig(t *testing.T) {
	folder := func(py string) []tarEntry {
		return []tarEntry{{name: "usr/local/lib/python" + py + "/", typeflag: tar.TypeDir}}
	}
	const path = "PATH=/usr/local/bin:/usr/bin"
	tests := []struct {
		name       string
		entries    []tarEntry
		platform   string
		env        []string
		wantPython string
		wantFull   string
		wantOS     string
		wantArch   string
		wantVar    string
	}{
		{"official python image", folder("3.11"), "linux/amd64", []string{path, "LANG=C.UTF-8", "PYTHON_VERSION=3.11.7"},
			"3.11", "3.11.7", "linux", "amd64", ""},
		{"arm variant", folder("3.12"), "linux/arm/v7", []string{"PYTHON_VERSION=3.12.1"},
			"3.12", "3.12.1", "linux", "arm", "v7"},
		{"release candidate", folder("3.13"), "linux/arm64", []string{"PYTHON_VERSION=3.13.0rc2"},
			"3.13", "3.13.0rc2", "linux", "arm64", ""},
		// The packages live in another python than the one PYTHON_VERSION names.
		{"PYTHON_VERSION of another python", folder("3.11"), "linux/amd64", []string{"PYTHON_VERSION=3.12.1"},
			"3.11", "3.11", "linux", "amd64", ""},
		// A later layer removed the python: the leftover variable says nothing.
		{"no python folder", []tarEntry{{name: "etc/hostname", body: "x\n"}}, "linux/amd64", []string{"PYTHON_VERSION=3.11.7"},
			"", "", "linux", "amd64", ""},
		{"not a version", folder("3.11"), "linux/amd64", []string{"PYTHON_VERSION=latest"},
			"3.11", "3.11", "linux", "amd64", ""},
		{"similar names", folder("3.11"), "linux/amd64", []string{"PYTHON_VERSION_EXTRA=3.11.9", "MY_PYTHON_VERSION=3.11.8", "PYTHON_VERSION"},
			"3.11", "3.11", "linux", "amd64", ""},
		{"no platform", folder("3.11"), "", nil, "3.11", "3.11", "", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			img := withConfig(t, testImage(t, tt.entries), tt.platform, tt.env...)
			got, err := InspectImage(img)
			if err != nil {
				t.Fatalf("InspectImage: %v", err)
			}
			if got.Python != tt.wantPython || got.PythonFull != tt.wantFull {
				t.Errorf("Python, PythonFull = %q, %q; want %q, %q", got.Python, got.PythonFull, tt.wantPython, tt.wantFull)
			}
			if got.OS != tt.wantOS || got.Architecture != tt.wantArch || got.Variant != tt.wantVar {
				t.Errorf("platform = %q/%q/%q, want %q/%q/%q", got.OS, got.Architecture, got.Variant, tt.wantOS, tt.wantArch, tt.wantVar)
			}
		})
	}
}

func TestInspectImageLaterLayerWins(t *testing.T) {
	const site = "usr/lib/python3.11/site-packages"
	base := []tarEntry{
		testDist(site, "six-1.17.0", "six", "1.17.0"),
		// Two versions in one layer (a half-done upgrade): the higher wins.
		testDist(site, "numpy-2.0.0", "numpy", "2.0.0"),
		testDist(site, "numpy-1.26.4", "numpy", "1.26.4"),
	}
	// A downgrade in a later layer without a whiteout: the later layer wins
	// although its version is lower.
	downgrade := []tarEntry{testDist(site, "six-1.16.0", "six", "1.16.0")}
	got, err := InspectImage(testImage(t, base, downgrade))
	if err != nil {
		t.Fatalf("InspectImage: %v", err)
	}
	want := map[string]string{"six": "1.16.0", "numpy": "2.0.0"}
	if !reflect.DeepEqual(got.Packages, want) {
		t.Errorf("Packages = %v, want %v", got.Packages, want)
	}
}

// filler is a block of bytes for sizedReader.
var filler = bytes.Repeat([]byte("x"), 32<<10)

// sizedReader yields n filler bytes without holding them.
type sizedReader struct{ n int64 }

func (r *sizedReader) Read(p []byte) (int, error) {
	if r.n <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > r.n {
		p = p[:r.n]
	}
	n := copy(p, filler)
	r.n -= int64(n)
	return n, nil
}

func TestInspectImageStreams(t *testing.T) {
	// A 32 MiB layer written on the fly: InspectImage must read through it
	// with a small, fixed amount of memory (about 2 MiB today, mostly tar
	// and hashing buffers), whatever the layer's size.
	const files, fileSize = 32, 1 << 20
	opener := func() (io.ReadCloser, error) {
		pr, pw := io.Pipe()
		go func() {
			tw := tar.NewWriter(pw)
			for i := range files {
				hdr := &tar.Header{Name: fmt.Sprintf("usr/share/data/blob-%02d.bin", i), Typeflag: tar.TypeReg, Mode: 0o644, Size: fileSize}
				if err := tw.WriteHeader(hdr); err != nil {
					pw.CloseWithError(err)
					return
				}
				if _, err := io.Copy(tw, &sizedReader{n: fileSize}); err != nil {
					pw.CloseWithError(err)
					return
				}
			}
			meta := testMetadata("big", "1.0")
			hdr := &tar.Header{Name: "usr/lib/python3.11/site-packages/big-1.0.dist-info/METADATA", Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(meta))}
			if err := tw.WriteHeader(hdr); err != nil {
				pw.CloseWithError(err)
				return
			}
			if _, err := io.WriteString(tw, meta); err != nil {
				pw.CloseWithError(err)
				return
			}
			pw.CloseWithError(tw.Close())
		}()
		return pr, nil
	}
	layer, err := tarball.LayerFromOpener(opener)
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		t.Fatal(err)
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	got, err := InspectImage(img)
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatalf("InspectImage: %v", err)
	}
	if got.Packages["big"] != "1.0" {
		t.Errorf("Packages = %v, want big 1.0 after the blobs", got.Packages)
	}
	const limit = 8 << 20
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > limit {
		t.Errorf("InspectImage allocated %d bytes for a %d byte layer, want under %d: it must stream", alloc, files*fileSize, limit)
	}
}

func TestNormalizeName(t *testing.T) {
	tests := map[string]string{
		"scikit-learn":       "scikit-learn",
		"Scikit_Learn":       "scikit-learn",
		"zope.interface":     "zope-interface",
		"Foo.__-Bar":         "foo-bar",
		"mlflow_skinny":      "mlflow-skinny",
		"charset-normalizer": "charset-normalizer",
	}
	for in, want := range tests {
		if got := normalizeName(in); got != want {
			t.Errorf("normalizeName(%q) = %q, want %q", in, got, want)
		}
	}
}

// pythonEnvDir returns the project's Python environment folder, or
// skips the test when it has not been created.
func pythonEnvDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("MLFLOW_PYTHON_ENV")
	if dir == "" {
		out, err := exec.Command("bash", filepath.Join("..", "..", "hack", "python-env.sh"), "--print-dir").Output()
		if err != nil {
			t.Skipf("cannot locate the Python environment (hack/python-env.sh --print-dir: %v); run hack/python-env.sh (make test always creates it)", err)
		}
		dir = strings.TrimSpace(string(out))
		// python-env.sh writes the stamp last: without it the environment
		// is still being installed, or its installation failed.
		if _, err := os.Stat(filepath.Join(dir, ".complete")); err != nil {
			t.Skipf("Python environment %s is not complete; run hack/python-env.sh (make test always creates it)", dir)
		}
	}
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		t.Skipf("Python environment %s does not exist; run hack/python-env.sh (make test always creates it)", dir)
	}
	return dir
}

// streamLayer returns a layer whose tar is streamed from the given
// files each time it is opened; names maps each file to its path in the layer.
func streamLayer(t *testing.T, files []string, names map[string]string) v1.Layer {
	t.Helper()
	opener := func() (io.ReadCloser, error) {
		pr, pw := io.Pipe()
		go func() {
			tw := tar.NewWriter(pw)
			for _, f := range files {
				if err := copyFile(tw, f, names[f]); err != nil {
					pw.CloseWithError(err)
					return
				}
			}
			pw.CloseWithError(tw.Close())
		}()
		return pr, nil
	}
	l, err := tarball.LayerFromOpener(opener)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// copyFile writes one file into tw under name.
func copyFile(tw *tar.Writer, file, name string) error {
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if err := tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: fi.Size()}); err != nil {
		return err
	}
	_, err = io.Copy(tw, f)
	return err
}

func TestInspectImageRealMetadata(t *testing.T) {
	envDir := pythonEnvDir(t)
	files, err := filepath.Glob(filepath.Join(envDir, "lib", "python3.*", "site-packages", "*.dist-info", "METADATA"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Skipf("no dist-info METADATA under %s; run hack/python-env.sh (make test always creates it)", envDir)
	}
	sort.Strings(files)
	names := map[string]string{}
	var pyFolder string
	for _, f := range files {
		dist := filepath.Base(filepath.Dir(f))
		pyFolder = filepath.Base(filepath.Dir(filepath.Dir(filepath.Dir(f)))) // python3.X
		names[f] = "usr/local/lib/" + pyFolder + "/site-packages/" + dist + "/METADATA"
	}
	img, err := mutate.AppendLayers(empty.Image, streamLayer(t, files, names))
	if err != nil {
		t.Fatal(err)
	}

	in, err := InspectImage(img)
	if err != nil {
		t.Fatalf("InspectImage: %v", err)
	}
	if want := strings.TrimPrefix(pyFolder, "python"); in.Python != want {
		t.Errorf("Python = %q, want %q", in.Python, want)
	}
	if len(in.Packages) != len(files) {
		t.Errorf("found %d distributions, want %d (one per METADATA file)", len(in.Packages), len(files))
	}
	for name, want := range map[string]string{"mlflow": "3.17.2", "scikit-learn": "1.9.1", "mlflow-skinny": "3.17.2"} {
		if got := in.Packages[name]; got != want {
			t.Errorf("Packages[%q] = %q, want %q", name, got, want)
		}
	}

	env := &ModelEnvironment{Python: in.Python + ".7", Requirements: []Requirement{
		{Name: "mlflow", Specifier: "==3.17.2"},
		{Name: "scikit-learn", Specifier: "==1.9.1"},
	}}
	if r := Check(env, in); !r.Satisfied() {
		t.Errorf("mlflow and scikit-learn pins not satisfied: %s", r.Summary())
	}

	env.Requirements = append(env.Requirements,
		Requirement{Name: "torch", Specifier: ">=2"},
		Requirement{Name: "numpy", Specifier: "<2"},
	)
	r := Check(env, in)
	if r.Satisfied() {
		t.Error("Satisfied() = true with torch missing and numpy too new")
	}
	if want := []Mismatch{{Name: "torch", Want: ">=2"}}; !reflect.DeepEqual(r.Missing, want) {
		t.Errorf("Missing = %+v, want %+v", r.Missing, want)
	}
	if want := []Mismatch{{Name: "numpy", Want: "<2", Have: "2.4.6"}}; !reflect.DeepEqual(r.Mismatched, want) {
		t.Errorf("Mismatched = %+v, want %+v", r.Mismatched, want)
	}

	// Every pin of the lock the environment was installed from is satisfied.
	lock, err := os.ReadFile(filepath.Join("..", "..", "hack", "python", "requirements.lock"))
	if err != nil {
		t.Fatalf("read the lock file: %v", err)
	}
	reqs, err := parseRequirements(string(lock))
	if err != nil {
		t.Fatalf("parse the lock file: %v", err)
	}
	if len(reqs) < 10 {
		t.Fatalf("the lock file has only %d requirements", len(reqs))
	}
	if r := Check(&ModelEnvironment{Requirements: reqs}, in); !r.Satisfied() || r.Checked != len(reqs) {
		t.Errorf("lock pins: Satisfied() = %v, Checked = %d of %d: %s", r.Satisfied(), r.Checked, len(reqs), r.Summary())
	}
}
