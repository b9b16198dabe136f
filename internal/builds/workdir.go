package builds

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/go-logr/logr"
)

// tempPrefix starts the name of every folder the pool makes in TempDir.
const tempPrefix = "mlflow-operator-build-"

// lockName is the file, inside a work folder, whose exclusive flock says
// that a live process owns the folder.
const lockName = ".owner.lock"

// workDir is one operator process's own folder under TempDir: every model
// download, requirements file and layer file of its builds lives inside
// it. The process holds an exclusive flock on a file in it until close, so
// that a folder nobody holds the lock of is a dead process's leftovers.
// TempDir may be shared (os.TempDir() of a host that runs an operator and
// its tests, two operators with one volume): only folders whose owner is
// gone are swept, never the files of a process that is still building.
type workDir struct {
	path string
	lock *os.File
}

// openWorkDir sweeps the leftovers of dead processes from base, then makes
// and locks this process's folder.
func openWorkDir(base string, log logr.Logger) (*workDir, error) {
	if base == "" {
		base = os.TempDir()
	}
	sweepWorkDirs(base, log)
	path, err := os.MkdirTemp(base, tempPrefix+"*")
	if err != nil {
		return nil, err
	}
	f, err := os.OpenFile(filepath.Join(path, lockName), os.O_CREATE|os.O_RDWR, 0o600)
	if err == nil {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
	}
	if err != nil {
		if f != nil {
			f.Close()
		}
		os.RemoveAll(path)
		return nil, err
	}
	return &workDir{path: path, lock: f}, nil
}

// close removes the folder and releases it.
func (w *workDir) close() {
	os.RemoveAll(w.path)
	w.lock.Close()
}

// sweepWorkDirs removes every work folder in base whose owner is gone (a
// killed operator would otherwise fill the volume over restarts). A folder
// without a lock file is removed too: its owner died between making it and
// locking it, or it is an older operator's per-build folder.
func sweepWorkDirs(base string, log logr.Logger) {
	entries, err := os.ReadDir(base)
	if err != nil {
		return
	}
	for _, e := range entries {
		if !e.IsDir() || !strings.HasPrefix(e.Name(), tempPrefix) {
			continue
		}
		dir := filepath.Join(base, e.Name())
		if held(filepath.Join(dir, lockName)) {
			continue
		}
		if err := os.RemoveAll(dir); err != nil {
			log.Info("Cannot remove a leftover build folder", "path", dir, "error", err.Error())
		}
	}
}

// held tells whether a live process holds the lock file at path: taking
// the lock for a moment is how to ask (flock locks belong to an open file,
// so this process's own lock answers "held" too).
func held(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
	if errors.Is(err, syscall.EWOULDBLOCK) {
		return true
	}
	if err == nil {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
	}
	return false
}
