package realnode_test

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mlflow-operator/mlflow-operator/test/harness/realnode"
)

// TestNamespace checks what Enter promises inside: another network
// namespace with the node IP on a veth and no route out, the namespace's
// own resolv.conf, the kubelet's sysctls answered by files, tmpfs over the
// host folders the node writes to, and the cgroup root in every hierarchy.
func TestNamespace(t *testing.T) {
	ns := requireNamespace(t)
	host, _ := os.Readlink("/proc/1/ns/net")
	self, _ := os.Readlink("/proc/self/ns/net")
	if host == self {
		t.Fatalf("the test runs in the host's network namespace %s", host)
	}
	link, err := net.InterfaceByName(realnode.NodeLink)
	if err != nil {
		t.Fatalf("no %s: %v", realnode.NodeLink, err)
	}
	addrs, _ := link.Addrs()
	found := false
	for _, a := range addrs {
		found = found || a.String() == realnode.NodeIP+"/24"
	}
	if !found {
		t.Errorf("%s has %v, want %s", realnode.NodeLink, addrs, realnode.NodeIP)
	}
	if _, err := net.Dial("tcp", "192.0.2.1:80"); err == nil || !strings.Contains(err.Error(), "unreachable") {
		t.Errorf("a connection out of the namespace: %v, want network unreachable", err)
	}
	if b, _ := os.ReadFile("/etc/resolv.conf"); string(b) != "nameserver 127.0.0.1\n" {
		t.Errorf("/etc/resolv.conf: %q", b)
	}
	if b, _ := os.ReadFile("/proc/sys/kernel/panic"); strings.TrimSpace(string(b)) != "10" {
		t.Errorf("kernel.panic reads %q inside, want the kubelet's 10", b)
	}
	mounts, _ := os.ReadFile("/proc/self/mountinfo")
	for _, d := range []string{"/var/lib/kubelet", "/run/containerd", "/var/lib/cni"} {
		if !strings.Contains(string(mounts), " "+d+" ") {
			t.Errorf("no tmpfs over %s", d)
		}
	}
	for _, h := range ns.Hierarchies {
		if _, err := os.Stat(filepath.Join(h, ns.CgroupRoot)); err != nil {
			t.Errorf("cgroup root: %v", err)
		}
	}
	t.Logf("namespace %s, holder %d, cgroup root %s; enter it with: %s", ns.Dir, ns.HolderPID, ns.CgroupRoot, ns.EnterCommand())
}
