// Package e2e runs the whole flow for real: the operator binary against a
// local cluster (source-built control plane and a real node: kubelet,
// containerd, runc, kube-proxy), a real MLflow server and a real registry.
// The operator builds each model's image on the serving base image
// hack/baseimage.sh builds, and the node runs it under the restricted
// security context. (On a machine that cannot run a real node, kwok nodes
// and the pod network stand-in take its place.)
package e2e

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	v1alpha1 "github.com/mlflow-operator/mlflow-operator/api/v1alpha1"
	"github.com/mlflow-operator/mlflow-operator/test/harness/cluster"
	"github.com/mlflow-operator/mlflow-operator/test/harness/imageregistry"
	"github.com/mlflow-operator/mlflow-operator/test/harness/mlflowserver"
	"github.com/mlflow-operator/mlflow-operator/test/harness/podnet"
	"github.com/mlflow-operator/mlflow-operator/test/harness/stack"
	"github.com/mlflow-operator/mlflow-operator/test/harness/testenv"
)

const webhookSecret = stack.WebhookSecret

var (
	st         *stack.Stack
	lc         *cluster.Cluster
	k8s        client.Client
	server     *mlflowserver.Server
	reg        *imageregistry.Registry
	pn         *podnet.PodNet
	webhookURL string
)

func TestMain(m *testing.M) { os.Exit(run(m)) }

func run(m *testing.M) int {
	// The suite runs on a real node (kubelet, containerd, runc) inside a
	// network and mount namespace of its own; realnode.Enter runs this
	// binary again in there, and tears everything down after. Where the
	// machine cannot (not root), it falls back to kwok nodes, unless
	// E2E_REQUIRE_REAL_NODE is set (make test sets it).
	node, _, why, err := stack.EnterNode(os.Getenv("E2E_REQUIRE_REAL_NODE") != "")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	if why != "" {
		fmt.Fprintf(os.Stderr, "e2e: on kwok nodes, not a real node: %s\n", why)
	}
	work, err := os.MkdirTemp("", "e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(work)
	if st, err = stack.Start(context.Background(), stack.Options{Dir: work, Node: node}); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer st.Stop()
	lc, k8s, server, reg, pn = st.Cluster, st.Cluster.Client, st.MLflow, st.Registry, st.PodNet
	webhookURL = st.WebhookURL
	code := m.Run()
	if code != 0 {
		fmt.Fprintf(os.Stderr, "operator logs:\n%s\n", tail(st.OperatorLogs(), 80))
	}
	return code
}

func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// dump shows what a person would look at when a test fails: the
// ModelDeployment's YAML, the Deployments and pods of its namespace, the
// namespace's events, and the operator's log lines about it.
func dump(t *testing.T, md *v1alpha1.ModelDeployment) {
	if !t.Failed() {
		return
	}
	ctx := context.Background()
	m := &v1alpha1.ModelDeployment{}
	if err := k8s.Get(ctx, client.ObjectKeyFromObject(md), m); err == nil {
		m.ManagedFields = nil
		y, _ := yaml.Marshal(m)
		t.Logf("ModelDeployment:\n%s", y)
	}
	deployments := &appsv1.DeploymentList{}
	_ = k8s.List(ctx, deployments, client.InNamespace(md.Namespace))
	for _, d := range deployments.Items {
		y, _ := yaml.Marshal(d.Status)
		t.Logf("Deployment %s image %s:\n%s", d.Name, d.Spec.Template.Spec.Containers[0].Image, y)
	}
	pods := &corev1.PodList{}
	_ = k8s.List(ctx, pods, client.InNamespace(md.Namespace))
	for _, p := range pods.Items {
		t.Logf("pod %s phase %s IP %s node %s image %s labels %v deleting %v", p.Name, p.Status.Phase, p.Status.PodIP,
			p.Spec.NodeName, p.Spec.Containers[0].Image, p.Labels, p.DeletionTimestamp != nil)
	}
	events := &corev1.EventList{}
	_ = k8s.List(ctx, events, client.InNamespace(md.Namespace))
	for _, e := range events.Items {
		t.Logf("event %s %s %s/%s: %s", e.Type, e.Reason, e.InvolvedObject.Kind, e.InvolvedObject.Name, e.Message)
	}
	var lines []string
	for _, l := range strings.Split(st.OperatorLogs(), "\n") {
		if strings.Contains(l, md.Namespace) || strings.Contains(l, "operator restarted") {
			lines = append(lines, l)
		}
	}
	t.Logf("operator log lines about %s:\n%s", md.Namespace, tail(strings.Join(lines, "\n"), 120))
}

func TestChampionServesPredictions(t *testing.T) {
	res := register(t, mlflowserver.Op{"op": "register", "model": "iris", "seed": 1, "alias": "champion"})
	md := newMD(t, testenv.Namespace(t, k8s, "e2e"), "iris", v1alpha1.ModelReference{Name: "iris", Alias: "champion"})
	start := time.Now()
	waitReady(t, md, res[0].Version, "Ready")
	t.Logf("MEASURED ModelDeployment created -> Ready (build, push, candidate, smoke test, rollout): %s", time.Since(start).Round(time.Second))
	if md.Status.Serving == nil || md.Status.Serving.Version != res[0].Version || !strings.HasPrefix(md.Status.Serving.Image, reg.Host+"/models/iris@sha256:") {
		t.Fatalf("serving %+v", md.Status.Serving)
	}

	running := productionPods(t, md)[md.Status.Serving.Image]
	if len(running) != 3 {
		t.Fatalf("%d running pods of the built image, want 3", len(running))
	}

	// A real prediction from a pod IP.
	got, err := predict(running[0].Status.PodIP)
	if err != nil {
		t.Fatal(err)
	}
	if want := jsonInts(res[0].Predictions); got != want {
		t.Errorf("predictions %s, the model predicts %s", got, want)
	}
	if st.Node != cluster.RealNode {
		return
	}
	// On the real node: the pods really run the built image under the
	// promised security context, through the Service too, and their logs
	// show the scoring server.
	svc := &corev1.Service{}
	if err := k8s.Get(context.Background(), client.ObjectKeyFromObject(md), svc); err != nil {
		t.Fatal(err)
	}
	// kube-proxy programs the Service's rules after the EndpointSlice
	// shows the Ready pods: a first version's Service may refuse for a
	// moment after Ready (seen once: connection refused at Ready).
	ready := time.Now()
	testenv.Eventually(t, 15*time.Second, "predictions through the Service "+svc.Spec.ClusterIP, func() error {
		got, err := predict(svc.Spec.ClusterIP)
		if err != nil {
			return err
		}
		if want := jsonInts(res[0].Predictions); got != want {
			t.Fatalf("through the Service: predictions %s, the model predicts %s", got, want)
		}
		return nil
	})
	t.Logf("MEASURED Ready -> answered through the Service: %s", time.Since(ready).Round(100*time.Millisecond))
	for _, p := range running {
		t.Logf("MEASURED pod %s: created -> Ready %s", p.Name, readyAfter(&p).Round(100*time.Millisecond))
	}
	logs, err := st.KubectlRun("logs", "-n", md.Namespace, running[0].Name)
	if err != nil || !serverLog.MatchString(logs) {
		t.Errorf("kubectl logs of %s does not show the scoring server (%v):\n%s", running[0].Name, err, tail(logs, 20))
	}
	out, err := st.KubectlRun("exec", "-n", md.Namespace, running[0].Name, "--", "python3", "-c",
		"import os; print(os.getuid(), os.getgid(), open('/proc/self/status').read().count('NoNewPrivs:\t1'));"+
			"\ntry:\n open('/opt/ml/model/MLmodel', 'a')\nexcept OSError as e: print('model read-only')\n"+
			"try:\n open('/probe', 'w')\nexcept OSError as e: print('root read-only')")
	if err != nil || !strings.Contains(out, "1000 1000 1") || !strings.Contains(out, "model read-only") || !strings.Contains(out, "root read-only") {
		t.Errorf("inside the serving container: %v\n%s", err, out)
	}
}

// serverLog is what `mlflow models serve` prints once it listens.
var serverLog = regexp.MustCompile(`(?i)uvicorn running on|listening at|application startup complete`)

// readyAfter is how long a pod took from its creation to Ready.
func readyAfter(p *corev1.Pod) time.Duration {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
			return c.LastTransitionTime.Sub(p.CreationTimestamp.Time)
		}
	}
	return 0
}

// TestWebhookPromotionKeepsCapacity promotes version 2 by moving the alias,
// with an hour between polls so that only MLflow's webhook can start it, and
// watches the production Deployment through the rolling update: available
// replicas never drop below the 3 it serves with (maxUnavailable 0).
func TestWebhookPromotionKeepsCapacity(t *testing.T) {
	ctx := context.Background()
	res := register(t,
		mlflowserver.Op{"op": "register", "model": "hooked", "seed": 1, "alias": "champion"},
		mlflowserver.Op{"op": "create_webhook", "name": "operator", "url": webhookURL, "secret": webhookSecret,
			"events": []string{"model_version_alias.created", "model_version.created"}},
	)
	md := newMD(t, testenv.Namespace(t, k8s, "e2e"), "hooked", v1alpha1.ModelReference{Name: "hooked", Alias: "champion"},
		func(md *v1alpha1.ModelDeployment) {
			// An hour between polls: only the webhook can start the promotion.
			md.Spec.MLflow.PollInterval = &metav1.Duration{Duration: time.Hour}
		})
	waitReady(t, md, res[0].Version, "v1 Ready")

	// Watch the production Deployment from now on.
	wc, err := client.NewWithWatch(lc.Config, client.Options{Scheme: scheme.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	w, err := wc.Watch(ctx, &appsv1.DeploymentList{}, client.InNamespace(md.Namespace), client.MatchingFields{"metadata.name": md.Name})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	minAvailable := int32(1 << 30)
	watched := 0
	watchDone := make(chan struct{})
	go func() {
		defer close(watchDone)
		for ev := range w.ResultChan() {
			if d, ok := ev.Object.(*appsv1.Deployment); ok {
				watched++
				if d.Status.AvailableReplicas < minAvailable {
					minAvailable = d.Status.AvailableReplicas
				}
			}
		}
	}()

	moved := register(t,
		mlflowserver.Op{"op": "register", "model": "hooked", "seed": 2},
	)
	// A client of the model sends predictions through the Service during
	// the whole promotion: every one must be answered (real node only: the
	// Service needs kube-proxy).
	var serviceClient *load
	if st.Node == cluster.RealNode {
		serviceClient = startLoad(t, md)
	}
	register(t, mlflowserver.Op{"op": "set_alias", "model": "hooked", "alias": "champion", "version": moved[0].Version})
	aliasMoved := time.Now()
	waitReady(t, md, moved[0].Version, "v2 Ready")
	t.Logf("MEASURED alias moved -> Ready on v2 (webhook, build, candidate, smoke test, rolling update): %s", time.Since(aliasMoved).Round(time.Second))
	if serviceClient != nil {
		// And until the old pods are gone: their server must stop
		// gracefully, closing the connections the client keeps alive.
		oldPodsStop(t, md, moved[0].Version)
		serviceClient.finish(t, "promotion v1 -> v2")
	}
	w.Stop()
	<-watchDone
	if watched == 0 {
		t.Fatal("saw no Deployment update during the rollout")
	}
	if minAvailable < 3 {
		t.Errorf("available replicas dropped to %d during the rollout (watched %d updates)", minAvailable, watched)
	}
	t.Logf("watched %d Deployment updates; available replicas never below %d", watched, minAvailable)
}

// oldPodsStop waits for md's pods of versions other than version to be
// gone. They stop after the preStop sleep (5 s) once their scoring server
// hears SIGTERM; a server that ignores it (MLflow as process 1 of its
// container did) is killed only when the 30 s grace period ends, resetting
// the connections clients hold: that fails here.
func oldPodsStop(t *testing.T, md *v1alpha1.ModelDeployment, version string) {
	t.Helper()
	start := time.Now()
	testenv.Eventually(t, time.Minute, "the old version's pods gone", func() error {
		pods := &corev1.PodList{}
		if err := k8s.List(context.Background(), pods, client.InNamespace(md.Namespace),
			client.MatchingLabels{v1alpha1.LabelName: md.Name, v1alpha1.LabelRole: v1alpha1.RoleProduction}); err != nil {
			return err
		}
		for _, p := range pods.Items {
			if v := p.Labels[v1alpha1.LabelModelVersion]; v != version {
				return fmt.Errorf("pod %s of version %s still there", p.Name, v)
			}
		}
		return nil
	})
	took := time.Since(start)
	t.Logf("MEASURED old pods gone %s after Ready", took.Round(100*time.Millisecond))
	if took > 20*time.Second {
		t.Errorf("the old pods took %s to stop after Ready: their server ignored SIGTERM and was killed at the end of the grace period", took.Round(time.Second))
	}
}

// newMD is a ModelDeployment of model on the stack, following ref.
func newMD(t *testing.T, ns, name string, ref v1alpha1.ModelReference, mutate ...func(*v1alpha1.ModelDeployment)) *v1alpha1.ModelDeployment {
	t.Helper()
	md := st.ModelDeployment(ns, name, ref, 5*time.Second)
	for _, m := range mutate {
		m(md)
	}
	if err := k8s.Create(context.Background(), md); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		checkReadyMeansServing(t, md)
		dump(t, md)
		// The scenario's pods go: the next ones need the node's room.
		_ = k8s.Delete(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: md.Namespace}})
	})
	return md
}

func productionImage(t *testing.T, md *v1alpha1.ModelDeployment) string {
	t.Helper()
	d := &appsv1.Deployment{}
	if err := k8s.Get(context.Background(), client.ObjectKeyFromObject(md), d); err != nil {
		t.Fatal(err)
	}
	return d.Spec.Template.Spec.Containers[0].Image
}

// TestBrokenModelNeverReachesProduction: a version whose predict raises
// fails its candidate's smoke test against the real scoring server;
// production stays on the previous version and keeps answering.
func TestBrokenModelNeverReachesProduction(t *testing.T) {
	res := register(t, mlflowserver.Op{"op": "register", "model": "fragile", "seed": 1, "alias": "champion"})
	md := newMD(t, testenv.Namespace(t, k8s, "e2e"), "fragile", v1alpha1.ModelReference{Name: "fragile", Alias: "champion"})
	waitReady(t, md, res[0].Version, "v1 Ready")
	good := md.Status.Serving.Image

	broken := register(t, mlflowserver.Op{"op": "register", "model": "fragile", "kind": "raises", "alias": "champion"})
	testenv.Eventually(t, 6*time.Minute, "broken version refused", func() error {
		m, err := getMD(md)
		if err != nil {
			return err
		}
		if len(m.Status.FailedVersions) == 0 || m.Status.FailedVersions[0].Version != broken[0].Version || m.Status.FailedVersions[0].Reason != "SmokeTestFailed" {
			return fmt.Errorf("failedVersions %+v", m.Status.FailedVersions)
		}
		return nil
	})
	if img := productionImage(t, md); img != good {
		t.Errorf("production runs %s, want the good %s", img, good)
	}
	// Production still answers, with the good version's predictions.
	pods := productionPods(t, md)[good]
	if len(pods) == 0 {
		t.Fatal("no running production pod of the good version")
	}
	got, err := predict(pods[0].Status.PodIP)
	if err != nil {
		t.Fatalf("production does not answer: %v", err)
	}
	if want := jsonInts(res[0].Predictions); got != want {
		t.Errorf("production predicts %s, want %s", got, want)
	}
}

// TestStageFollowingAndGarbageCollection follows the Production stage (no
// webhook exists for stage transitions: polling finds it), then deletes the
// ModelDeployment: the real garbage collector removes everything it owned.
func TestStageFollowingAndGarbageCollection(t *testing.T) {
	ctx := context.Background()
	res := register(t, mlflowserver.Op{"op": "register", "model": "staged", "seed": 1, "stage": "Production"})
	md := newMD(t, testenv.Namespace(t, k8s, "e2e"), "staged", v1alpha1.ModelReference{Name: "staged", Stage: "Production"})
	waitReady(t, md, res[0].Version, "Production v1 Ready")

	if err := k8s.Delete(ctx, md); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 2*time.Minute, "owned objects collected", func() error {
		ns := client.InNamespace(md.Namespace)
		var left []string
		for kind, list := range map[string]client.ObjectList{
			"deployments": &appsv1.DeploymentList{}, "services": &corev1.ServiceList{}, "pods": &corev1.PodList{},
		} {
			if err := k8s.List(ctx, list, ns); err != nil {
				return err
			}
			if n := meta.LenList(list); n > 0 {
				left = append(left, fmt.Sprintf("%d %s", n, kind))
			}
		}
		if len(left) > 0 {
			return fmt.Errorf("left: %v", left)
		}
		return nil
	})
}
