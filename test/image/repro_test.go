package image

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"
)

// Two builds of the same sources give the same index digest: the layers and
// layout again from the same binaries (in another folder, another umask,
// another time zone), and the amd64 image again from a second go build.
func TestDigestIsReproducible(t *testing.T) {
	again := filepath.Join(t.TempDir(), "elsewhere", "image")
	cmdArgs := buildArgs(again, bins)
	out, err := commandEnv([]string{"TZ=Pacific/Kiritimati", "SOURCE_DATE_EPOCH=1"}, "sh", append([]string{"-c", `umask 077 && exec "$0" "$@"`, tool}, cmdArgs...)...)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(out); got != digest {
		t.Fatalf("second build from the same binaries: %s, first %s", got, digest)
	}
	t.Logf("the same binaries twice: %s both times", digest)

	// A second go build of linux/amd64.
	dir := filepath.Join(t.TempDir(), "bins")
	if _, err := command(tool, "compile", "-out", dir, "-platforms", "linux/amd64", "-version", testVersion); err != nil {
		t.Fatal(err)
	}
	second := filepath.Join(dir, "manager-linux-amd64")
	if !bytes.Equal(mustRead(t, second), mustRead(t, bins["amd64"])) {
		t.Fatalf("a second go build of linux/amd64 made a different binary")
	}
	both, err := buildLayout(filepath.Join(t.TempDir(), "image"), map[string]string{"amd64": second, "arm64": bins["arm64"]})
	if err != nil {
		t.Fatal(err)
	}
	if both != digest {
		t.Fatalf("with the second amd64 binary: %s, first %s", both, digest)
	}
	// And the amd64 image alone is the index's amd64 manifest.
	alone := filepath.Join(t.TempDir(), "amd64")
	if _, err := buildLayout(alone, map[string]string{"amd64": second}); err != nil {
		t.Fatal(err)
	}
	first, err := platformImages(t, index(t, built))["amd64"].Digest()
	if err != nil {
		t.Fatal(err)
	}
	got, err := platformImages(t, index(t, alone))["amd64"].Digest()
	if err != nil {
		t.Fatal(err)
	}
	if got != first {
		t.Fatalf("linux/amd64 from a second go build: %s, first %s", got, first)
	}
	t.Logf("a second go build of linux/amd64: the same binary, image %s, index %s", got, both)
}
