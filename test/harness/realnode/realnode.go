// Package realnode gives the local cluster a REAL node (a kubelet, containerd,
// runc and the CNI bridge) without touching the machine it runs on.
//
// Everything runs inside one network namespace and one private mount
// namespace that this package creates: the control plane, the registry,
// containerd, the kubelet, kube-proxy, the CNI bridge with the pod IPs
// (10.88.0.0/16), and whatever talks to the pods (the test itself, the
// operator, MLflow). Nothing is routed out of it: tests send traffic only to
// loopback or to addresses inside namespaces they made.
//
// A TestMain or a main() calls Enter first. Outside the namespaces Enter
// creates them, runs the same program again inside them, waits for it, tears
// everything down (no process, mount, cgroup, network link or host folder is
// left) and exits with the program's exit code. Inside, Enter returns the
// Namespace and the program just runs: every process it starts is in the
// namespaces too. cluster.Start with cluster.RealNode then starts the node.
//
// This machine's quirks, each handled in one place:
//   - the kubelet refuses a loopback node IP and there is no dummy network
//     driver: the node IP lives on a veth pair inside the namespace;
//   - the kubelet rewrites host-wide sysctls (vm.overcommit_memory,
//     kernel.panic...): files holding the values it wants are bind-mounted
//     over those /proc/sys entries in the private mount namespace;
//   - the kubelet hard-codes /var/lib/kubelet/device-plugins and
//     /var/log/containers, containerd's shims /run/containerd/s, CNI caches
//     in /var/lib/cni: a tmpfs over each, in the private mount namespace;
//   - `ip netns exec` remounts /sys and hides the cgroup mounts, so the
//     namespaces are entered with nsenter -n -m;
//   - cgroup v1 (hybrid): the kubelet's cgroupRoot is created in every
//     hierarchy first, with cpuset.cpus and cpuset.mems copied;
//   - the namespace has its own resolv.conf (127.0.0.1): nothing in it may
//     reach the host's resolver.
package realnode

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
)

// envVar, set in the program Enter runs inside the namespaces, is the
// namespace's folder; its namespace.json describes the namespace.
const envVar = "MLFLOW_OPERATOR_REALNODE"

// The fixed addresses inside the namespace: nothing outside sees them, so
// every run (and runs in parallel) can use the same ones.
const (
	// NodeIP is the node's InternalIP, on the veth NodeLink.
	NodeIP = "10.77.0.1"
	// NodeLink is the veth that carries NodeIP (its peer is NodeLink+"-peer").
	NodeLink = "realnode0"
	// PodCIDR is the CNI bridge's subnet; PodGateway is the bridge's address.
	PodCIDR    = "10.88.0.0/16"
	PodGateway = "10.88.0.1"
	// ServiceCIDR holds the ClusterIPs; it is routed to NodeLink, so a
	// connection to a ClusterIP leaves through kube-proxy's rules. A /16:
	// scale runs (make bench-scale) make a Service per ModelDeployment,
	// thousands of them; the kubernetes Service keeps 10.0.0.1.
	ServiceCIDR = "10.0.0.0/16"
)

// ErrUnsupported is wrapped by Enter's error when this machine cannot run a
// real node (not root, a missing tool): the caller may fall back to kwok.
var ErrUnsupported = errors.New("a real node cannot run here")

// Namespace is the namespace pair a program runs in after Enter.
type Namespace struct {
	// Dir is the namespace's own folder (under the host's /tmp, visible
	// inside too): resolv.conf, the sysctl files, the PID record, and the
	// TMPDIR of the program inside (so its temporary folders, a cluster's
	// too, go with it). Removed at teardown.
	Dir string `json:"dir"`
	// HolderPID is the process that holds the namespaces open; from the
	// host, `nsenter -t <HolderPID> -n -m -- CMD` runs CMD inside them.
	HolderPID int `json:"holderPID"`
	// CgroupRoot is the kubelet's cgroupRoot ("/mlflow-operator-realnode-<id>"),
	// created in every cgroup hierarchy.
	CgroupRoot string `json:"cgroupRoot"`
	// Hierarchies are the mount points of the cgroup hierarchies.
	Hierarchies []string `json:"hierarchies"`
	// Tracking is the hierarchy whose cgroup.procs list the node's
	// processes (v1 "pids", or the unified hierarchy).
	Tracking string `json:"tracking"`
	// NetNS and MntNS name the namespaces ("net:[<inode>]"), as
	// /proc/<pid>/ns/ links do: how the teardown recognises their processes.
	NetNS string `json:"netNS"`
	MntNS string `json:"mntNS"`
}

var (
	current     *Namespace
	currentErr  error
	currentOnce sync.Once
)

// Current is the namespace this process runs in, nil when Enter has not put
// it in one.
func Current() *Namespace {
	currentOnce.Do(func() {
		dir := os.Getenv(envVar)
		if dir == "" {
			return
		}
		current, currentErr = load(dir)
	})
	return current
}

func load(dir string) (*Namespace, error) {
	b, err := os.ReadFile(filepath.Join(dir, "namespace.json"))
	if err != nil {
		return nil, fmt.Errorf("realnode: %s is set but the namespace is not described: %w", envVar, err)
	}
	n := &Namespace{}
	if err := json.Unmarshal(b, n); err != nil {
		return nil, fmt.Errorf("realnode: read %s: %w", filepath.Join(dir, "namespace.json"), err)
	}
	return n, nil
}

func (n *Namespace) save() error {
	b, err := json.MarshalIndent(n, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(n.Dir, "namespace.json"), b, 0o600)
}

// Record notes a daemon started in the namespace (its own PID, not a
// wrapper's), so that the teardown stops it in order even when the program
// died without stopping it: the kubelet first, the others in reverse order
// of start. Processes are never found by name.
func (n *Namespace) Record(pid int, name string) error {
	f, err := os.OpenFile(filepath.Join(n.Dir, "pids"), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("realnode: record %s: %w", name, err)
	}
	defer f.Close()
	if _, err := fmt.Fprintf(f, "%d %s\n", pid, name); err != nil {
		return fmt.Errorf("realnode: record %s: %w", name, err)
	}
	return nil
}

type recorded struct {
	pid  int
	name string
}

func (n *Namespace) recorded() []recorded {
	b, _ := os.ReadFile(filepath.Join(n.Dir, "pids"))
	var out []recorded
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) != 2 {
			continue
		}
		if pid, err := strconv.Atoi(f[0]); err == nil {
			out = append(out, recorded{pid, f[1]})
		}
	}
	return out
}

// EnterCommand is the command line that runs a program inside the
// namespaces from the host (for a person debugging a running test).
func (n *Namespace) EnterCommand() string {
	return fmt.Sprintf("nsenter -t %d -n -m --", n.HolderPID)
}
