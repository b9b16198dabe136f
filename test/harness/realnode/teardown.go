package realnode

import (
	"bufio"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// tearDown stops everything in the namespaces and removes what setUp made,
// in an order that leaves nothing: the kubelet first (or it restarts what is
// stopped), the pods' processes (found through the node's cgroups), the
// shims (in containerd's cgroup), the recorded daemons in reverse order,
// whatever else runs in the namespaces, then the holder (every mount in the
// private namespace goes with it), the cgroups, the host folders. The
// program normally stopped most of it already; this is the guarantee when
// it crashed. It returns what it could not remove or what was left anyway.
func (h *holder) tearDown() []string {
	var problems []string
	if h.ns != nil && h.ns.NetNS != "" {
		recorded := h.ns.recorded()
		var keep []int
		for _, r := range recorded {
			if r.name == "kubelet" {
				h.stop(r.pid, 10*time.Second)
			}
			keep = append(keep, r.pid)
		}
		// Pods and shims: nothing of them is worth a grace period now.
		if err := h.ns.KillCgroup("", 10*time.Second, keep...); err != nil {
			problems = append(problems, err.Error())
		}
		for i := len(recorded) - 1; i >= 0; i-- {
			h.stop(recorded[i].pid, 10*time.Second)
		}
		if h.cmd != nil {
			// Only while the holder lives are the namespaces surely this
			// run's: a dead one's inode number may name a new namespace.
			for _, pid := range h.processes() {
				h.stop(pid, 5*time.Second)
			}
		}
		if err := h.ns.KillCgroup("", 5*time.Second); err != nil {
			problems = append(problems, err.Error())
		}
	}
	if h.cmd != nil && h.cmd.Process != nil {
		_ = h.cmd.Process.Kill()
		_ = h.cmd.Wait()
		if !wait(5*time.Second, func() bool { return len(h.processes()) == 0 }) {
			problems = append(problems, fmt.Sprintf("processes still in the namespaces: %v", h.processes()))
		}
	}
	if h.cgroupMade {
		if err := h.ns.RemoveCgroups(true); err != nil {
			problems = append(problems, err.Error())
		}
	}
	if h.ns != nil && h.ns.Dir != "" {
		if err := os.RemoveAll(h.ns.Dir); err != nil {
			problems = append(problems, fmt.Sprintf("remove %s: %v", h.ns.Dir, err))
		}
	}
	if h.owner != nil {
		h.owner.Close()
	}
	// Last: the last run out removes the lock folder, once empty.
	if err := h.hostDirs.release(); err != nil {
		problems = append(problems, err.Error())
	}
	if h.cmd == nil {
		return problems // a stale run's: what the host looked like before is unknown
	}
	return append(problems, h.leftovers()...)
}

// sweepStale tears down what runs whose Enter was killed (SIGKILL: no
// teardown ran) left in base: their folder is no longer locked. Their
// recorded daemons (checked to be in their namespaces), the processes in
// their cgroups, the cgroups and the folder go.
func sweepStale(base, own string) {
	dirs, _ := filepath.Glob(filepath.Join(base, "ns-*"))
	for _, dir := range dirs {
		if dir == own {
			continue
		}
		lock, err := lockFile(filepath.Join(dir, "owner.lock"), syscall.LOCK_EX|syscall.LOCK_NB)
		if err != nil {
			continue // alive (or not ours to judge)
		}
		n, err := load(dir)
		if err != nil {
			// Killed before it was described: no daemon ran yet.
			all, tracking, _ := cgroupHierarchies()
			n = &Namespace{Dir: dir, Hierarchies: all, Tracking: tracking}
		}
		n.Dir = dir
		n.CgroupRoot = "/mlflow-operator-realnode-" + strings.TrimPrefix(filepath.Base(dir), "ns-")
		h := &holder{ns: n, cgroupMade: true, owner: lock}
		if problems := h.tearDown(); len(problems) > 0 {
			fmt.Fprintf(os.Stderr, "realnode: sweeping the remains of a killed run in %s left: %s\n", dir, strings.Join(problems, "; "))
		}
	}
}

// processes lists the processes in the namespaces, the holder aside.
func (h *holder) processes() []int {
	var out []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == h.ns.HolderPID {
			continue
		}
		if h.inside(pid) {
			out = append(out, pid)
		}
	}
	return out
}

// inside tells whether pid runs in the namespaces: a recorded PID is
// checked before it is signalled, in case it was reused by a host process.
func (h *holder) inside(pid int) bool {
	if h.ns == nil || h.ns.NetNS == "" {
		return false
	}
	net, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/net", pid))
	mnt, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/mnt", pid))
	return net == h.ns.NetNS || mnt == h.ns.MntNS
}

// stop sends SIGTERM to pid if it runs in the namespaces, then SIGKILL
// after grace.
func (h *holder) stop(pid int, grace time.Duration) {
	if !h.inside(pid) {
		return
	}
	_ = syscall.Kill(pid, syscall.SIGTERM)
	if !wait(grace, func() bool { return !alive(pid) }) {
		_ = syscall.Kill(pid, syscall.SIGKILL)
		wait(grace, func() bool { return !alive(pid) })
	}
}

// alive is false once pid has exited, zombie or not (the program's daemons
// are reaped by the program, which may be gone).
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// stat: PID (COMM) STATE ...; COMM may hold spaces and parentheses.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}

// hostState is what the checks compare: the host's network links and which
// watched paths exist, and when the run started.
type hostState struct {
	links   map[string]bool
	paths   map[string]bool
	mounts  map[string]bool
	started time.Time
}

func snapshotHost() hostState {
	s := hostState{links: map[string]bool{}, paths: map[string]bool{}, mounts: map[string]bool{}, started: time.Now()}
	for _, m := range mountPoints() {
		s.mounts[m] = true
	}
	if ifs, err := net.Interfaces(); err == nil {
		for _, i := range ifs {
			s.links[i.Name] = true
		}
	}
	for _, p := range watched {
		if _, err := os.Lstat(p); err == nil {
			s.paths[p] = true
		}
	}
	return s
}

// leftovers checks the host after the teardown: no process in the
// namespaces, no mount of the run in the host's mount namespace, no cgroup,
// no new network link, no watched path that was not there before, no
// folder of the namespace.
func (h *holder) leftovers() []string {
	var out []string
	if h.cmd != nil {
		if p := h.processes(); len(p) > 0 {
			out = append(out, fmt.Sprintf("processes in the namespaces: %v", p))
		}
	}
	if h.ns == nil {
		return out
	}
	for _, m := range mountPoints() {
		if h.before.mounts[m] {
			continue
		}
		if (h.ns.Dir != "" && strings.HasPrefix(m, h.ns.Dir)) || strings.Contains(m, h.ns.CgroupRoot) || isShadowed(m) {
			out = append(out, "mount "+m)
		}
	}
	if h.cgroupMade {
		for _, hier := range h.ns.Hierarchies {
			if _, err := os.Stat(filepath.Join(hier, h.ns.CgroupRoot)); err == nil {
				out = append(out, "cgroup "+filepath.Join(hier, h.ns.CgroupRoot))
			}
		}
	}
	if ifs, err := net.Interfaces(); err == nil {
		for _, i := range ifs {
			if !h.before.links[i.Name] {
				out = append(out, "network link "+i.Name+" in the host's namespace")
			}
		}
	}
	othersHoldDirs := h.hostDirs != nil && !h.hostDirs.removed
	for _, p := range watched {
		if _, err := os.Lstat(p); err == nil && !h.before.paths[p] && !(othersHoldDirs && isShadowed(p)) {
			out = append(out, "host path "+p)
		}
	}
	if h.ns.Dir != "" {
		if _, err := os.Lstat(h.ns.Dir); err == nil {
			out = append(out, "folder "+h.ns.Dir)
		}
	}
	if len(out) == 0 {
		h.noteHostFiles()
	}
	return out
}

func isShadowed(p string) bool {
	for _, d := range shadowed {
		if p == d || strings.HasPrefix(p, d+"/") {
			return true
		}
	}
	return false
}

// mountPoints lists the mount points of this process's mount namespace.
func mountPoints() []string {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	s := bufio.NewScanner(f)
	for s.Scan() {
		if fields := strings.Fields(s.Text()); len(fields) > 4 {
			out = append(out, unescape(fields[4]))
		}
	}
	return out
}

// noteHostFiles prints, as a note, the files outside /tmp that changed on
// the host during the run. Any process may have written them (the machine
// is shared), so they do not fail the run; the watched paths above are the
// check.
func (h *holder) noteHostFiles() {
	var changed []string
	budget := 200000 // a host with a container engine's store may hold millions of files
	for _, root := range []string{"/etc", "/var", "/run", "/opt", "/usr/local", "/srv"} {
		_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if budget--; budget < 0 {
				return filepath.SkipAll
			}
			if err != nil {
				return nil
			}
			if d.IsDir() {
				switch p {
				case "/var/cache", "/var/lib/apt", "/var/lib/dpkg", "/var/log", "/var/tmp", "/run/user",
					"/var/lib/docker", "/var/lib/containers", "/var/lib/containerd":
					return filepath.SkipDir
				}
				return nil
			}
			if info, err := d.Info(); err == nil && info.ModTime().After(h.before.started) && len(changed) < 10 {
				changed = append(changed, p)
			}
			return nil
		})
	}
	if len(changed) > 0 {
		fmt.Fprintf(os.Stderr, "realnode: note: host files changed during the run (by this run or another process): %s\n",
			strings.Join(changed, ", "))
	}
}
