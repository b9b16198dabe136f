// Package cluster runs a whole local Kubernetes cluster from source-built
// binaries, for end-to-end tests and the demo: etcd, kube-apiserver,
// kube-controller-manager and kube-scheduler, and nodes of one of two kinds.
//
// By default kwok plays the kubelets of fake nodes: pods get IPs in
// 127.1.0.0/16, so a process on this machine listening on 0.0.0.0 answers at
// every pod IP. There is no container runtime: kwok marks pods Running and
// Ready (or, with its chaos stages, failing). It scales, and fails pods on
// demand.
//
// With Options.Node RealNode, one real node runs the pods: a kubelet,
// containerd, runc, the CNI bridge and kube-proxy, inside the namespaces of
// test/harness/realnode (the program calls realnode.Enter first). Images
// are really pulled from the given registry and containers really run.
package cluster

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/mlflow-operator/mlflow-operator/test/harness/procs"
	"github.com/mlflow-operator/mlflow-operator/test/harness/realnode"
)

// NodeKind is what runs the cluster's pods.
type NodeKind int

const (
	// KwokNodes (the default): Options.Nodes fake nodes played by kwok.
	KwokNodes NodeKind = iota
	// RealNode: one real node (kubelet, containerd, runc, CNI bridge,
	// kube-proxy) named RealNodeName. The process must run inside
	// realnode.Enter's namespaces, and Options.Registries must name the
	// registry the sandbox image is pushed to.
	RealNode
)

// Options of a cluster.
type Options struct {
	// Dir holds the cluster's data, certificates, kubeconfig and logs; a
	// temporary folder when empty.
	Dir string
	// Nodes is how many fake nodes; 3 when zero. A real node is one node.
	Nodes int
	// Node is what runs the pods: KwokNodes or RealNode.
	Node NodeKind
	// Registries are the plain-HTTP registries (host:port) a real node pulls
	// from. The sandbox ("pause") image is pushed to the first one before
	// containerd starts, so it must be running. Ignored with kwok nodes.
	Registries []string
	// AuditUsers, when set, makes kube-apiserver write Cluster.AuditLog:
	// one JSON line (audit level Metadata) per request of these users, when
	// its answer is complete (a watch when it starts). Nothing else is
	// logged. Give a client such a user with UserKubeconfig.
	AuditUsers []string
}

// Cluster is a running local cluster.
type Cluster struct {
	Dir string
	// Kubeconfig is the path of an admin kubeconfig.
	Kubeconfig string
	// AuditLog is the API server's audit log when Options.AuditUsers was
	// set, else empty.
	AuditLog string
	Config   *rest.Config
	Client   client.Client
	// Milestones are when each part was up, from the start of Start.
	Milestones []Milestone
	procs      []*procs.Process
	names      []string
	ownDir     bool
	real       *realNode
	started    time.Time
	pki        *pki
	server     string
}

// Milestone is a step of Start and when it was done.
type Milestone struct {
	Name string
	At   time.Duration
}

func (c *Cluster) mark(name string) {
	c.Milestones = append(c.Milestones, Milestone{name, time.Since(c.started)})
}

func script(args ...string) (string, error) {
	out, err := exec.Command(filepath.Join(procs.RepoRoot(), "hack", "controlplane.sh"), args...).Output()
	return strings.TrimSpace(string(out)), err
}

// Start brings the cluster up and waits until its nodes are Ready.
func Start(ctx context.Context, o Options) (*Cluster, error) {
	c := &Cluster{Dir: o.Dir, started: time.Now()}
	ok := false
	defer func() {
		if !ok {
			c.Stop()
		}
	}()
	bin, err := script("--print-dir")
	if err != nil {
		return nil, err
	}
	need := []string{"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok"}
	if o.Node == RealNode {
		need = need[:4]
	}
	for _, b := range need {
		if _, err := os.Stat(filepath.Join(bin, b)); err != nil {
			return nil, fmt.Errorf("%s is not built: run `make test` or hack/controlplane.sh %s", b, b)
		}
	}
	tmp := ""
	if o.Node == RealNode {
		// Everything the node needs is checked before anything starts.
		if c.real, err = prepareRealNode(bin, o); err != nil {
			return nil, err
		}
		// Below the namespace's folder, which its teardown removes whatever
		// happens to this process.
		tmp = c.real.ns.Dir
	}
	if c.Dir == "" {
		if c.Dir, err = os.MkdirTemp(tmp, "local-cluster-"); err != nil {
			return nil, err
		}
		c.ownDir = true
	} else if err := os.MkdirAll(c.Dir, 0o755); err != nil {
		return nil, err
	}
	pk, err := newPKI(c.Dir)
	if err != nil {
		return nil, err
	}
	c.pki = pk
	etcdPort, _ := procs.FreePort()
	peerPort, _ := procs.FreePort()
	apiPort, _ := procs.FreePort()
	etcdURL := fmt.Sprintf("http://127.0.0.1:%d", etcdPort)
	peerURL := fmt.Sprintf("http://127.0.0.1:%d", peerPort)
	if _, err := c.run(nil, filepath.Join(bin, "etcd"), "--name=local", "--data-dir="+filepath.Join(c.Dir, "etcd"),
		"--listen-client-urls="+etcdURL, "--advertise-client-urls="+etcdURL,
		"--listen-peer-urls="+peerURL, "--initial-advertise-peer-urls="+peerURL, "--initial-cluster=local="+peerURL,
		"--unsafe-no-fsync=true", "--log-level=warn"); err != nil {
		return nil, err
	}
	apiArgs := []string{"--etcd-servers=" + etcdURL, "--secure-port=" + strconv.Itoa(apiPort), "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1",
		"--endpoint-reconciler-type=none", "--tls-cert-file=" + pk.serverCert, "--tls-private-key-file=" + pk.serverKey,
		"--client-ca-file=" + pk.caCert, "--service-account-issuer=https://kubernetes.default.svc", "--service-account-key-file=" + pk.saPub,
		"--service-account-signing-key-file=" + pk.saKey, "--service-cluster-ip-range=" + realnode.ServiceCIDR,
		"--allow-privileged=false", "-v=0"}
	if c.real != nil {
		extra, err := c.real.apiserverArgs(pk)
		if err != nil {
			return nil, err
		}
		apiArgs = append(apiArgs, extra...)
	} else {
		apiArgs = append(apiArgs, "--authorization-mode=RBAC")
	}
	if len(o.AuditUsers) > 0 {
		extra, err := c.auditArgs(o.AuditUsers)
		if err != nil {
			return nil, err
		}
		apiArgs = append(apiArgs, extra...)
	}
	if _, err := c.run(nil, filepath.Join(bin, "kube-apiserver"), apiArgs...); err != nil {
		return nil, err
	}
	c.Kubeconfig = filepath.Join(c.Dir, "kubeconfig")
	server := fmt.Sprintf("https://127.0.0.1:%d", apiPort)
	c.server = server
	if err := writeKubeconfig(c.Kubeconfig, server, "admin", pk.caPEM, pk.adminCertPEM, pk.adminKeyPEM); err != nil {
		return nil, err
	}
	if c.Config, err = clientcmd.BuildConfigFromFlags("", c.Kubeconfig); err != nil {
		return nil, err
	}
	if c.Client, err = client.New(c.Config, client.Options{Scheme: scheme.Scheme}); err != nil {
		return nil, err
	}
	if err := c.waitAPI(ctx); err != nil {
		return nil, err
	}
	c.mark("kube-apiserver ready")
	// The controller manager's and the scheduler's client-side rate limits
	// are lifted from their defaults (20 and 50 requests a second): at
	// 20 a second, the Deployment -> ReplicaSet -> Pod -> EndpointSlice
	// pipeline of the controller manager created about one serving pod a
	// second, whatever the operator did (issue 15's bench-scale at 1,000
	// objects). Clusters of that size run these components with limits of
	// this order; the API server's priority and fairness still applies.
	if _, err := c.run(nil, filepath.Join(bin, "kube-controller-manager"), "--kubeconfig="+c.Kubeconfig, "--leader-elect=false",
		"--service-account-private-key-file="+pk.saKey, "--root-ca-file="+pk.caCert, "--controllers=*", "--secure-port=0",
		"--use-service-account-credentials=false", "--kube-api-qps=400", "--kube-api-burst=800",
		"--concurrent-deployment-syncs=10", "--concurrent-replicaset-syncs=10", "--concurrent-service-endpoint-syncs=10",
		"--concurrent-gc-syncs=10"); err != nil {
		return nil, err
	}
	if _, err := c.run(nil, filepath.Join(bin, "kube-scheduler"), "--kubeconfig="+c.Kubeconfig, "--leader-elect=false", "--secure-port=0",
		"--kube-api-qps=400", "--kube-api-burst=800"); err != nil {
		return nil, err
	}
	n := o.Nodes
	if c.real != nil {
		n = 1
		if err := c.startRealNode(ctx, pk, server); err != nil {
			return nil, err
		}
	} else {
		if n == 0 {
			n = 3
		}
		if err := c.startKwok(ctx, bin, n); err != nil {
			return nil, err
		}
	}
	if err := c.waitNodesReady(ctx, n); err != nil {
		return nil, err
	}
	if err := c.waitDefaultServiceAccount(ctx); err != nil {
		return nil, err
	}
	ok = true
	return c, nil
}

// run starts a component with env added to this process's environment;
// its output is kept for Logs. In a real node's namespace the PID is
// recorded, for the namespace's teardown.
func (c *Cluster) run(env []string, bin string, args ...string) (*procs.Process, error) {
	cmd := exec.Command(bin, args...)
	if len(env) > 0 {
		cmd.Env = append(os.Environ(), env...)
	}
	p, err := procs.Start(cmd)
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", filepath.Base(bin), err)
	}
	c.procs = append(c.procs, p)
	c.names = append(c.names, filepath.Base(bin))
	if c.real != nil {
		if err := c.real.ns.Record(p.Cmd.Process.Pid, filepath.Base(bin)); err != nil {
			return nil, err
		}
	}
	time.Sleep(200 * time.Millisecond)
	if p.Exited() {
		return nil, fmt.Errorf("%s exited at once:\n%s", filepath.Base(bin), lastLines(p.Logs.String(), 30))
	}
	return p, nil
}

func (c *Cluster) waitAPI(ctx context.Context) error {
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		ns := &corev1.Namespace{}
		if err := c.Client.Get(ctx, client.ObjectKey{Name: "default"}, ns); err == nil {
			return nil
		}
		time.Sleep(200 * time.Millisecond)
	}
	return fmt.Errorf("kube-apiserver did not come up:\n%s", c.Logs())
}

func (c *Cluster) waitNodesReady(ctx context.Context, n int) error {
	timeout := 60 * time.Second
	if c.real != nil {
		timeout = 120 * time.Second // the kubelet waits for the runtime and the CNI configuration
	}
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		nodes := &corev1.NodeList{}
		if err := c.Client.List(ctx, nodes); err == nil {
			ready := 0
			for _, node := range nodes.Items {
				for _, cond := range node.Status.Conditions {
					if cond.Type == corev1.NodeReady && cond.Status == corev1.ConditionTrue {
						ready++
					}
				}
			}
			if ready >= n {
				return nil
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	return fmt.Errorf("%d node(s) not Ready after %s:\n%s", n, timeout, c.Logs())
}

func (c *Cluster) waitDefaultServiceAccount(ctx context.Context) error {
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if err := c.Client.Get(ctx, client.ObjectKey{Namespace: "default", Name: "default"}, &corev1.ServiceAccount{}); err == nil {
			return nil
		}
		time.Sleep(200 * time.Millisecond)
	}
	return fmt.Errorf("no default service account:\n%s", c.Logs())
}

// Logs is the last lines each component printed.
func (c *Cluster) Logs() string {
	var b strings.Builder
	for i, p := range c.procs {
		fmt.Fprintf(&b, "==> %s\n%s\n", c.names[i], lastLines(p.Logs.String(), 20))
	}
	return b.String()
}

// Stop stops every component, in reverse order, and removes the data folder
// when Start made it. No process is left behind; with a real node, no pod,
// mount or cgroup either (the kubelet goes first, then the pods and shims).
func (c *Cluster) Stop() {
	if c.real != nil {
		c.stopRealNode()
	}
	for i := len(c.procs) - 1; i >= 0; i-- {
		if !c.procs[i].Exited() {
			c.procs[i].Stop(10 * time.Second)
		}
	}
	c.procs = nil
	if c.real != nil {
		c.real.cleanUp(c.Dir)
		c.real = nil
	}
	if c.ownDir {
		_ = os.RemoveAll(c.Dir)
	}
}

// PIDs of the components, for tests that check nothing is left running.
func (c *Cluster) PIDs() []int {
	var out []int
	for _, p := range c.procs {
		out = append(out, p.Cmd.Process.Pid)
	}
	return out
}

// writeKubeconfig writes a kubeconfig for a user identified by a client
// certificate.
func writeKubeconfig(path, server, user string, caPEM, certPEM, keyPEM []byte) error {
	cfg := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: local
  cluster:
    server: %s
    certificate-authority-data: %s
users:
- name: %s
  user:
    client-certificate-data: %s
    client-key-data: %s
contexts:
- name: local
  context: {cluster: local, user: %s}
current-context: local
`, server, b64(caPEM), user, b64(certPEM), b64(keyPEM), user)
	return os.WriteFile(path, []byte(cfg), 0o600)
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
