package pydeps

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// inspectFlattened is InspectImage done the other way, with
// go-containerregistry's mutate.Extract applying the whiteouts. It is kept
// to measure the choice InspectImage made: BenchmarkInspectImage runs both.
// Extract writes the top layer first, so the first metadata seen of a
// distribution wins; which layer it came from is not known.
func inspectFlattened(img v1.Image) (*Installed, error) {
	cfg, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("read image config: %w", err)
	}
	rc := mutate.Extract(img)
	defer rc.Close()
	dists := map[string]dist{}
	pythons := map[string]string{}
	tr := tar.NewReader(rc)
	for seen := 0; ; {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("read flattened tar: %w", err)
		}
		name := cleanPath(hdr.Name)
		if m := pythonFolderPath.FindStringSubmatch(name); m != nil {
			pythons[m[1]] = m[2]
		}
		m := metadataPath.FindStringSubmatch(name)
		if m == nil || hdr.Typeflag != tar.TypeReg {
			continue
		}
		d, ok, err := readMetadata(tr, m[1])
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", name, err)
		}
		if ok {
			d.python = pythonOfPath(name)
			d.layer = -seen
			seen++
			dists[name] = d
		}
	}
	in := summarizeInstalled(dists, pythons)
	applyConfig(in, cfg)
	return in, nil
}

// benchWords make file bodies that compress like text.
var benchWords = strings.Fields("import def class return self value data model numpy array index " +
	"float int str list dict tuple None True False for while in range len print raise error")

// benchBody returns a text-like body of about n bytes.
func benchBody(rng *rand.Rand, n int) string {
	var b strings.Builder
	for b.Len() < n {
		b.WriteString(benchWords[rng.IntN(len(benchWords))])
		if rng.IntN(8) == 0 {
			fmt.Fprintf(&b, "%d\n", rng.IntN(100000))
		} else {
			b.WriteByte(' ')
		}
	}
	return b.String()
}

// benchLayers describes a python base image with scale times 1,000 files
// of 0.5 to 8 KiB: a system layer, a python with its standard library,
// site-packages, an upgrade layer that whites out distributions and makes
// a package folder opaque, and an application layer.
func benchLayers(scale int) [][]tarEntry {
	rng := rand.New(rand.NewPCG(1, 2))
	body := func() string { return benchBody(rng, 512+rng.IntN(8<<10-512)) }
	const lib = "usr/local/lib/python3.11"
	const site = lib + "/site-packages"
	var system, python, packages, upgrade, app []tarEntry
	for i := range 400 * scale {
		system = append(system, tarEntry{name: fmt.Sprintf("usr/share/doc/pkg%d/file%d.txt", i%97, i), body: body()})
	}
	for i := range 200 * scale {
		python = append(python, tarEntry{name: fmt.Sprintf("%s/mod%d/part%d.py", lib, i%31, i), body: body()})
	}
	dists := 12 * scale
	for d := range dists {
		pkg := fmt.Sprintf("pkg%d", d)
		packages = append(packages, testDist(site, pkg+"-1.0.0", pkg, "1.0.0"),
			tarEntry{name: site + "/" + pkg + "-1.0.0.dist-info/RECORD", body: body()})
		for f := range 25 {
			packages = append(packages, tarEntry{name: fmt.Sprintf("%s/%s/m%d.py", site, pkg, f), body: body()})
		}
	}
	// Upgrade a sixth of the distributions, the pip way: whiteouts for the
	// old dist-info and package folder, then the new files.
	for d := 0; d < dists; d += 6 {
		pkg := fmt.Sprintf("pkg%d", d)
		upgrade = append(upgrade,
			tarEntry{name: site + "/.wh." + pkg + "-1.0.0.dist-info"},
			tarEntry{name: site + "/" + pkg + "/.wh..wh..opq"},
			testDist(site, pkg+"-2.0.0", pkg, "2.0.0"))
		for f := range 25 {
			upgrade = append(upgrade, tarEntry{name: fmt.Sprintf("%s/%s/m%d.py", site, pkg, f), body: body()})
		}
	}
	// And uninstall one.
	upgrade = append(upgrade, tarEntry{name: site + "/.wh.pkg1-1.0.0.dist-info"}, tarEntry{name: site + "/.wh.pkg1"})
	for i := range 50 * scale {
		app = append(app, tarEntry{name: fmt.Sprintf("app/src/f%d.py", i), body: body()})
	}
	return [][]tarEntry{system, python, packages, upgrade, app}
}

// benchImage builds the image of benchLayers on top of a random base layer,
// with gzip-compressed layers when gzipped is set: then every read of a
// layer inflates it, as with an image pulled from a registry.
func benchImage(tb testing.TB, scale int, gzipped bool) v1.Image {
	tb.Helper()
	base, err := random.Image(256<<10, 1)
	if err != nil {
		tb.Fatal(err)
	}
	var layers []v1.Layer
	for _, entries := range benchLayers(scale) {
		data := testTar(tb, entries)
		if gzipped {
			var buf bytes.Buffer
			zw := gzip.NewWriter(&buf)
			if _, err := zw.Write(data); err != nil {
				tb.Fatal(err)
			}
			if err := zw.Close(); err != nil {
				tb.Fatal(err)
			}
			data = buf.Bytes()
		}
		l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
			return io.NopCloser(bytes.NewReader(data)), nil
		})
		if err != nil {
			tb.Fatal(err)
		}
		layers = append(layers, l)
	}
	img, err := mutate.AppendLayers(base, layers...)
	if err != nil {
		tb.Fatal(err)
	}
	// The config's diff IDs are computed once here, not in the benchmark.
	if _, err := img.ConfigFile(); err != nil {
		tb.Fatal(err)
	}
	return withConfig(tb, img, "linux/amd64", "PYTHON_VERSION=3.11.7")
}

// TestInspectFlattenedAgrees checks that the benchmark compares two ways of
// reaching the same answer.
func TestInspectFlattenedAgrees(t *testing.T) {
	img := benchImage(t, 1, false)
	walked, err := InspectImage(img)
	if err != nil {
		t.Fatalf("InspectImage: %v", err)
	}
	flat, err := inspectFlattened(img)
	if err != nil {
		t.Fatalf("inspectFlattened: %v", err)
	}
	if !reflect.DeepEqual(walked, flat) {
		t.Errorf("InspectImage =\n  %+v\nmutate.Extract way =\n  %+v", walked, flat)
	}
	// 12 distributions, one uninstalled, two upgraded.
	if len(walked.Packages) != 11 || walked.Packages["pkg0"] != "2.0.0" || walked.Packages["pkg6"] != "2.0.0" ||
		walked.Packages["pkg2"] != "1.0.0" || walked.Packages["pkg1"] != "" {
		t.Errorf("Packages = %v, want pkg0..pkg11 without pkg1, pkg0 and pkg6 at 2.0.0", walked.Packages)
	}
	if walked.PythonFull != "3.11.7" || walked.Architecture != "amd64" {
		t.Errorf("PythonFull, Architecture = %q, %q; want 3.11.7, amd64", walked.PythonFull, walked.Architecture)
	}
}

// BenchmarkInspectImage compares InspectImage, which applies whiteouts to
// the metadata paths it keeps, with the same work done on the flattened
// filesystem of mutate.Extract, on an image of about 10,000 files (40 MB).
func BenchmarkInspectImage(b *testing.B) {
	for _, gzipped := range []bool{false, true} {
		layers := "uncompressed"
		if gzipped {
			layers = "gzip"
		}
		b.Run(layers, func(b *testing.B) {
			img := benchImage(b, 10, gzipped)
			for _, way := range []struct {
				name    string
				inspect func(v1.Image) (*Installed, error)
			}{{"walk", InspectImage}, {"extract", inspectFlattened}} {
				b.Run(way.name, func(b *testing.B) {
					b.ReportAllocs()
					for b.Loop() {
						in, err := way.inspect(img)
						if err != nil {
							b.Fatal(err)
						}
						if len(in.Packages) != 119 {
							b.Fatalf("found %d distributions, want 119", len(in.Packages))
						}
					}
				})
			}
		})
	}
}
