package realnode

import (
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
)

// UnmountUnder detaches every mount of this mount namespace below dir,
// deepest first: what a killed node leaves in its folders (containers'
// overlay root filesystems, pod network namespaces, the kubelet's volume
// tmpfs). Run inside the namespaces before removing a node's folder, so the
// removal does not walk into a container's files.
func UnmountUnder(dir string) error {
	dir = filepath.Clean(dir)
	var under []string
	for _, m := range mountPoints() {
		if strings.HasPrefix(m, dir+"/") {
			under = append(under, m)
		}
	}
	sort.Slice(under, func(i, j int) bool { return len(under[i]) > len(under[j]) })
	var errs []string
	for _, m := range under {
		if err := syscall.Unmount(m, syscall.MNT_DETACH); err != nil && err != syscall.EINVAL && err != syscall.ENOENT {
			errs = append(errs, fmt.Sprintf("%s: %v", m, err))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("realnode: unmount: %s", strings.Join(errs, "; "))
	}
	return nil
}

// Mounts lists the mount points of this process's mount namespace below
// dir, for checks that a node left none.
func Mounts(dir string) []string {
	dir = filepath.Clean(dir)
	var out []string
	for _, m := range mountPoints() {
		if strings.HasPrefix(m, dir+"/") || m == dir {
			out = append(out, m)
		}
	}
	return out
}
