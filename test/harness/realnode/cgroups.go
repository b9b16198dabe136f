package realnode

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// cgroupHierarchies lists the mount points of every cgroup hierarchy (v1
// and v2) and picks the one that tracks processes: v1's pids controller
// when mounted, else the unified (v2) hierarchy.
func cgroupHierarchies() (all []string, tracking string, err error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, "", fmt.Errorf("read mountinfo: %w", err)
	}
	defer f.Close()
	var unified string
	s := bufio.NewScanner(f)
	for s.Scan() {
		// mountinfo: ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTS [OPTIONAL...] - FSTYPE SOURCE SUPEROPTS
		fields := strings.Fields(s.Text())
		sep := indexOf(fields, "-")
		if sep < 0 || sep+3 >= len(fields) || len(fields) < 5 {
			continue
		}
		mnt, fstype, super := unescape(fields[4]), fields[sep+1], fields[sep+3]
		switch fstype {
		case "cgroup":
			all = append(all, mnt)
			for _, o := range strings.Split(super, ",") {
				if o == "pids" {
					tracking = mnt
				}
			}
		case "cgroup2":
			all = append(all, mnt)
			unified = mnt
		}
	}
	if tracking == "" {
		tracking = unified
	}
	if tracking == "" {
		return nil, "", fmt.Errorf("no cgroup pids controller and no cgroup2 hierarchy is mounted")
	}
	return all, tracking, s.Err()
}

func indexOf(s []string, v string) int {
	for i, x := range s {
		if x == v {
			return i
		}
	}
	return -1
}

// unescape undoes mountinfo's octal escapes (\040 for a space).
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// createCgroupRoot makes the kubelet's cgroupRoot in every hierarchy: the
// kubelet refuses to start when one lacks it. A new v1 cpuset cgroup has no
// CPUs or memory nodes until given its parent's; a new v2 cgroup gets its
// parent's controllers enabled for its children.
func (n *Namespace) createCgroupRoot() error {
	for _, h := range n.Hierarchies {
		dir := filepath.Join(h, n.CgroupRoot)
		if err := os.Mkdir(dir, 0o755); err != nil {
			return fmt.Errorf("create cgroup %s: %w", dir, err)
		}
		for _, file := range []string{"cpuset.cpus", "cpuset.mems"} {
			b, err := os.ReadFile(filepath.Join(h, file))
			if err != nil {
				continue // not the cpuset hierarchy
			}
			if err := os.WriteFile(filepath.Join(dir, file), b, 0o644); err != nil {
				return fmt.Errorf("copy %s into %s: %w", file, dir, err)
			}
		}
		if b, err := os.ReadFile(filepath.Join(dir, "cgroup.controllers")); err == nil && len(strings.TrimSpace(string(b))) > 0 {
			var enable []string
			for _, c := range strings.Fields(string(b)) {
				enable = append(enable, "+"+c)
			}
			if err := os.WriteFile(filepath.Join(dir, "cgroup.subtree_control"), []byte(strings.Join(enable, " ")), 0o644); err != nil {
				return fmt.Errorf("enable controllers in %s: %w", dir, err)
			}
		}
	}
	return nil
}

// Join moves pid into the cgroup <CgroupRoot>/<sub> of the tracking
// hierarchy, creating it. What the process forks later lands there too: the
// node's containerd joins "runtime", so its shims can be found without
// knowing their names.
func (n *Namespace) Join(sub string, pid int) error {
	dir := filepath.Join(n.Tracking, n.CgroupRoot, sub)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("realnode: create cgroup %s: %w", dir, err)
	}
	if err := os.WriteFile(filepath.Join(dir, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0o644); err != nil {
		return fmt.Errorf("realnode: move %d into %s: %w", pid, dir, err)
	}
	return nil
}

// Procs lists the processes in the cgroup <CgroupRoot>/<sub> and below it
// ("" for the whole node: the pods under kubepods, containerd and its shims
// under runtime).
func (n *Namespace) Procs(sub string) []int {
	var out []int
	seen := map[int]bool{}
	_ = filepath.WalkDir(filepath.Join(n.Tracking, n.CgroupRoot, sub), func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || d.Name() != "cgroup.procs" {
			return nil
		}
		b, _ := os.ReadFile(p)
		for _, f := range strings.Fields(string(b)) {
			if pid, err := strconv.Atoi(f); err == nil && !seen[pid] {
				seen[pid] = true
				out = append(out, pid)
			}
		}
		return nil
	})
	return out
}

// KillCgroup sends SIGKILL to every process in <CgroupRoot>/<sub> and below
// it, except the PIDs in keep, until none is left or timeout passes (a pod
// process may fork while it is being killed).
func (n *Namespace) KillCgroup(sub string, timeout time.Duration, keep ...int) error {
	kept := map[int]bool{}
	for _, p := range keep {
		kept[p] = true
	}
	deadline := time.Now().Add(timeout)
	for {
		var left []int
		for _, p := range n.Procs(sub) {
			if !kept[p] {
				left = append(left, p)
				_ = syscall.Kill(p, syscall.SIGKILL)
			}
		}
		if len(left) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("realnode: processes %v still in cgroup %s after %s", left, filepath.Join(n.CgroupRoot, sub), timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// RemoveCgroups removes the (empty) cgroups below CgroupRoot in every
// hierarchy, deepest first, and CgroupRoot itself when withRoot. A cgroup
// whose last process just died may refuse for a moment (EBUSY), so each
// hierarchy is tried again for a few seconds.
func (n *Namespace) RemoveCgroups(withRoot bool) error {
	var errs []string
	for _, h := range n.Hierarchies {
		root := filepath.Join(h, n.CgroupRoot)
		var dirs []string
		_ = filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() && (withRoot || p != root) {
				dirs = append(dirs, p)
			}
			return nil
		})
		sort.Slice(dirs, func(i, j int) bool { return len(dirs[i]) > len(dirs[j]) })
		for _, d := range dirs {
			var err error
			for try := 0; try < 50; try++ {
				if err = syscall.Rmdir(d); err == nil || os.IsNotExist(err) {
					err = nil
					break
				}
				time.Sleep(100 * time.Millisecond)
			}
			if err != nil {
				errs = append(errs, fmt.Sprintf("%s: %v", d, err))
			}
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("realnode: cgroups left: %s", strings.Join(errs, "; "))
	}
	return nil
}
