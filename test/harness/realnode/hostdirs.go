package realnode

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
)

// shadowed are the host folders that containerd, its shims, the CNI plugins
// and the kubelet write to whatever their configuration says. Inside the
// private mount namespace each gets a tmpfs, so their writes vanish with
// the namespace. A tmpfs needs its mount point to exist on the host: a
// missing one is created for the run and removed after it.
var shadowed = []string{
	"/run/containerd",     // the shims' sockets (/run/containerd/s)
	"/var/lib/cni",        // libcni's result cache
	"/var/lib/kubelet",    // device-plugins, hard-coded in the kubelet
	"/var/log/containers", // the kubelet's log symlinks, hard-coded
	"/var/log/pods",       // the kubelet's default pod log folder
}

// watched are host paths the node's components are known to create when
// misconfigured; the teardown check fails if one appeared during the run.
var watched = append([]string{
	"/run/netns", "/run/nri", "/run/runc", "/run/xtables.lock", "/var/lib/containerd", "/opt/containerd",
	"/opt/cni", "/etc/cni", "/etc/containerd", "/etc/kubernetes",
}, shadowed...)

// hostDirs creates the missing mount points of the shadowed folders and
// removes them when the last run using them ends. Runs in parallel (go test
// runs packages in parallel) share them, so two lock files under the host's
// /tmp coordinate: "users" is held shared by every run for its whole life;
// "create" is held exclusively while creating (until the creator holds
// "users") and while the last run removes them, so no run removes a folder
// another is about to mount over.
type hostDirs struct {
	base  string
	users *os.File
	// removed is set when the release removed the folders (no other run held them).
	removed bool
}

// lockFile opens path and flocks it. The last run removes the lock files,
// so a lock taken on a file that was removed meanwhile is dropped and taken
// again on the file now at path.
func lockFile(path string, how int) (*os.File, error) {
	for {
		f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
		if err != nil {
			return nil, err
		}
		if err := syscall.Flock(int(f.Fd()), how); err != nil {
			f.Close()
			return nil, err
		}
		held, err1 := f.Stat()
		now, err2 := os.Stat(path)
		if err1 == nil && err2 == nil && os.SameFile(held, now) {
			return f, nil
		}
		f.Close()
	}
}

// acquireHostDirs creates the missing shadowed folders (and records them in
// base/created-dirs) and holds them for this run.
func acquireHostDirs(base string) (*hostDirs, error) {
	create, err := lockFile(filepath.Join(base, "create.lock"), syscall.LOCK_EX)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", base, err)
	}
	defer create.Close()
	var created []string
	for _, d := range shadowed {
		// Record each missing folder on the way, parents first.
		var missing []string
		for p := d; p != "/"; p = filepath.Dir(p) {
			if _, err := os.Lstat(p); err == nil {
				break
			}
			missing = append([]string{p}, missing...)
		}
		for _, p := range missing {
			if err := os.Mkdir(p, 0o755); err != nil && !os.IsExist(err) {
				return nil, fmt.Errorf("create mount point %s: %w", p, err)
			}
			created = append(created, p)
		}
	}
	if len(created) > 0 {
		f, err := os.OpenFile(filepath.Join(base, "created-dirs"), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
		if err != nil {
			return nil, fmt.Errorf("record created folders: %w", err)
		}
		_, err = f.WriteString(strings.Join(created, "\n") + "\n")
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("record created folders: %w", err)
		}
	}
	users, err := lockFile(filepath.Join(base, "users.lock"), syscall.LOCK_SH)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", base, err)
	}
	return &hostDirs{base: base, users: users}, nil
}

// release ends this run's use; the last run removes every folder any run
// created (those of a run that was killed too), if empty, and the lock
// folder itself.
func (h *hostDirs) release() error {
	if h == nil || h.users == nil {
		return nil
	}
	h.users.Close() // drops the shared lock
	h.users = nil
	create, err := lockFile(filepath.Join(h.base, "create.lock"), syscall.LOCK_EX)
	if err != nil {
		return fmt.Errorf("lock %s: %w", h.base, err)
	}
	defer create.Close()
	users, err := lockFile(filepath.Join(h.base, "users.lock"), syscall.LOCK_EX|syscall.LOCK_NB)
	if err != nil {
		return nil // another run still uses the folders: it removes them
	}
	defer users.Close()
	b, _ := os.ReadFile(filepath.Join(h.base, "created-dirs"))
	dirs := strings.Fields(string(b))
	sort.Slice(dirs, func(i, j int) bool { return len(dirs[i]) > len(dirs[j]) }) // children first
	var left []string
	for _, d := range dirs {
		if err := os.Remove(d); err != nil && !os.IsNotExist(err) {
			left = append(left, d)
		}
	}
	if len(left) > 0 {
		return fmt.Errorf("host folders created for the node are not empty: %s", strings.Join(left, ", "))
	}
	h.removed = true
	// The lock files go with the folder; a run starting now creates them
	// anew and waits for nothing it needs.
	_ = os.Remove(filepath.Join(h.base, "created-dirs"))
	_ = os.Remove(filepath.Join(h.base, "users.lock"))
	_ = os.Remove(filepath.Join(h.base, "create.lock"))
	_ = os.Remove(h.base) // only when no other run's folder is in it
	return nil
}
