// Command demo runs the whole flow on this machine (`make demo`): a local
// cluster built from source, a real MLflow server, a registry and the
// operator; it trains and registers a real scikit-learn model, deploys it
// with a ModelDeployment, shows a prediction, then promotes a second version
// through MLflow and shows it rolling out. It leaves everything up until
// Ctrl-C (or exits at once with DEMO_EXIT=1).
package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/mlflow-operator/mlflow-operator/api/v1alpha1"
	"github.com/mlflow-operator/mlflow-operator/test/harness/cluster"
	"github.com/mlflow-operator/mlflow-operator/test/harness/mlflowserver"
	"github.com/mlflow-operator/mlflow-operator/test/harness/stack"
)

func say(format string, args ...any) { fmt.Printf("==> "+format+"\n", args...) }

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

func run() error {
	// A real node when the machine can (root, namespaces): the pods really
	// run the images the operator builds. Else kwok's fake nodes.
	node, ns, why, err := stack.EnterNode(false)
	if err != nil {
		return err
	}
	ctx := context.Background()
	dir, err := filepath.Abs(".demo")
	if err != nil {
		return err
	}
	_ = os.RemoveAll(dir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if node == cluster.RealNode {
		say("a real node runs the pods: kubelet, containerd and runc, in a network namespace of the demo's own")
	} else {
		say("kwok's fake nodes run the pods (%s); a stand-in answers pod IPs with a real scoring server of each pod's image", why)
	}
	say("starting MLflow, a registry, a local Kubernetes cluster and the operator (state in %s)", dir)
	st, err := stack.Start(ctx, stack.Options{Dir: dir, Node: node, Progress: func(line string) { fmt.Println("    " + line) }})
	if err != nil {
		return err
	}
	defer st.Stop()
	if err := os.WriteFile(filepath.Join(dir, "pids"), []byte(pids(st)), 0o644); err != nil {
		return err
	}
	k := st.Cluster.Client

	say("training a scikit-learn model on the iris data set and registering it in MLflow as iris version 1, alias champion")
	res, err := st.MLflow.Fixture(ctx,
		mlflowserver.Op{"op": "register", "model": "iris", "seed": 1, "alias": "champion"},
		mlflowserver.Op{"op": "create_webhook", "name": "mlflow-operator", "url": st.WebhookURL, "secret": stack.WebhookSecret,
			"events": []string{"model_version.created", "model_version_alias.created", "model_version_alias.deleted"}},
	)
	if err != nil {
		return err
	}

	// The sample from config/samples, with what differs on this machine
	// patched in by kustomize: the local MLflow (no credentials), the local
	// registry (plain HTTP, no push secret, a small base image), the port the
	// pod network stand-in answers on, and a smoke test timeout that leaves
	// room for `mlflow models serve` to start cold.
	const sample = "serving_v1alpha1_modeldeployment_alias.yaml"
	sampleDir := filepath.Join(dir, "sample")
	if err := os.MkdirAll(sampleDir, 0o755); err != nil {
		return err
	}
	data, err := os.ReadFile(filepath.Join("config", "samples", sample))
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(sampleDir, sample), data, 0o644); err != nil {
		return err
	}
	kustomization := fmt.Sprintf(`apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
namespace: default
resources:
  - %s   # a copy of config/samples/%s
patches:
  - target: {kind: ModelDeployment, name: iris}
    patch: |
      - op: replace
        path: /spec/mlflow
        value: {trackingURI: "%s", pollInterval: 1m}
      - op: replace
        path: /spec/image
        value: {repository: "%s/models/iris", baseImage: "%s", insecureRegistry: true}
      - op: add
        path: /spec/rollout
        value: {smokeTest: {timeout: 3m}}
%s`, sample, sample, st.MLflow.URL, st.Registry.Host, st.BaseImage, servingPatch(st))
	if err := os.WriteFile(filepath.Join(sampleDir, "kustomization.yaml"), []byte(kustomization), 0o644); err != nil {
		return err
	}
	say("kubectl apply -k %s: config/samples/%s, patched for this machine", sampleDir, sample)
	fmt.Print(indent(kustomization))
	if out, err := st.KubectlRun("apply", "-k", sampleDir); err != nil {
		return fmt.Errorf("%v\n%s", err, out)
	}
	md := &v1alpha1.ModelDeployment{ObjectMeta: metav1.ObjectMeta{Name: "iris", Namespace: "default"}}
	took, err := watchUntilReady(ctx, st, k, md, res[0].Version)
	if err != nil {
		return err
	}
	say("version 1 is Ready %s after the ModelDeployment was applied (build, push, candidate, smoke test, rollout)", took.Round(time.Second))

	if err := predict(ctx, st, k, md); err != nil {
		return err
	}

	say("a data scientist promotes version 2: registering it and moving the alias champion (MLflow's webhook tells the operator)")
	v2, err := st.MLflow.Fixture(ctx, mlflowserver.Op{"op": "register", "model": "iris", "seed": 2})
	if err != nil {
		return err
	}
	if _, err := st.MLflow.Fixture(ctx, mlflowserver.Op{"op": "set_alias", "model": "iris", "alias": "champion", "version": v2[0].Version}); err != nil {
		return err
	}
	took, err = watchUntilReady(ctx, st, k, md, v2[0].Version)
	if err != nil {
		return err
	}
	say("version 2 is Ready %s after the alias moved (webhook, build, candidate, smoke test, rolling update)", took.Round(time.Second))
	if err := predict(ctx, st, k, md); err != nil {
		return err
	}
	out, _ := st.KubectlRun("describe", "modeldeployment", "iris")
	fmt.Print(indent(lastLines(out, 14)))

	// On the real node everything lives in the demo's own network
	// namespace: another terminal joins it with nsenter.
	kubectl := st.Kubectl
	ui := "MLflow UI: " + st.MLflow.URL
	if ns != nil {
		kubectl = ns.EnterCommand() + " " + st.Kubectl
		ui = "MLflow UI: " + st.MLflow.URL + " (inside the demo's network namespace)"
	}
	fmt.Printf(`
The cluster stays up. In another terminal:

    export KUBECONFIG=%s
    %s get modeldeployments -o wide
    %s get deployments,pods,services,hpa,pdb,networkpolicies
    %s describe modeldeployment iris

%s
Stop with Ctrl-C (or make demo-down from another terminal).
`, st.Cluster.Kubeconfig, kubectl, kubectl, kubectl, ui)
	if err := os.WriteFile(filepath.Join(dir, "pids"), []byte(pids(st)), 0o644); err != nil {
		return err
	}
	if os.Getenv("DEMO_EXIT") == "1" {
		say("DEMO_EXIT=1: stopping")
		return nil
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	<-sig
	say("stopping everything")
	return nil
}

// watchUntilReady prints `kubectl get modeldeployments` when it changes,
// until the ModelDeployment is Ready on version.
func watchUntilReady(ctx context.Context, st *stack.Stack, k client.Client, md *v1alpha1.ModelDeployment, version string) (time.Duration, error) {
	start := time.Now()
	last := ""
	deadline := start.Add(8 * time.Minute)
	for time.Now().Before(deadline) {
		out, _ := st.KubectlRun("get", "modeldeployments")
		// Print when something other than the AGE column changed.
		if key := withoutLastColumn(out); key != last {
			fmt.Printf("    $ kubectl get modeldeployments   (%s)\n%s", time.Since(start).Round(time.Second), indent(out))
			last = key
		}
		m := &v1alpha1.ModelDeployment{}
		if err := k.Get(ctx, client.ObjectKeyFromObject(md), m); err == nil {
			c := meta.FindStatusCondition(m.Status.Conditions, v1alpha1.ConditionReady)
			if c != nil && c.Status == metav1.ConditionTrue && m.Status.Serving != nil && m.Status.Serving.Version == version {
				*md = *m
				return time.Since(start), nil
			}
		}
		time.Sleep(time.Second)
	}
	logs := st.Operator.Logs.String()
	return 0, fmt.Errorf("not Ready on version %s after 8 minutes; operator logs:\n%s", version, lastLines(logs, 30))
}

// predict sends the iris example to a running pod of the serving version
// and prints the answer.
func predict(ctx context.Context, st *stack.Stack, k client.Client, md *v1alpha1.ModelDeployment) error {
	pods := &corev1.PodList{}
	if err := k.List(ctx, pods, client.InNamespace(md.Namespace),
		client.MatchingLabels{v1alpha1.LabelName: md.Name, v1alpha1.LabelRole: v1alpha1.RoleProduction}); err != nil {
		return err
	}
	var pod *corev1.Pod
	for i, p := range pods.Items {
		if p.Status.Phase == corev1.PodRunning && p.DeletionTimestamp == nil && md.Status.Serving != nil &&
			p.Spec.Containers[0].Image == md.Status.Serving.Image {
			pod = &pods.Items[i]
			break
		}
	}
	if pod == nil {
		return fmt.Errorf("no running pod of the serving version")
	}
	url := "http://" + pod.Status.PodIP + ":" + strconv.Itoa(int(v1alpha1.DefaultPort)) + "/invocations"
	if st.PodNet != nil {
		url = "http://" + pod.Status.PodIP + ":" + strconv.Itoa(st.PodNet.Port) + "/invocations"
	} else {
		// The real node: through the Service, as a client in the cluster.
		svc := &corev1.Service{}
		if err := k.Get(ctx, client.ObjectKeyFromObject(md), svc); err != nil {
			return err
		}
		url = fmt.Sprintf("http://%s:%d/invocations", svc.Spec.ClusterIP, svc.Spec.Ports[0].Port)
	}
	body := `{"dataframe_split": {"columns": ["sepal length (cm)", "sepal width (cm)", "petal length (cm)", "petal width (cm)"], "data": [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]}}`
	say("a real prediction from version %s (pods like %s serve it): curl -X POST %s -d '%s'", md.Status.Serving.Version, pod.Name, url, body)
	resp, err := http.Post(url, "application/json", bytes.NewReader([]byte(body)))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(resp.Body)
	fmt.Printf("    HTTP %d %s\n", resp.StatusCode, strings.TrimSpace(string(answer)))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("the model answered HTTP %d", resp.StatusCode)
	}
	return nil
}

func indent(s string) string {
	var b strings.Builder
	for _, l := range strings.Split(strings.TrimRight(s, "\n"), "\n") {
		b.WriteString("      " + l + "\n")
	}
	return b.String()
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func pids(st *stack.Stack) string {
	var b strings.Builder
	for _, p := range st.PIDs() {
		fmt.Fprintln(&b, p)
	}
	return b.String()
}

func withoutLastColumn(table string) string {
	var b strings.Builder
	for _, l := range strings.Split(table, "\n") {
		f := strings.Fields(l)
		if len(f) > 0 {
			f = f[:len(f)-1]
		}
		b.WriteString(strings.Join(f, " ") + "\n")
	}
	return b.String()
}

// servingPatch is the part of the sample's patch that depends on the node:
// on kwok nodes the port the pod network stand-in answers on; on the real
// node small resource requests, so that the pods fit one 2-core node.
func servingPatch(st *stack.Stack) string {
	if st.PodNet != nil {
		return fmt.Sprintf("      - op: add\n        path: /spec/serving/port\n        value: %d\n", st.PodNet.Port)
	}
	return "      - op: add\n        path: /spec/serving/resources\n        value: {requests: {cpu: 50m, memory: 300Mi}, limits: {memory: 1Gi}}\n"
}
