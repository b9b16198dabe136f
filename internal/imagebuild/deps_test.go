package imagebuild

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

func TestVersionCompare(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"1.0", "1.0.0", 0},
		{"1.0.0.0", "1", 0},
		{"1.9.1", "1.10", -1},
		{"2.4.6", "2.4.10", -1},
		{"2.0rc1", "2.0", -1},
		{"2.0a1", "2.0b1", -1},
		{"2.0b2", "2.0rc1", -1},
		{"2.0c1", "2.0rc1", 0},
		{"2.0alpha1", "2.0a1", 0},
		{"1.0.post1", "1.0", 1},
		{"1.0-1", "1.0.post1", 0},
		{"1.0.dev0", "1.0a1", -1},
		{"1.0a1.dev0", "1.0a1", -1},
		{"1.0.post1.dev0", "1.0.post1", -1},
		{"1.0.post1.dev0", "1.0", 1},
		{"2.1.0+cpu", "2.1.0", 0},
		{"2.1.0+cu121", "2.1.0+cpu", 0},
		{"1!1.0", "2.0", 1},
		{"v1.2", "1.2", 0},
		{"1.0RC1", "1.0rc1", 0},
		{"2026.10.19.post1", "2026.10.19", 1},
	}
	for _, tt := range tests {
		t.Run(tt.a+"_vs_"+tt.b, func(t *testing.T) {
			a, err := parsePEP440(tt.a)
			if err != nil {
				t.Fatalf("parse %q: %v", tt.a, err)
			}
			b, err := parsePEP440(tt.b)
			if err != nil {
				t.Fatalf("parse %q: %v", tt.b, err)
			}
			if got := a.compare(b); got != tt.want {
				t.Errorf("compare(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
			}
			if got := b.compare(a); got != -tt.want {
				t.Errorf("compare(%q, %q) = %d, want %d", tt.b, tt.a, got, -tt.want)
			}
		})
	}
}

func TestVersionInvalid(t *testing.T) {
	for _, v := range []string{"", "abc", "1.0..2", "1.0-beta-gamma", "1.0+", "99999999999999999999999.0"} {
		if _, err := parsePEP440(v); err == nil {
			t.Errorf("parsePEP440(%q) succeeded, want an error", v)
		}
	}
}

func TestVersionSpecifier(t *testing.T) {
	tests := []struct {
		spec, version string
		want          bool
		wantErr       bool // the specifier does not parse
	}{
		{"", "1.0", true, false},
		{"==1.0", "1.0.0", true, false},
		{"==1.9.1", "1.9.1", true, false},
		{"==1.9.1", "1.9.2", false, false},
		{"==1.9.*", "1.9.0", true, false},
		{"==1.9.*", "1.9", true, false},
		{"==1.9.*", "1.9.14rc1", true, false},
		{"==1.9.*", "1.10.0", false, false},
		{"==1.0.*", "1.1", false, false},
		{"!=1.9.*", "1.10.0", true, false},
		{"!=1.9.*", "1.9.3", false, false},
		{"!=1.5", "1.5.0", false, false},
		{"!=1.5", "1.5.1", true, false},
		{">=2.0", "2.0", true, false},
		{">=2.0", "1.9.9", false, false},
		{"<=2.0", "2.0.0", true, false},
		{">1.7", "1.7.1", true, false},
		{">1.7", "1.7.post1", false, false},
		{">1.7.post1", "1.7.post2", true, false},
		{"<2", "1.26.4", true, false},
		{"<2", "2.4.6", false, false},
		{"<2.0", "2.0rc1", false, false},
		{"<2.0rc2", "2.0rc1", true, false},
		{"~=1.4.5", "1.4.9", true, false},
		{"~=1.4.5", "1.5.0", false, false},
		{"~=1.4.5", "1.4.4", false, false},
		{"~=2.2", "2.9", true, false},
		{"~=2.2", "3.0", false, false},
		{"<3,>=1.20", "2.4.6", true, false},
		{">=1.20,<3", "3.0", false, false},
		{">=1.20, <3", "1.19", false, false},
		{"==2.1.0", "2.1.0+cpu", true, false},
		{"==2.1.0+cpu", "2.1.0+cpu", true, false},
		{"==2.1.0+cpu", "2.1.0+cu121", false, false},
		{"!=2.1.0+cpu", "2.1.0+cu121", true, false},
		{">=2.1", "2.1.0+cpu", true, false},
		{"===1.0-foo", "1.0-FOO", true, false},
		{"===1.0", "1.0.0", false, false},
		{"==1!2.0", "2.0", false, false},
		{"~=1", "1.0", false, true},
		{">=1.*", "1.0", false, true},
		{"=>1.0", "1.0", false, true},
		{"1.0", "1.0", false, true},
		{">=1.0,", "1.0", false, true},
		{"==1.0..1", "1.0", false, true},
		{">=1.0+cpu", "1.0", false, true},
	}
	for _, tt := range tests {
		t.Run(tt.spec+"_"+tt.version, func(t *testing.T) {
			spec, err := parsePEP440Specifier(tt.spec)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("parsePEP440Specifier(%q) succeeded, want an error", tt.spec)
				}
				return
			}
			if err != nil {
				t.Fatalf("parsePEP440Specifier(%q): %v", tt.spec, err)
			}
			got, err := spec.allows(tt.version)
			if err != nil {
				t.Fatalf("allows(%q): %v", tt.version, err)
			}
			if got != tt.want {
				t.Errorf("%q allows %q = %v, want %v", tt.spec, tt.version, got, tt.want)
			}
		})
	}
}

func TestVersionSpecifierInvalidInstalled(t *testing.T) {
	spec, err := parsePEP440Specifier(">=1.0")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := spec.allows("not-a-version"); err == nil {
		t.Error("allows(\"not-a-version\") succeeded, want an error")
	}
	// "===" compares strings and needs no parsed version.
	spec, err = parsePEP440Specifier("===not-a-version")
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := spec.allows("not-a-version"); err != nil || !ok {
		t.Errorf("=== allows = %v, %v; want true, nil", ok, err)
	}
}

func TestDepNormalizeName(t *testing.T) {
	tests := map[string]string{
		"scikit-learn":       "scikit-learn",
		"Scikit_Learn":       "scikit-learn",
		"zope.interface":     "zope-interface",
		"Foo.__-Bar":         "foo-bar",
		"mlflow_skinny":      "mlflow-skinny",
		"charset-normalizer": "charset-normalizer",
	}
	for in, want := range tests {
		if got := depNormalizeName(in); got != want {
			t.Errorf("depNormalizeName(%q) = %q, want %q", in, got, want)
		}
	}
}

// depTestWriteModel writes the given files into a new temporary model folder.
func depTestWriteModel(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestDepReadModelEnvironment(t *testing.T) {
	tests := []struct {
		name    string
		files   map[string]string
		want    *ModelEnvironment
		wantErr string // part of the error, "" for none
	}{
		{
			name: "mlflow files",
			files: map[string]string{
				"requirements.txt": "mlflow==3.17.2\ncloudpickle==3.1.3\nscikit-learn==1.9.1\n",
				"python_env.yaml":  "python: 3.11.7\nbuild_dependencies:\n- pip==23.0\n- setuptools\n- wheel\ndependencies:\n- -r requirements.txt\n",
			},
			want: &ModelEnvironment{
				Python: "3.11.7",
				Requirements: []Requirement{
					{Name: "mlflow", Specifier: "==3.17.2"},
					{Name: "cloudpickle", Specifier: "==3.1.3"},
					{Name: "scikit-learn", Specifier: "==1.9.1"},
				},
			},
		},
		{
			name:  "no files",
			files: nil,
			want:  &ModelEnvironment{},
		},
		{
			name:  "only python_env.yaml",
			files: map[string]string{"python_env.yaml": "python: \"3.12.1\"\n"},
			want:  &ModelEnvironment{Python: "3.12.1"},
		},
		{
			name:  "numeric python keeps its trailing zero",
			files: map[string]string{"python_env.yaml": "python: 3.10\n"},
			want:  &ModelEnvironment{Python: "3.10"},
		},
		{
			name: "only requirements.txt",
			files: map[string]string{
				"requirements.txt": "numpy<3,>=1.20\n",
			},
			want: &ModelEnvironment{Requirements: []Requirement{{Name: "numpy", Specifier: "<3,>=1.20"}}},
		},
		{
			name: "comments, options, markers, extras",
			files: map[string]string{
				"requirements.txt": strings.Join([]string{
					"# generated by mlflow",
					"",
					"-r other.txt",
					"--index-url https://pypi.example.com/simple",
					"-e ./local-package",
					"mlflow[auth]==3.1  # the server",
					"cloudpickle>=2.0",
					"numpy < 3 , >= 1.20 ; python_version >= \"3.9\"",
					"pandas;platform_system=='Linux'",
					"torch (>=2.0)",
					"requests[socks,security] >=2.31 \\",
					"    --hash=sha256:0123456789abcdef",
					"pkg @ https://example.com/pkg.tar.gz",
					"https://example.com/archive/other.zip",
					"./vendor/local_dir",
					"code/dependencies/my_lib-0.3.1-py3-none-any.whl",
					"Zope.Interface",
					"   ",
				}, "\n"),
			},
			want: &ModelEnvironment{Requirements: []Requirement{
				{Name: "mlflow", Specifier: "==3.1"},
				{Name: "cloudpickle", Specifier: ">=2.0"},
				{Name: "numpy", Specifier: "<3,>=1.20"},
				{Name: "pandas", Specifier: ""},
				{Name: "torch", Specifier: ">=2.0"},
				{Name: "requests", Specifier: ">=2.31"},
				{Name: "pkg", Specifier: ""},
				{Name: "my_lib", Specifier: "==0.3.1"},
				{Name: "Zope.Interface", Specifier: ""},
			}},
		},
		{
			name:    "malformed yaml",
			files:   map[string]string{"python_env.yaml": "python: [3.11\nbuild_dependencies: {"},
			wantErr: "python_env.yaml",
		},
		{
			name:    "wrongly typed yaml",
			files:   map[string]string{"python_env.yaml": "python: 3.11.7\ndependencies: 5\n"},
			wantErr: "python_env.yaml",
		},
		{
			name:    "malformed requirement",
			files:   map[string]string{"requirements.txt": "mlflow==3.1\n==1.0\n"},
			wantErr: "line 2",
		},
		{
			name:    "unclosed extras",
			files:   map[string]string{"requirements.txt": "mlflow[auth==3.1\n"},
			wantErr: "extras",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := depTestWriteModel(t, tt.files)
			got, err := ReadModelEnvironment(dir)
			if tt.wantErr != "" {
				if err == nil {
					t.Fatalf("ReadModelEnvironment succeeded with %+v, want an error containing %q", got, tt.wantErr)
				}
				if !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %q does not contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ReadModelEnvironment: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ReadModelEnvironment =\n  %+v\nwant\n  %+v", got, tt.want)
			}
		})
	}
}

func TestDepReadModelEnvironmentUnreadable(t *testing.T) {
	dir := t.TempDir()
	// A folder where the file should be cannot be read: an error, not "missing".
	if err := os.Mkdir(filepath.Join(dir, "requirements.txt"), 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadModelEnvironment(dir); err == nil {
		t.Fatal("ReadModelEnvironment succeeded on an unreadable requirements.txt")
	}
}

// depTestEntry is one tar entry of a test layer.
type depTestEntry struct {
	name     string
	body     string
	typeflag byte // tar.TypeReg when zero
	linkname string
}

// depTestMetadata returns a METADATA file with a description that mentions
// other names and versions, which must not be read as headers.
func depTestMetadata(name, version string) string {
	return fmt.Sprintf("Metadata-Version: 2.1\nName: %s\nVersion: %s\nSummary: test\n\nName: not-%s\nVersion: 0.0.0\n", name, version, name)
}

// depTestTar builds an uncompressed tar from entries.
func depTestTar(t *testing.T, entries []depTestEntry) []byte {
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

// depTestImage builds an image with one layer per entry list, in order.
func depTestImage(t *testing.T, layers ...[]depTestEntry) v1.Image {
	t.Helper()
	var ls []v1.Layer
	for _, entries := range layers {
		data := depTestTar(t, entries)
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

// depTestDist is a dist-info METADATA entry under site.
func depTestDist(site, folder, name, version string) depTestEntry {
	return depTestEntry{name: site + "/" + folder + ".dist-info/METADATA", body: depTestMetadata(name, version)}
}

func TestInspectImageLayersAndWhiteouts(t *testing.T) {
	const site = "usr/local/lib/python3.11/site-packages"
	base := []depTestEntry{
		{name: "usr/", typeflag: tar.TypeDir},
		{name: "usr/local/lib/python3.11/", typeflag: tar.TypeDir},
		{name: site + "/", typeflag: tar.TypeDir},
		depTestDist(site, "numpy-1.26.4", "numpy", "1.26.4"),
		depTestDist(site, "requests-2.31.0", "requests", "2.31.0"),
		depTestDist(site, "scikit_learn-1.9.1", "scikit-learn", "1.9.1"),
		depTestDist(site, "six-1.16.0", "six", "1.16.0"),
		depTestDist(site, "Flask-3.0.0", "Flask", "3.0.0"),
		{name: site + "/flask-3.0.0.dist-info/RECORD", body: "flask/__init__.py,,\n"},
	}
	upgrade := []depTestEntry{
		// pip upgraded numpy: the old dist-info is whited out, the new one added.
		// The whiteout comes after the addition to check that a whiteout only
		// hides lower layers.
		depTestDist(site, "numpy-2.4.6", "numpy", "2.4.6"),
		{name: site + "/.wh.numpy-1.26.4.dist-info"},
		// requests was uninstalled.
		{name: "./" + site + "/.wh.requests-2.31.0.dist-info"},
		// six was upgraded without a whiteout: the later layer wins.
		depTestDist(site, "six-1.17.0", "six", "1.17.0"),
		// A whiteout of one file inside a dist-info removes that file only.
		{name: site + "/Flask-3.0.0.dist-info/.wh.RECORD"},
		// AUFS bookkeeping entries are not whiteouts of anything.
		{name: site + "/.wh..wh.plnk"},
	}
	img := depTestImage(t, base, upgrade)

	got, err := InspectImage(img)
	if err != nil {
		t.Fatalf("InspectImage: %v", err)
	}
	want := &Installed{
		Python: "3.11",
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
	base := []depTestEntry{
		depTestDist(site311, "numpy-1.26.4", "numpy", "1.26.4"),
		depTestDist(site311, "pandas-2.2.0", "pandas", "2.2.0"),
		depTestDist("opt/venv/lib/python3.11/site-packages", "torch-2.1.0+cpu", "torch", "2.1.0+cpu"),
		depTestDist("opt/venv/lib/python3.11/site-packages", "pillow-10.0.0", "pillow", "10.0.0"),
	}
	rebuild := []depTestEntry{
		// Python 3.11 was removed and 3.12 installed.
		{name: "usr/local/lib/.wh.python3.11"},
		{name: "usr/local/lib/python3.12/", typeflag: tar.TypeDir},
		depTestDist(site312, "numpy-2.4.6", "numpy", "2.4.6"),
		// The venv's site-packages was replaced as a whole.
		{name: "opt/venv/lib/python3.11/site-packages/", typeflag: tar.TypeDir},
		{name: "opt/venv/lib/python3.11/site-packages/.wh..wh..opq"},
		depTestDist("opt/venv/lib/python3.11/site-packages", "torch-2.4.0", "torch", "2.4.0"),
	}
	img := depTestImage(t, base, rebuild)

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
	base := []depTestEntry{depTestDist("usr/lib/python3.9/site-packages", "six-1.16.0", "six", "1.16.0")}
	wipe := []depTestEntry{{name: ".wh..wh..opq"}, {name: "etc/hostname", body: "x\n"}}
	got, err := InspectImage(depTestImage(t, base, wipe))
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
		entries []depTestEntry
		want    string
	}{
		{"none", []depTestEntry{{name: "etc/os-release", body: "ID=debian\n"}}, ""},
		{"usr/lib", []depTestEntry{{name: "usr/lib/python3.11/os.py", body: "#\n"}}, "3.11"},
		{"usr/local/lib dir entry", []depTestEntry{{name: "usr/local/lib/python3.12/", typeflag: tar.TypeDir}}, "3.12"},
		{"lib at the root", []depTestEntry{{name: "./lib/python3.10/", typeflag: tar.TypeDir}}, "3.10"},
		{"absolute tar names", []depTestEntry{{name: "/usr/lib/python3.13/abc.py", body: "#\n"}}, "3.13"},
		{"not a python folder", []depTestEntry{
			{name: "usr/lib/python3/dist-packages/", typeflag: tar.TypeDir},
			{name: "usr/lib/python3.11-config/", typeflag: tar.TypeDir},
			{name: "usr/share/python3.11/", typeflag: tar.TypeDir},
		}, ""},
		{"highest folder without packages", []depTestEntry{
			{name: "usr/lib/python3.9/", typeflag: tar.TypeDir},
			{name: "usr/lib/python3.11/", typeflag: tar.TypeDir},
			{name: "usr/lib/python3.10/", typeflag: tar.TypeDir},
		}, "3.11"},
		{"folder holding the packages", []depTestEntry{
			{name: "usr/lib/python3.12/", typeflag: tar.TypeDir},
			depTestDist("usr/local/lib/python3.10/site-packages", "a-1", "a", "1"),
			depTestDist("usr/local/lib/python3.10/site-packages", "b-1", "b", "1"),
		}, "3.10"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := InspectImage(depTestImage(t, tt.entries))
			if err != nil {
				t.Fatalf("InspectImage: %v", err)
			}
			if got.Python != tt.want {
				t.Errorf("Python = %q, want %q", got.Python, tt.want)
			}
		})
	}
}

func TestInspectImageDistPackages(t *testing.T) {
	entries := []depTestEntry{
		{name: "usr/lib/python3.11/", typeflag: tar.TypeDir},
		depTestDist("usr/lib/python3/dist-packages", "PyYAML-6.0.1", "PyYAML", "6.0.1"),
		depTestDist("usr/lib/python3/dist-packages", "python_apt-2.6.0", "python-apt", "2.6.0"),
		// Old-style egg-info from a Debian package.
		{name: "usr/lib/python3/dist-packages/six-1.16.0.egg-info/PKG-INFO", body: depTestMetadata("six", "1.16.0")},
		// Headers missing: the folder name is used.
		{name: "usr/lib/python3/dist-packages/chardet-5.1.0.dist-info/METADATA", body: "Metadata-Version: 2.1\n\nno headers\n"},
		// A symbolic link named METADATA is not read.
		{name: "usr/lib/python3/dist-packages/linked-1.0.dist-info/METADATA", typeflag: tar.TypeSymlink,
			linkname: "../PyYAML-6.0.1.dist-info/METADATA"},
		// Not metadata of an installed distribution.
		{name: "usr/share/doc/foo-1.0.dist-info/METADATA", body: depTestMetadata("foo", "1.0")},
		{name: "usr/lib/python3/dist-packages/bar-1.0.dist-info/RECORD", body: "Name: bar\nVersion: 1.0\n"},
	}
	got, err := InspectImage(depTestImage(t, entries))
	if err != nil {
		t.Fatalf("InspectImage: %v", err)
	}
	want := &Installed{
		Python: "3.11",
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
	entries := []depTestEntry{{name: "usr/lib/python3.11/site-packages/big-0.0.1.dist-info/METADATA", body: body}}
	got, err := InspectImage(depTestImage(t, entries))
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

func TestDepCheckDependencies(t *testing.T) {
	installed := &Installed{
		Python: "3.11",
		Packages: map[string]string{
			"mlflow":       "3.17.2",
			"scikit-learn": "1.9.1",
			"numpy":        "2.4.6",
			"cloudpickle":  "3.1.3",
			"weird":        "not a version",
			"torch":        "2.4.0+cpu",
		},
	}
	tests := []struct {
		name           string
		env            *ModelEnvironment
		in             *Installed
		wantMissing    []Mismatch
		wantMismatched []Mismatch
		wantSatisfied  bool
		wantSummary    string
	}{
		{
			name: "satisfied",
			env: &ModelEnvironment{Python: "3.11.7", Requirements: []Requirement{
				{Name: "mlflow", Specifier: "==3.17.2"},
				{Name: "scikit_learn", Specifier: "==1.9.1"},
				{Name: "numpy", Specifier: "<3,>=1.20"},
				{Name: "CloudPickle", Specifier: ">=2.0"},
				{Name: "weird"},
				{Name: "torch", Specifier: "==2.4.0"},
				{Name: "mlflow", Specifier: "==3.17.2"}, // a repeat is checked once
			}},
			in:            installed,
			wantSatisfied: true,
			wantSummary:   "all 6 requirements satisfied, python 3.11",
		},
		{
			name: "missing, mismatched, python",
			env: &ModelEnvironment{Python: "3.12.1", Requirements: []Requirement{
				{Name: "foo"},
				{Name: "mlflow", Specifier: "==3.17.2"},
				{Name: "bar", Specifier: ">=1"},
				{Name: "numpy", Specifier: "<2"},
			}},
			in:             installed,
			wantMissing:    []Mismatch{{Name: "foo"}, {Name: "bar", Want: ">=1"}},
			wantMismatched: []Mismatch{{Name: "numpy", Want: "<2", Have: "2.4.6"}},
			wantSummary:    "2 missing (foo, bar), 1 mismatched (numpy wants <2, has 2.4.6), python 3.12 wanted, image has 3.11",
		},
		{
			name: "invalid specifier and version",
			env: &ModelEnvironment{Requirements: []Requirement{
				{Name: "mlflow", Specifier: "=>3"},
				{Name: "weird", Specifier: ">=1"},
			}},
			in: installed,
			wantMismatched: []Mismatch{
				{Name: "mlflow", Want: "=>3 (invalid specifier)", Have: "3.17.2"},
				{Name: "weird", Want: ">=1", Have: "not a version (invalid version)"},
			},
			wantSummary: "2 mismatched (mlflow wants =>3 (invalid specifier), has 3.17.2; weird wants >=1, has not a version (invalid version)), image has python 3.11",
		},
		{
			name:          "only python differs",
			env:           &ModelEnvironment{Python: "3.10", Requirements: []Requirement{{Name: "numpy"}}},
			in:            installed,
			wantSatisfied: false,
			wantSummary:   "1 requirement satisfied, python 3.10 wanted, image has 3.11",
		},
		{
			name:          "python unknown in the image",
			env:           &ModelEnvironment{Python: "3.11.7"},
			in:            &Installed{},
			wantSatisfied: true,
			wantSummary:   "no requirements to check, python 3.11 wanted, image python unknown",
		},
		{
			name:        "nil installed",
			env:         &ModelEnvironment{Requirements: []Requirement{{Name: "mlflow", Specifier: "==3.17.2"}}},
			in:          nil,
			wantMissing: []Mismatch{{Name: "mlflow", Want: "==3.17.2"}},
			wantSummary: "1 missing (mlflow)",
		},
		{
			name:          "nil environment",
			env:           nil,
			in:            installed,
			wantSatisfied: true,
			wantSummary:   "no requirements to check, image has python 3.11",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := CheckDependencies(tt.env, tt.in)
			if !reflect.DeepEqual(r.Missing, tt.wantMissing) {
				t.Errorf("Missing = %+v, want %+v", r.Missing, tt.wantMissing)
			}
			if !reflect.DeepEqual(r.Mismatched, tt.wantMismatched) {
				t.Errorf("Mismatched = %+v, want %+v", r.Mismatched, tt.wantMismatched)
			}
			if got := r.Satisfied(); got != tt.wantSatisfied {
				t.Errorf("Satisfied() = %v, want %v", got, tt.wantSatisfied)
			}
			if got := r.Summary(); got != tt.wantSummary {
				t.Errorf("Summary() =\n  %q\nwant\n  %q", got, tt.wantSummary)
			}
		})
	}
}

func TestDepSummaryIsBounded(t *testing.T) {
	r := &DependencyReport{PythonWant: "3.11", PythonHave: "3.12"}
	for i := 0; i < 50; i++ {
		long := fmt.Sprintf("package-%02d-%s", i, strings.Repeat("long", 40))
		r.Missing = append(r.Missing, Mismatch{Name: long})
		r.Mismatched = append(r.Mismatched, Mismatch{Name: long, Want: ">=" + strings.Repeat("1.", 60) + "0", Have: "0.1"})
	}
	s := r.Summary()
	if len(s) >= depSummaryMaxLen {
		t.Errorf("Summary is %d characters, want under %d", len(s), depSummaryMaxLen)
	}
	for _, part := range []string{"50 missing (package-00-", "and 42 more", "50 mismatched (package-00-"} {
		if !strings.Contains(s, part) {
			t.Errorf("Summary %q does not contain %q", s, part)
		}
	}
	if strings.Contains(s, "package-08-") {
		t.Errorf("Summary %q lists more than 8 names", s)
	}

	// Short names fit entirely, python part included.
	r = &DependencyReport{PythonWant: "3.11", PythonHave: "3.12"}
	for i := 0; i < 20; i++ {
		r.Missing = append(r.Missing, Mismatch{Name: fmt.Sprintf("p%d", i)})
	}
	want := "20 missing (p0, p1, p2, p3, p4, p5, p6, p7, and 12 more), python 3.11 wanted, image has 3.12"
	if got := r.Summary(); got != want {
		t.Errorf("Summary() = %q, want %q", got, want)
	}
}

// depTestPythonEnvDir returns the project's Python environment folder, or
// skips the test when it has not been created.
func depTestPythonEnvDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("MLFLOW_PYTHON_ENV")
	if dir == "" {
		out, err := exec.Command("bash", filepath.Join("..", "..", "hack", "python-env.sh"), "--print-dir").Output()
		if err != nil {
			t.Skipf("cannot locate the Python environment (hack/python-env.sh --print-dir: %v); run hack/python-env.sh (make test always creates it)", err)
		}
		dir = strings.TrimSpace(string(out))
	}
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		t.Skipf("Python environment %s does not exist; run hack/python-env.sh (make test always creates it)", dir)
	}
	return dir
}

// depTestStreamLayer returns a layer whose tar is streamed from the given
// files each time it is opened; names maps each file to its path in the layer.
func depTestStreamLayer(t *testing.T, files []string, names map[string]string) v1.Layer {
	t.Helper()
	opener := func() (io.ReadCloser, error) {
		pr, pw := io.Pipe()
		go func() {
			tw := tar.NewWriter(pw)
			for _, f := range files {
				if err := depTestCopyFile(tw, f, names[f]); err != nil {
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

// depTestCopyFile writes one file into tw under name.
func depTestCopyFile(tw *tar.Writer, file, name string) error {
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
	envDir := depTestPythonEnvDir(t)
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
	img, err := mutate.AppendLayers(empty.Image, depTestStreamLayer(t, files, names))
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
	if r := CheckDependencies(env, in); !r.Satisfied() {
		t.Errorf("mlflow and scikit-learn pins not satisfied: %s", r.Summary())
	}

	env.Requirements = append(env.Requirements,
		Requirement{Name: "torch", Specifier: ">=2"},
		Requirement{Name: "numpy", Specifier: "<2"},
	)
	r := CheckDependencies(env, in)
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
	reqs, err := depParseRequirements(string(lock))
	if err != nil {
		t.Fatalf("parse the lock file: %v", err)
	}
	if len(reqs) < 10 {
		t.Fatalf("the lock file has only %d requirements", len(reqs))
	}
	if r := CheckDependencies(&ModelEnvironment{Requirements: reqs}, in); !r.Satisfied() || r.Checked != len(reqs) {
		t.Errorf("lock pins: Satisfied() = %v, Checked = %d of %d: %s", r.Satisfied(), r.Checked, len(reqs), r.Summary())
	}
}
