package builds

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/go-logr/logr"
)

// TestStartSweepsOnlyWhatDeadProcessesLeft: the work folders of dead
// processes go (locked by nobody, or never locked); a live process's folder
// and files that are not the pool's stay; the pool builds in a folder of
// its own and removes it when it stops.
func TestStartSweepsOnlyWhatDeadProcessesLeft(t *testing.T) {
	base := t.TempDir()
	mkdir := func(name string, lockFile bool) string {
		dir := filepath.Join(base, name)
		if err := os.MkdirAll(filepath.Join(dir, "model-1"), 0o700); err != nil {
			t.Fatal(err)
		}
		if lockFile {
			if err := os.WriteFile(filepath.Join(dir, lockName), nil, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		return dir
	}
	mkdir(tempPrefix+"dead", true)
	mkdir(tempPrefix+"unlocked", false)
	live := mkdir(tempPrefix+"live", true)
	f, err := os.Open(filepath.Join(live, lockName))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"model-layer-77.tar.gz", "someone-elses.txt"} {
		if err := os.WriteFile(filepath.Join(base, name), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}

	p := &Pool{TempDir: base, Log: logr.Discard(), run: func(ctx context.Context, j *job) (*Result, error) { return nil, nil }}
	cancel, _ := started(t, p)
	names := func() []string {
		entries, _ := os.ReadDir(base)
		var out []string
		for _, e := range entries {
			out = append(out, e.Name())
		}
		return out
	}
	var own string
	waitFor(t, "the sweep and the pool's own folder", func() bool {
		n := names()
		if len(n) != 4 {
			return false
		}
		for _, name := range n {
			if strings.HasPrefix(name, tempPrefix) && name != tempPrefix+"live" {
				own = name
			}
		}
		return own != ""
	})
	got := strings.Join(names(), " ")
	for _, want := range []string{tempPrefix + "live", "model-layer-77.tar.gz", "someone-elses.txt"} {
		if !strings.Contains(got, want) {
			t.Errorf("%s was swept (left: %s)", want, got)
		}
	}
	if !held(filepath.Join(base, own, lockName)) {
		t.Errorf("the pool's folder %s is not locked: another process would sweep it", own)
	}
	if !held(filepath.Join(base, tempPrefix+"live", lockName)) {
		t.Error("the live folder's lock was not seen")
	}

	cancel()
	waitFor(t, "the pool's folder removed when it stops", func() bool {
		_, err := os.Stat(filepath.Join(base, own))
		return os.IsNotExist(err)
	})
}
