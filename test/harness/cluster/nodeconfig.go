package cluster

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/template"
)

// nodeFiles are the paths of a real node's configuration and state, all
// below the cluster's folder (containerd, the kubelet and the CNI plugins
// write nowhere else, or into the namespace's tmpfs).
type nodeFiles struct {
	Dir            string // <cluster>/node
	Containerd     string // containerd's config
	Socket         string
	Kubelet        string // KubeletConfiguration
	KubeletKubecfg string
	KubeProxy      string // KubeProxyConfiguration
	ResolvConf     string // the pods' resolv.conf
	CNIConf        string // the folder of the CNI network configuration
	CertsD         string // containerd's registry hosts configuration
}

func newNodeFiles(clusterDir string) nodeFiles {
	d := filepath.Join(clusterDir, "node")
	return nodeFiles{
		Dir:        d,
		Containerd: filepath.Join(d, "containerd.toml"),
		// A unix socket path has at most 104 bytes, and the node's folder
		// may be deep: the socket lives in the namespace's own tmpfs over
		// /run/containerd instead (see test/harness/realnode).
		Socket:         "/run/containerd/containerd.sock",
		Kubelet:        filepath.Join(d, "kubelet.yaml"),
		KubeletKubecfg: filepath.Join(d, "kubelet.kubeconfig"),
		KubeProxy:      filepath.Join(d, "kube-proxy.yaml"),
		ResolvConf:     filepath.Join(d, "resolv.conf"),
		CNIConf:        filepath.Join(d, "cni", "net.d"),
		CertsD:         filepath.Join(d, "certs.d"),
	}
}

// nodeValues fill the templates below.
type nodeValues struct {
	nodeFiles
	Name, NodeIP, PodCIDR, PodGateway string
	PauseImage, Shim, Runc, CNIBin    string
	CACert, KubeletCert, KubeletKey   string
	AdminKubeconfig                   string
}

// containerdConfig is containerd 2.4's configuration (version 4, where the
// servers are plugins; version 3 works too, migrated with a warning):
// everything below the node's folder, the pinned sandbox image from the
// test registry, and this machine's quirks.
var containerdConfig = template.Must(template.New("containerd").Parse(`version = 4
root = "{{.Dir}}/containerd/root"
state = "{{.Dir}}/containerd/state"

# Pull and shim errors are warnings or worse; its info lines would fill the
# log the harness keeps in memory.
[debug]
  level = "warn"

[plugins]
  [plugins.'io.containerd.server.v1.grpc']
    address = "{{.Socket}}"
  [plugins.'io.containerd.server.v1.ttrpc']
    address = "{{.Socket}}.ttrpc"
  # Its default, /opt/containerd, is on the host.
  [plugins.'io.containerd.internal.v1.opt']
    path = "{{.Dir}}/containerd/opt"
  [plugins.'io.containerd.nri.v1.nri']
    disable = true
  [plugins.'io.containerd.cri.v1.images']
    snapshotter = "overlayfs"
    # registry.k8s.io cannot be reached: the pause program, pushed to the
    # test registry, is the sandbox image (and is never garbage collected).
    [plugins.'io.containerd.cri.v1.images'.pinned_images]
      sandbox = "{{.PauseImage}}"
    # hosts.toml per registry: plain HTTP.
    [plugins.'io.containerd.cri.v1.images'.registry]
      config_path = "{{.CertsD}}"
  [plugins.'io.containerd.cri.v1.runtime']
    # Pod network namespaces below the state folder, not in /run/netns.
    netns_mounts_under_state_dir = true
    # CAP_SYS_RESOURCE is not in this machine's bounding set, so runc cannot
    # lower a sandbox's oom_score_adj: without this every sandbox fails with
    # "can't get final child's PID from pipe: EOF".
    restrict_oom_score_adj = true
    [plugins.'io.containerd.cri.v1.runtime'.containerd]
      default_runtime_name = "runc"
      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
        runtime_type = "io.containerd.runc.v2"
        runtime_path = "{{.Shim}}"
        [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
          # cgroup v1 with the cgroupfs driver, as the kubelet.
          SystemdCgroup = false
          BinaryName = "{{.Runc}}"
    [plugins.'io.containerd.cri.v1.runtime'.cni]
      bin_dirs = ["{{.CNIBin}}"]
      conf_dir = "{{.CNIConf}}"
  [plugins.'io.containerd.grpc.v1.cri']
    stream_server_address = "127.0.0.1"
    stream_server_port = "0"
`))

// cniConfig is a bridge network with host-local addresses: the pods' IPs
// exist only inside the namespace, where the bridge is their gateway.
var cniConfig = template.Must(template.New("cni").Parse(`{
  "cniVersion": "1.0.0",
  "name": "realnode",
  "plugins": [
    {
      "type": "bridge", "bridge": "cni0", "isGateway": true, "ipMasq": false, "hairpinMode": true,
      "ipam": {
        "type": "host-local", "dataDir": "{{.Dir}}/cni/ipam",
        "ranges": [[{"subnet": "{{.PodCIDR}}", "gateway": "{{.PodGateway}}"}]],
        "routes": [{"dst": "0.0.0.0/0"}]
      }
    },
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
`))

// kubeletConfig: cgroup v1 with the cgroupfs driver under the namespace's
// cgroup root, state below the node's folder, x509 clients from the
// cluster's CA (the API server), no read-only port, eviction only when the
// machine is really full.
var kubeletConfig = template.Must(template.New("kubelet").Parse(`apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
containerRuntimeEndpoint: unix://{{.Socket}}
cgroupDriver: cgroupfs
cgroupRoot: {{.CgroupRoot}}
failCgroupV1: false
failSwapOn: false
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: false}
  x509: {clientCAFile: {{.CACert}}}
authorization: {mode: AlwaysAllow}
tlsCertFile: {{.KubeletCert}}
tlsPrivateKeyFile: {{.KubeletKey}}
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
podLogsDir: {{.Dir}}/pod-logs
resolvConf: {{.ResolvConf}}
serializeImagePulls: false
evictionHard: {memory.available: 100Mi, nodefs.available: 2%, imagefs.available: 2%, nodefs.inodesFree: 2%}
`))

// kubeProxyConfig: iptables rules in the namespace's network only; the
// conntrack settings are left alone (some are host-wide), and iptables'
// lock file is the node's (XTABLES_LOCKFILE), not /run/xtables.lock.
var kubeProxyConfig = template.Must(template.New("kube-proxy").Parse(`apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: {{.AdminKubeconfig}}}
mode: iptables
clusterCIDR: {{.PodCIDR}}
hostnameOverride: {{.Name}}
conntrack: {maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
metricsBindAddress: 127.0.0.1:10249
healthzBindAddress: 127.0.0.1:10256
`))

// hostsTOML makes containerd pull from registry over plain HTTP.
func hostsTOML(registry string) string {
	return fmt.Sprintf("server = \"http://%s\"\n\n[host.\"http://%s\"]\n  capabilities = [\"pull\", \"resolve\"]\n", registry, registry)
}

// writeNodeFiles writes every configuration file of the node.
func writeNodeFiles(v nodeValues, cgroupRoot string, registries []string) error {
	for _, d := range []string{v.Dir, v.CNIConf, v.CertsD, filepath.Join(v.Dir, "pod-logs")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	withRoot := struct {
		nodeValues
		CgroupRoot string
	}{v, cgroupRoot}
	for path, t := range map[string]*template.Template{
		v.Containerd: containerdConfig, filepath.Join(v.CNIConf, "10-realnode.conflist"): cniConfig,
		v.Kubelet: kubeletConfig, v.KubeProxy: kubeProxyConfig,
	} {
		var b strings.Builder
		if err := t.Execute(&b, withRoot); err != nil {
			return fmt.Errorf("%s: %w", t.Name(), err)
		}
		if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
			return err
		}
	}
	for _, r := range registries {
		if err := os.MkdirAll(filepath.Join(v.CertsD, r), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(v.CertsD, r, "hosts.toml"), []byte(hostsTOML(r)), 0o644); err != nil {
			return err
		}
	}
	// Pods resolve nothing: there is no cluster DNS, and nothing in the
	// namespace may reach the host's resolver.
	return os.WriteFile(v.ResolvConf, []byte("nameserver 127.0.0.1\n"), 0o644)
}
