// Package cluster runs a whole local Kubernetes cluster from source-built
// binaries, for end-to-end tests and the demo: etcd, kube-apiserver,
// kube-controller-manager and kube-scheduler, with kwok playing the kubelets
// of fake nodes. Pods get IPs in 127.1.0.0/16, so a process on this machine
// listening on 0.0.0.0 answers at every pod IP. There is no container
// runtime: kwok marks pods Running and Ready (or, with its chaos stage,
// failing).
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
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/mlflow-operator/mlflow-operator/test/harness/procs"
)

// ChaosLabel on a pod makes kwok fail its containers once it runs (the
// pod-container-running-failed stage).
const ChaosLabel = "pod-container-running-failed.stage.kwok.x-k8s.io"

// CrashVersionLabel, set on a pod template (spec.serving.podLabels of a
// ModelDeployment), makes kwok fail the production pods whose
// serving.mlflow-operator.io/model-version label has the same value, about
// a second after they run. Candidates (role candidate) are spared, so this
// plays a version that passes its smoke test and then crashes under
// production traffic; the other versions' pods, carrying the same label,
// keep running.
const CrashVersionLabel = "chaos.mlflow-operator.io/crash-version"

// crashVersionStage is kwok's pod-container-running-failed stage narrowed
// to the pods of one model version (see CrashVersionLabel). kwok's
// selector keys are jq expressions, so one can compare two labels.
const crashVersionStage = `apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: crash-model-version
spec:
  resourceRef:
    apiGroup: v1
    kind: Pod
  selector:
    matchExpressions:
    - key: '.metadata.labels["` + CrashVersionLabel + `"]'
      operator: 'Exists'
    - key: '.metadata.labels["` + CrashVersionLabel + `"] == .metadata.labels["serving.mlflow-operator.io/model-version"]'
      operator: 'In'
      values: ['true']
    - key: '.metadata.labels["serving.mlflow-operator.io/role"]'
      operator: 'In'
      values: ['production']
    - key: '.metadata.deletionTimestamp'
      operator: 'DoesNotExist'
    - key: '.status.phase'
      operator: 'In'
      values: ['Running']
  delay:
    durationMilliseconds: 1000
    jitterDurationMilliseconds: 1000
  weight: 10000
  next:
    statusTemplate: |
      {{ $now := Now }}
      conditions:
      - lastProbeTime: null
        lastTransitionTime: {{ $now | Quote }}
        status: "True"
        reason: ""
        type: Initialized
      - lastTransitionTime: {{ $now | Quote }}
        status: "False"
        reason: ""
        type: Ready
      - lastTransitionTime: {{ $now | Quote }}
        status: "False"
        reason: ""
        type: ContainersReady
      containerStatuses:
      {{ range $index, $item := .spec.containers }}
      - image: {{ $item.image | Quote }}
        name: {{ $item.name | Quote }}
        ready: false
        restartCount: 0
        started: false
        state:
          terminated:
            exitCode: 1
            finishedAt: {{ $now | Quote }}
            reason: Error
            message: crashed (chaos.mlflow-operator.io/crash-version)
            startedAt: {{ $now | Quote }}
      {{ end }}
      hostIP: {{ NodeIPWith .spec.nodeName | Quote }}
      podIP: {{ PodIPWith .spec.nodeName ( or .spec.hostNetwork false ) ( or .metadata.uid "" ) ( or .metadata.name "" ) ( or .metadata.namespace "" ) | Quote }}
      phase: Failed
      startTime: {{ $now | Quote }}
`

// Options of a cluster.
type Options struct {
	// Dir holds the cluster's data, certificates, kubeconfig and logs; a
	// temporary folder when empty.
	Dir string
	// Nodes is how many fake nodes; 3 when zero.
	Nodes int
}

// Cluster is a running local cluster.
type Cluster struct {
	Dir string
	// Kubeconfig is the path of an admin kubeconfig.
	Kubeconfig string
	Config     *rest.Config
	Client     client.Client
	procs      []*procs.Process
	names      []string
	ownDir     bool
}

func script(args ...string) (string, error) {
	out, err := exec.Command(filepath.Join(procs.RepoRoot(), "hack", "controlplane.sh"), args...).Output()
	return strings.TrimSpace(string(out)), err
}

// Start brings the cluster up and waits until its fake nodes are Ready.
func Start(ctx context.Context, o Options) (*Cluster, error) {
	bin, err := script("--print-dir")
	if err != nil {
		return nil, err
	}
	for _, b := range []string{"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok"} {
		if _, err := os.Stat(filepath.Join(bin, b)); err != nil {
			return nil, fmt.Errorf("%s is not built: run `make test` or hack/controlplane.sh %s", b, b)
		}
	}
	stages, err := script("--kwok-stages")
	if err != nil {
		return nil, err
	}
	c := &Cluster{Dir: o.Dir}
	if c.Dir == "" {
		if c.Dir, err = os.MkdirTemp("", "local-cluster-"); err != nil {
			return nil, err
		}
		c.ownDir = true
	} else if err := os.MkdirAll(c.Dir, 0o755); err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			c.Stop()
		}
	}()
	pk, err := newPKI(c.Dir)
	if err != nil {
		return nil, err
	}
	etcdPort, _ := procs.FreePort()
	peerPort, _ := procs.FreePort()
	apiPort, _ := procs.FreePort()
	etcdURL := fmt.Sprintf("http://127.0.0.1:%d", etcdPort)
	peerURL := fmt.Sprintf("http://127.0.0.1:%d", peerPort)
	if err := c.run(filepath.Join(bin, "etcd"), "--name=local", "--data-dir="+filepath.Join(c.Dir, "etcd"),
		"--listen-client-urls="+etcdURL, "--advertise-client-urls="+etcdURL,
		"--listen-peer-urls="+peerURL, "--initial-advertise-peer-urls="+peerURL, "--initial-cluster=local="+peerURL,
		"--unsafe-no-fsync=true", "--log-level=warn"); err != nil {
		return nil, err
	}
	if err := c.run(filepath.Join(bin, "kube-apiserver"),
		"--etcd-servers="+etcdURL, "--secure-port="+strconv.Itoa(apiPort), "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1",
		"--endpoint-reconciler-type=none", "--tls-cert-file="+pk.serverCert, "--tls-private-key-file="+pk.serverKey,
		"--client-ca-file="+pk.caCert, "--service-account-issuer=https://kubernetes.default.svc", "--service-account-key-file="+pk.saPub,
		"--service-account-signing-key-file="+pk.saKey, "--service-cluster-ip-range=10.0.0.0/24", "--authorization-mode=RBAC",
		"--allow-privileged=false", "-v=0"); err != nil {
		return nil, err
	}
	c.Kubeconfig = filepath.Join(c.Dir, "kubeconfig")
	if err := writeKubeconfig(c.Kubeconfig, fmt.Sprintf("https://127.0.0.1:%d", apiPort), pk); err != nil {
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
	if err := c.run(filepath.Join(bin, "kube-controller-manager"), "--kubeconfig="+c.Kubeconfig, "--leader-elect=false",
		"--service-account-private-key-file="+pk.saKey, "--root-ca-file="+pk.caCert, "--controllers=*", "--secure-port=0",
		"--use-service-account-credentials=false", "--concurrent-deployment-syncs=10", "--concurrent-gc-syncs=10"); err != nil {
		return nil, err
	}
	if err := c.run(filepath.Join(bin, "kube-scheduler"), "--kubeconfig="+c.Kubeconfig, "--leader-elect=false", "--secure-port=0"); err != nil {
		return nil, err
	}
	kwokArgs := []string{"--kubeconfig=" + c.Kubeconfig, "--manage-all-nodes=true", "--cidr=127.1.0.0/16", "--node-ip=127.0.0.1"}
	for _, s := range []string{"node/fast/node-initialize.yaml", "node/heartbeat/node-heartbeat.yaml",
		"pod/general/pod-create.yaml", "pod/general/pod-ready.yaml", "pod/general/pod-complete.yaml", "pod/general/pod-delete.yaml",
		"pod/general/pod-init-container-running.yaml", "pod/general/pod-init-container-completed.yaml",
		"pod/chaos/pod-container-running-failed.yaml"} {
		kwokArgs = append(kwokArgs, "--config="+filepath.Join(stages, s))
	}
	crashStage := filepath.Join(c.Dir, "crash-model-version.yaml")
	if err := os.WriteFile(crashStage, []byte(crashVersionStage), 0o644); err != nil {
		return nil, err
	}
	kwokArgs = append(kwokArgs, "--config="+crashStage)
	if err := c.run(filepath.Join(bin, "kwok"), kwokArgs...); err != nil {
		return nil, err
	}
	n := o.Nodes
	if n == 0 {
		n = 3
	}
	for i := 0; i < n; i++ {
		name := fmt.Sprintf("node-%d", i)
		node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{
			Name:        name,
			Annotations: map[string]string{"kwok.x-k8s.io/node": "fake"},
			Labels: map[string]string{"kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
				"topology.kubernetes.io/zone": fmt.Sprintf("zone-%d", i%2), "type": "kwok"},
		}, Status: corev1.NodeStatus{Allocatable: corev1.ResourceList{}}}
		if err := c.Client.Create(ctx, node); err != nil {
			return nil, fmt.Errorf("create node %s: %w", name, err)
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

// run starts a component, its output in <dir>/<name>.log.
func (c *Cluster) run(bin string, args ...string) error {
	p, err := procs.Start(exec.Command(bin, args...))
	if err != nil {
		return fmt.Errorf("start %s: %w", filepath.Base(bin), err)
	}
	c.procs = append(c.procs, p)
	c.names = append(c.names, filepath.Base(bin))
	time.Sleep(200 * time.Millisecond)
	if p.Exited() {
		return fmt.Errorf("%s exited at once:\n%s", filepath.Base(bin), lastLines(p.Logs.String(), 30))
	}
	return nil
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
	deadline := time.Now().Add(60 * time.Second)
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
	return fmt.Errorf("kwok did not make %d nodes Ready:\n%s", n, c.Logs())
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
// when Start made it. No process is left behind.
func (c *Cluster) Stop() {
	for i := len(c.procs) - 1; i >= 0; i-- {
		c.procs[i].Stop(10 * time.Second)
	}
	c.procs = nil
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

func writeKubeconfig(path, server string, pk *pki) error {
	cfg := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: local
  cluster:
    server: %s
    certificate-authority-data: %s
users:
- name: admin
  user:
    client-certificate-data: %s
    client-key-data: %s
contexts:
- name: local
  context: {cluster: local, user: admin}
current-context: local
`, server, b64(pk.caPEM), b64(pk.adminCertPEM), b64(pk.adminKeyPEM))
	return os.WriteFile(path, []byte(cfg), 0o600)
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
