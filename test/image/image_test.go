package image

import (
	"archive/tar"
	"bytes"
	"crypto/x509"
	"debug/buildinfo"
	"debug/elf"
	"encoding/pem"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/types"
)

func TestIndexHasBothPlatforms(t *testing.T) {
	idx := index(t, built)
	mt, err := idx.MediaType()
	if err != nil || mt != types.OCIImageIndex {
		t.Fatalf("index media type %s (%v), want %s", mt, err, types.OCIImageIndex)
	}
	d, err := idx.Digest()
	if err != nil || d.String() != digest {
		t.Fatalf("the layout's index is %s (%v); the tool printed %s", d, err, digest)
	}
	imgs := platformImages(t, idx)
	if len(imgs) != len(archs) {
		t.Fatalf("platforms %v, want %v", keys(imgs), archs)
	}
	for _, a := range archs {
		img, ok := imgs[a]
		if !ok {
			t.Fatalf("no linux/%s image", a)
		}
		cf, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		if cf.OS != "linux" || cf.Architecture != a {
			t.Errorf("linux/%s: config says %s/%s", a, cf.OS, cf.Architecture)
		}
		if mt, _ := img.MediaType(); mt != types.OCIManifestSchema1 {
			t.Errorf("linux/%s: manifest media type %s", a, mt)
		}
	}
	// The /etc layer is the same blob on both platforms.
	l0 := func(a string) string {
		ls, err := imgs[a].Layers()
		if err != nil || len(ls) != 3 {
			t.Fatalf("linux/%s: %d layers (%v), want 3 (/etc, /manager, /request-metrics)", a, len(ls), err)
		}
		d, _ := ls[0].Digest()
		return d.String()
	}
	if l0("amd64") != l0("arm64") {
		t.Errorf("the /etc layer differs between the platforms")
	}
}

func TestConfig(t *testing.T) {
	created, _ := time.Parse(time.RFC3339, testCreated)
	wantLabels := map[string]string{
		"org.opencontainers.image.title":       "mlflow-operator",
		"org.opencontainers.image.source":      testSource,
		"org.opencontainers.image.revision":    testRevision,
		"org.opencontainers.image.version":     testVersion,
		"org.opencontainers.image.created":     testCreated,
		"org.opencontainers.image.licenses":    testLicenses,
		"org.opencontainers.image.description": "",
	}
	idx := index(t, built)
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	for a, img := range platformImages(t, idx) {
		cf, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		c := cf.Config
		if c.User != "65532:65532" {
			t.Errorf("linux/%s: User %q, want 65532:65532 (non-root)", a, c.User)
		}
		if !reflect.DeepEqual(c.Entrypoint, []string{"/manager"}) || len(c.Cmd) != 0 {
			t.Errorf("linux/%s: Entrypoint %q Cmd %q, want [/manager] and none", a, c.Entrypoint, c.Cmd)
		}
		if c.WorkingDir != "/" {
			t.Errorf("linux/%s: WorkingDir %q", a, c.WorkingDir)
		}
		if !cf.Created.Time.Equal(created) {
			t.Errorf("linux/%s: created %s, want %s", a, cf.Created.Time, created)
		}
		// /etc, /manager, /request-metrics.
		if len(cf.History) != 3 || len(cf.RootFS.DiffIDs) != 3 {
			t.Errorf("linux/%s: %d history entries, %d diff IDs; want 3 and 3", a, len(cf.History), len(cf.RootFS.DiffIDs))
		}
		for _, h := range cf.History {
			if !h.Created.Time.Equal(created) {
				t.Errorf("linux/%s: history time %s", a, h.Created.Time)
			}
		}
		for _, labels := range []map[string]string{c.Labels, im.Annotations} {
			if len(labels) != len(wantLabels) {
				t.Errorf("linux/%s: labels %v, want the keys of %v", a, labels, wantLabels)
			}
			for k, v := range wantLabels {
				if got, ok := labels[k]; !ok || (v != "" && got != v) || got == "" {
					t.Errorf("linux/%s: %s = %q, want %q", a, k, got, v)
				}
			}
		}
	}
}

func TestFiles(t *testing.T) {
	created, _ := time.Parse(time.RFC3339, testCreated)
	want := []struct {
		name string
		typ  byte
		mode int64
	}{
		{"etc/", tar.TypeDir, 0o755},
		{"etc/group", tar.TypeReg, 0o444},
		{"etc/passwd", tar.TypeReg, 0o444},
		{"etc/ssl/", tar.TypeDir, 0o755},
		{"etc/ssl/certs/", tar.TypeDir, 0o755},
		{"etc/ssl/certs/ca-certificates.crt", tar.TypeReg, 0o444},
		{"manager", tar.TypeReg, 0o555},
		{"request-metrics", tar.TypeReg, 0o555},
	}
	for a, img := range platformImages(t, index(t, built)) {
		es := entries(t, img)
		if len(es) != len(want) {
			var names []string
			for _, e := range es {
				names = append(names, e.name)
			}
			t.Fatalf("linux/%s: entries %q, want %d", a, names, len(want))
		}
		for i, w := range want {
			e := es[i]
			if e.name != w.name || e.typ != w.typ || e.mode != w.mode {
				t.Errorf("linux/%s: entry %d is %s (type %c, mode %o), want %s (type %c, mode %o)", a, i, e.name, e.typ, e.mode, w.name, w.typ, w.mode)
			}
			// Root's, read-only: the operator (65532) changes nothing.
			if e.uid != 0 || e.gid != 0 || e.uname != "" || e.gname != "" {
				t.Errorf("linux/%s: %s owned by %d:%d (%q:%q), want 0:0 without names", a, e.name, e.uid, e.gid, e.uname, e.gname)
			}
			if !e.mtime.Equal(created) {
				t.Errorf("linux/%s: %s has time %s, want %s", a, e.name, e.mtime, created)
			}
		}
		if got := string(file(t, es, "manager")); got != string(mustRead(t, bins[a])) {
			t.Errorf("linux/%s: /manager is not the binary built", a)
		}
		if got := string(file(t, es, "request-metrics")); got != string(mustRead(t, sidecars[a])) {
			t.Errorf("linux/%s: /request-metrics is not the binary built", a)
		}
		passwd := string(file(t, es, "etc/passwd"))
		if !strings.Contains(passwd, "\nnonroot:x:65532:65532:") {
			t.Errorf("linux/%s: /etc/passwd has no nonroot 65532:\n%s", a, passwd)
		}
		if group := string(file(t, es, "etc/group")); !strings.Contains(group, "\nnonroot:x:65532:") {
			t.Errorf("linux/%s: /etc/group has no nonroot 65532:\n%s", a, group)
		}
	}
}

func TestCABundle(t *testing.T) {
	es := entries(t, platformImages(t, index(t, built))["amd64"])
	bundle := file(t, es, "etc/ssl/certs/ca-certificates.crt")
	var certs []*x509.Certificate
	rest := bundle
	for {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			break
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		certs = append(certs, c)
	}
	if len(certs) < 100 || len(bytes.TrimSpace(rest)) != 0 {
		t.Fatalf("%d certificates, %d bytes left over", len(certs), len(rest))
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(bundle) {
		t.Fatal("crypto/x509 reads no certificate from the bundle")
	}
	t.Logf("%d certificates from %s", len(certs), filepath.Base(caDeb))
	// Never the build machine's local additions (a proxy's or a sandbox's CA).
	local, _ := filepath.Glob("/usr/local/share/ca-certificates/*.crt")
	for _, p := range local {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		if blk, _ := pem.Decode(b); blk != nil && bytes.Contains(bundle, pem.EncodeToMemory(blk)) {
			t.Errorf("the bundle holds this machine's local certificate %s", p)
		}
	}
}

func TestBinaryIsStatic(t *testing.T) {
	machine := map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}
	for a, img := range platformImages(t, index(t, built)) {
		for _, name := range []string{"manager", "request-metrics"} {
			checkStatic(t, a, name, machine[a], file(t, entries(t, img), name))
		}
	}
}

// checkStatic checks that the image's binary name for linux/a is static,
// stripped and built with the fixed flags.
func checkStatic(t *testing.T, a, name string, machine elf.Machine, data []byte) {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := elf.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	if f.Machine != machine || f.Type != elf.ET_EXEC {
		t.Errorf("linux/%s: /%s: ELF machine %s type %s", a, name, f.Machine, f.Type)
	}
	for _, prog := range f.Progs {
		if prog.Type == elf.PT_INTERP || prog.Type == elf.PT_DYNAMIC {
			t.Errorf("linux/%s: program header %s: not static", a, prog.Type)
		}
	}
	if libs, err := f.ImportedLibraries(); err != nil || len(libs) != 0 {
		t.Errorf("linux/%s: DT_NEEDED %v (%v)", a, libs, err)
	}
	if f.Section(".interp") != nil || f.Section(".symtab") != nil {
		t.Errorf("linux/%s: has .interp or a symbol table (-s)", a)
	}
	defer f.Close()
	bi, err := buildinfo.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	settings := map[string]string{}
	for _, s := range bi.Settings {
		settings[s.Key] = s.Value
	}
	// -ldflags and -buildvcs=false leave no setting behind (-trimpath
	// drops -ldflags); what they do is checked below.
	want := map[string]string{"CGO_ENABLED": "0", "GOOS": "linux", "GOARCH": a, "-trimpath": "true", "GOAMD64": "v1"}
	if a == "arm64" {
		delete(want, "GOAMD64")
		want["GOARM64"] = "v8.0"
	}
	for k, v := range want {
		if settings[k] != v {
			t.Errorf("linux/%s: build setting %s=%q, want %q", a, k, settings[k], v)
		}
	}
	for _, sec := range f.Sections {
		if strings.HasPrefix(sec.Name, ".debug_") || strings.HasPrefix(sec.Name, ".zdebug_") {
			t.Errorf("linux/%s: DWARF section %s (-w)", a, sec.Name)
		}
	}
	if id, err := command("go", "tool", "buildid", p); err != nil || strings.TrimSpace(id) != "" {
		t.Errorf("linux/%s: Go build ID %q (%v), want none (-buildid=)", a, id, err)
	}
	for k := range settings {
		if strings.HasPrefix(k, "vcs") {
			t.Errorf("linux/%s: VCS stamped (%s): -buildvcs=false", a, k)
		}
	}
}

// A dynamically linked binary is refused, not shipped.
func TestRefusesDynamicBinary(t *testing.T) {
	ls := "/bin/ls"
	if f, err := elf.Open(ls); err != nil || f.Machine != elf.EM_X86_64 {
		t.Skip("needs an amd64 /bin/ls")
	}
	_, err := command(tool, buildArgs(filepath.Join(t.TempDir(), "image"), map[string]string{"amd64": ls})...)
	if err == nil || !strings.Contains(err.Error(), "dynamically linked") {
		t.Fatalf("want a refusal of a dynamic binary, got %v", err)
	}
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func mustRead(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
