package cluster

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/mlflow-operator/mlflow-operator/test/harness/procs"
	"github.com/mlflow-operator/mlflow-operator/test/harness/realnode"
)

// RealNodeName is the real node's name.
const RealNodeName = "realnode"

// cniBin is where Debian's containernetworking-plugins puts the plugins.
const cniBin = "/usr/lib/cni"

// realNodeInUse: a namespace holds one real node at a time (its node IP,
// bridge, ports and cgroup root are fixed).
var realNodeInUse atomic.Bool

// realNode is a real node's part of a cluster.
type realNode struct {
	ns         *realnode.Namespace
	registries []string
	files      nodeFiles
	// The binaries.
	kubelet, kubeProxy, containerd, shim, ctr, pause, runc string

	node           *nodePKI
	containerdProc *procs.Process
	kubeletProc    *procs.Process
}

// prepareRealNode checks everything a real node needs, before anything
// starts, and says how to get what is missing.
func prepareRealNode(k8sBin string, o Options) (*realNode, error) {
	ns := realnode.Current()
	if ns == nil {
		return nil, fmt.Errorf("cluster.RealNode runs inside the real node's namespaces: call realnode.Enter() first (in TestMain or main)")
	}
	if len(o.Registries) == 0 {
		return nil, fmt.Errorf("cluster.RealNode needs Options.Registries: the registry the sandbox image is pushed to")
	}
	out, err := exec.Command(filepath.Join(procs.RepoRoot(), "hack", "realnode.sh"), "--print-dir").Output()
	if err != nil {
		return nil, fmt.Errorf("hack/realnode.sh --print-dir: %w", err)
	}
	rdir := strings.TrimSpace(string(out))
	r := &realNode{
		ns: ns, registries: o.Registries,
		kubelet: filepath.Join(k8sBin, "kubelet"), kubeProxy: filepath.Join(k8sBin, "kube-proxy"),
		containerd: filepath.Join(rdir, "containerd"), shim: filepath.Join(rdir, "containerd-shim-runc-v2"),
		ctr: filepath.Join(rdir, "ctr"), pause: filepath.Join(rdir, "pause"),
	}
	var missing []string
	for _, b := range []string{r.kubelet, r.kubeProxy, r.containerd, r.shim, r.ctr, r.pause,
		filepath.Join(cniBin, "bridge"), filepath.Join(cniBin, "host-local"), filepath.Join(cniBin, "loopback")} {
		if _, err := os.Stat(b); err != nil {
			missing = append(missing, b)
		}
	}
	if r.runc, err = lookPath("runc"); err != nil {
		missing = append(missing, "runc")
	}
	if _, err := lookPath("iptables"); err != nil {
		missing = append(missing, "iptables")
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("the real node needs %s: run `make realnode` or hack/realnode.sh", strings.Join(missing, ", "))
	}
	if !realNodeInUse.CompareAndSwap(false, true) {
		return nil, fmt.Errorf("a real node already runs in this namespace: stop its cluster first")
	}
	return r, nil
}

// lookPath finds a tool in PATH or in /usr/sbin, where Debian puts runc and
// iptables and where a user's PATH may not look.
func lookPath(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	return exec.LookPath(filepath.Join("/usr/sbin", name))
}

// apiserverArgs are the API server's flags for a real node: the Node
// authorizer and NodeRestriction for the kubelet's identity, and a client
// certificate to reach the kubelet (logs, exec) at its InternalIP, whose
// serving certificate it verifies.
func (r *realNode) apiserverArgs(pk *pki) ([]string, error) {
	var err error
	if r.node, err = pk.node(RealNodeName, realnode.NodeIP); err != nil {
		return nil, err
	}
	// Pods reach the API server (the operator's pod, in-cluster clients)
	// through the kubernetes Service: it listens on the node's IP too, and
	// its endpoint is kept (these flags come after, and win over, the
	// loopback-only defaults). The node's IP exists only in the namespace.
	return []string{"--bind-address=0.0.0.0", "--advertise-address=" + realnode.NodeIP, "--endpoint-reconciler-type=lease",
		"--authorization-mode=Node,RBAC", "--enable-admission-plugins=NodeRestriction",
		"--kubelet-client-certificate=" + r.node.apiserverClientCert, "--kubelet-client-key=" + r.node.apiserverClientKey,
		"--kubelet-certificate-authority=" + pk.caCert, "--kubelet-preferred-address-types=InternalIP"}, nil
}

// startRealNode pushes the sandbox image, then starts containerd, the
// kubelet and kube-proxy, and waits for each.
func (c *Cluster) startRealNode(ctx context.Context, pk *pki, server string) error {
	r := c.real
	r.files = newNodeFiles(c.Dir)
	pauseRef, err := r.pushPause(ctx)
	if err != nil {
		return err
	}
	c.mark("pause image pushed")
	v := nodeValues{
		nodeFiles: r.files, Name: RealNodeName, NodeIP: realnode.NodeIP, PodCIDR: realnode.PodCIDR, PodGateway: realnode.PodGateway,
		PauseImage: pauseRef, Shim: r.shim, Runc: r.runc, CNIBin: cniBin,
		CACert: pk.caCert, KubeletCert: r.node.kubeletCert, KubeletKey: r.node.kubeletKey, AdminKubeconfig: c.Kubeconfig,
	}
	if err := writeNodeFiles(v, r.ns.CgroupRoot, r.registries); err != nil {
		return fmt.Errorf("real node configuration: %w", err)
	}
	if err := writeKubeconfig(r.files.KubeletKubecfg, server, "system:node:"+RealNodeName, pk.caPEM, r.node.nodeCertPEM, r.node.nodeKeyPEM); err != nil {
		return err
	}

	// containerd finds its shim next to itself and runc and iptables in
	// /usr/sbin. It joins the node's "runtime" cgroup at once (before it
	// can start a shim), so the shims it forks are found there at Stop.
	path := "PATH=" + filepath.Dir(r.shim) + ":" + os.Getenv("PATH") + ":/usr/sbin:/sbin"
	if r.containerdProc, err = c.run([]string{path}, r.containerd, "--config", r.files.Containerd); err != nil {
		return err
	}
	if err := r.ns.Join("runtime", r.containerdProc.Cmd.Process.Pid); err != nil {
		return err
	}
	if err := waitFor(30*time.Second, func() error {
		conn, err := net.Dial("unix", r.files.Socket)
		if err == nil {
			conn.Close()
		}
		return err
	}); err != nil {
		return fmt.Errorf("containerd does not serve on %s: %w\n%s", r.files.Socket, err, c.Logs())
	}
	c.mark("containerd serving")

	if r.kubeletProc, err = c.run([]string{path}, r.kubelet, "--config="+r.files.Kubelet, "--kubeconfig="+r.files.KubeletKubecfg,
		"--root-dir="+kubeletRootDir, "--cert-dir="+filepath.Join(r.files.Dir, "kubelet-pki"),
		"--hostname-override="+RealNodeName, "--node-ip="+realnode.NodeIP, "--v=1"); err != nil {
		return err
	}
	c.mark("kubelet started")

	// kube-proxy: ClusterIP Services, in iptables mode, in the namespace's
	// network only. It reads its IP from the Node the kubelet registers;
	// its health answers 200 once the rules are synced.
	lock := "XTABLES_LOCKFILE=" + filepath.Join(r.files.Dir, "xtables.lock")
	if _, err := c.run([]string{path, lock}, r.kubeProxy, "--config="+r.files.KubeProxy, "--v=1"); err != nil {
		return err
	}
	if err := c.waitNodesReady(ctx, 1); err != nil {
		return err
	}
	c.mark("node Ready")
	if err := waitFor(90*time.Second, func() error {
		resp, err := http.Get("http://127.0.0.1:10256/healthz")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("kube-proxy health: %s", resp.Status)
		}
		return nil
	}); err != nil {
		return fmt.Errorf("kube-proxy not healthy: %w\n%s", err, c.Logs())
	}
	c.mark("kube-proxy healthy")
	return nil
}

// pushPause pushes the pause program as the sandbox image, tagged with its
// content's hash so a changed program is never confused with an old one.
func (r *realNode) pushPause(ctx context.Context) (string, error) {
	b, err := os.ReadFile(r.pause)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(b)
	ref := r.registries[0] + "/mlflow-operator/pause:" + hex.EncodeToString(sum[:6])
	if _, err := realnode.PushBinary(ctx, ref, r.pause, v1.Config{}); err != nil {
		return "", fmt.Errorf("push the sandbox image to %s (is the registry running in the namespace?): %w", r.registries[0], err)
	}
	return ref, nil
}

// ForgetNodeImage makes the real node forget an image it pulled, as a node
// that never ran it: every name containerd keeps for the manifest digest
// (the reference by digest and the image ID) is removed, and its content
// and unpacked layers with them once no container uses them. The next pod
// that runs the image pulls it again.
func (c *Cluster) ForgetNodeImage(ctx context.Context, manifestDigest string) error {
	if c.real == nil {
		return fmt.Errorf("ForgetNodeImage needs the real node")
	}
	ctr := func(args ...string) ([]byte, error) {
		cmd := exec.CommandContext(ctx, c.real.ctr, append([]string{"--address", c.real.files.Socket, "--namespace", "k8s.io"}, args...)...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			return nil, fmt.Errorf("ctr %s: %w\n%s", strings.Join(args, " "), err, out)
		}
		return out, nil
	}
	out, err := ctr("images", "list")
	if err != nil {
		return err
	}
	var names []string
	for _, line := range strings.Split(string(out), "\n")[1:] {
		if f := strings.Fields(line); len(f) >= 3 && f[2] == manifestDigest {
			names = append(names, f[0])
		}
	}
	if len(names) == 0 {
		return fmt.Errorf("the node has no image with manifest %s:\n%s", manifestDigest, out)
	}
	// The kubelet keeps dead containers a while after their pods went;
	// their snapshots hold the image's unpacked layers, and a pull skips
	// the layers it finds unpacked. They go first.
	if out, err = ctr("containers", "list"); err != nil {
		return err
	}
	for _, line := range strings.Split(string(out), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) < 2 || !strings.Contains(f[1], manifestDigest) && !slices.Contains(names, f[1]) {
			continue
		}
		if _, err := ctr("containers", "delete", f[0]); err != nil {
			return fmt.Errorf("a container of the image still runs: %w", err)
		}
	}
	_, err = ctr(append([]string{"images", "remove", "--sync"}, names...)...)
	return err
}

// kubeletRootDir is the kubelet's root folder: on the namespace's own tmpfs
// over /var/lib/kubelet (one real node per namespace at a time), with a
// short path, since the kubelet binds unix sockets below it and a socket's
// path may not exceed 107 bytes (a cluster folder below TMPDIR often does).
const kubeletRootDir = "/var/lib/kubelet/node"

// stopRealNode stops what must go before the daemons, in this order: the
// kubelet (or it restarts what is stopped), the pods' processes, the
// shims. Stop then stops the daemons in reverse order of start.
func (c *Cluster) stopRealNode() {
	r := c.real
	if r.kubeletProc != nil {
		r.kubeletProc.Stop(10 * time.Second)
	}
	_ = r.ns.KillCgroup("kubepods", 10*time.Second)
	if r.containerdProc != nil {
		_ = r.ns.KillCgroup("runtime", 10*time.Second, r.containerdProc.Cmd.Process.Pid)
	}
}

// cleanUp runs once every process is gone: it detaches the mounts the node
// left in its folder (containers' root filesystems, pod network
// namespaces, volumes), removes the bridge and the cgroups below the
// namespace's root, so another cluster can start in the same namespace.
func (r *realNode) cleanUp(dir string) {
	if dir != "" {
		_ = realnode.UnmountUnder(dir)
	}
	_ = realnode.UnmountUnder(kubeletRootDir)
	_ = os.RemoveAll(kubeletRootDir)
	_ = exec.Command("ip", "link", "delete", "cni0").Run()
	_ = r.ns.RemoveCgroups(false)
	realNodeInUse.Store(false)
}

// waitFor retries check every 100 ms until it returns nil or timeout
// passes, and returns its last error.
func waitFor(timeout time.Duration, check func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := check()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(100 * time.Millisecond)
	}
}
