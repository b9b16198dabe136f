// Package e2e runs the whole flow for real: the operator binary against a
// local cluster (source-built control plane, kwok nodes), a real MLflow
// server, a real registry, and the pod network stand-in that answers pod IPs
// with a real `mlflow models serve` of the pod's image.
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
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
	"github.com/mlflow-operator/mlflow-operator/test/cluster"
	"github.com/mlflow-operator/mlflow-operator/test/mlflowtest"
	"github.com/mlflow-operator/mlflow-operator/test/podnet"
	"github.com/mlflow-operator/mlflow-operator/test/registrytest"
	"github.com/mlflow-operator/mlflow-operator/test/stack"
	"github.com/mlflow-operator/mlflow-operator/test/testenv"
)

const webhookSecret = stack.WebhookSecret

var (
	st         *stack.Stack
	lc         *cluster.Cluster
	k8s        client.Client
	server     *mlflowtest.Server
	reg        *registrytest.Registry
	pn         *podnet.PodNet
	base       string
	webhookURL string
)

func TestMain(m *testing.M) { os.Exit(run(m)) }

func run(m *testing.M) int {
	work, err := os.MkdirTemp("", "e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(work)
	if st, err = stack.Start(context.Background(), work, nil); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer st.Stop()
	lc, k8s, server, reg, pn = st.Cluster, st.Cluster.Client, st.MLflow, st.Registry, st.PodNet
	base, webhookURL = st.BaseImage, st.WebhookURL
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
	ctx := context.Background()
	res, err := server.Fixture(ctx, mlflowtest.Op{"op": "register", "model": "iris", "seed": 1, "alias": "champion"})
	if err != nil {
		t.Fatal(err)
	}
	md := newMD(t, testenv.Namespace(t, k8s, "e2e"), "iris", v1alpha1.ModelReference{Name: "iris", Alias: "champion"})
	ns := md.Namespace
	start := time.Now()
	testenv.Eventually(t, 6*time.Minute, "Ready", readyOn(t, md, res[0].Version))
	t.Logf("MEASURED ModelDeployment created -> Ready (build, push, candidate, smoke test, rollout): %s", time.Since(start).Round(time.Second))
	if md.Status.Serving == nil || md.Status.Serving.Version != res[0].Version || !strings.HasPrefix(md.Status.Serving.Image, reg.Host+"/models/iris@sha256:") {
		t.Fatalf("serving %+v", md.Status.Serving)
	}

	pods := &corev1.PodList{}
	if err := k8s.List(ctx, pods, client.InNamespace(ns), client.MatchingLabels{v1alpha1.LabelRole: v1alpha1.RoleProduction}); err != nil {
		t.Fatal(err)
	}
	running := 0
	var ip string
	for _, p := range pods.Items {
		if p.Status.Phase == corev1.PodRunning && p.Spec.Containers[0].Image == md.Status.Serving.Image {
			running++
			ip = p.Status.PodIP
		}
	}
	if running != 3 {
		t.Fatalf("%d running pods of the built image, want 3", running)
	}

	// A real prediction from a pod IP.
	body := `{"dataframe_split": {"columns": ["sepal length (cm)", "sepal width (cm)", "petal length (cm)", "petal width (cm)"], "data": [[5.1, 3.5, 1.4, 0.2], [4.9, 3.0, 1.4, 0.2], [4.7, 3.2, 1.3, 0.2]]}}`
	resp, err := http.Post(fmt.Sprintf("http://%s:%d/invocations", ip, pn.Port), "application/json", bytes.NewReader([]byte(body)))
	if err != nil {
		t.Fatal(err)
	}
	data, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var answer struct {
		Predictions []int `json:"predictions"`
	}
	if err := json.Unmarshal(data, &answer); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("HTTP %d %s", resp.StatusCode, data)
	}
	if fmt.Sprint(answer.Predictions) != fmt.Sprint(res[0].Predictions) {
		t.Errorf("predictions %v, the model predicts %v", answer.Predictions, res[0].Predictions)
	}
}

// TestWebhookPromotionKeepsCapacity promotes version 2 by moving the alias,
// with an hour between polls so that only MLflow's webhook can start it, and
// watches the production Deployment through the rolling update: available
// replicas never drop below the 3 it serves with (maxUnavailable 0).
func TestWebhookPromotionKeepsCapacity(t *testing.T) {
	ctx := context.Background()
	res, err := server.Fixture(ctx,
		mlflowtest.Op{"op": "register", "model": "hooked", "seed": 1, "alias": "champion"},
		mlflowtest.Op{"op": "create_webhook", "name": "operator", "url": webhookURL, "secret": webhookSecret,
			"events": []string{"model_version_alias.created", "model_version.created"}},
	)
	if err != nil {
		t.Fatal(err)
	}
	md := newMD(t, testenv.Namespace(t, k8s, "e2e"), "hooked", v1alpha1.ModelReference{Name: "hooked", Alias: "champion"},
		func(md *v1alpha1.ModelDeployment) {
			// An hour between polls: only the webhook can start the promotion.
			md.Spec.MLflow.PollInterval = &metav1.Duration{Duration: time.Hour}
		})
	testenv.Eventually(t, 6*time.Minute, "v1 Ready", readyOn(t, md, res[0].Version))

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

	moved, err := server.Fixture(ctx,
		mlflowtest.Op{"op": "register", "model": "hooked", "seed": 2},
	)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := server.Fixture(ctx, mlflowtest.Op{"op": "set_alias", "model": "hooked", "alias": "champion", "version": moved[0].Version}); err != nil {
		t.Fatal(err)
	}
	aliasMoved := time.Now()
	testenv.Eventually(t, 6*time.Minute, "v2 Ready", readyOn(t, md, moved[0].Version))
	t.Logf("MEASURED alias moved -> Ready on v2 (webhook, build, candidate, smoke test, rolling update): %s", time.Since(aliasMoved).Round(time.Second))
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

// newMD is a ModelDeployment of model on the stack, following ref.
func newMD(t *testing.T, ns, name string, ref v1alpha1.ModelReference, mutate ...func(*v1alpha1.ModelDeployment)) *v1alpha1.ModelDeployment {
	t.Helper()
	md := &v1alpha1.ModelDeployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: v1alpha1.ModelDeploymentSpec{
			Model:   ref,
			MLflow:  v1alpha1.MLflowConnection{TrackingURI: server.URL, PollInterval: &metav1.Duration{Duration: 5 * time.Second}},
			Image:   v1alpha1.ImageSpec{Repository: reg.Host + "/models/" + name, BaseImage: base, InsecureRegistry: true},
			Serving: v1alpha1.ServingSpec{Port: int32(pn.Port)},
			Rollout: v1alpha1.RolloutSpec{SmokeTest: v1alpha1.SmokeTestSpec{Timeout: &metav1.Duration{Duration: 3 * time.Minute}}},
		},
	}
	for _, m := range mutate {
		m(md)
	}
	if err := k8s.Create(context.Background(), md); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dump(t, md) })
	return md
}

func readyOn(t *testing.T, md *v1alpha1.ModelDeployment, version string) func() error {
	return func() error {
		m := &v1alpha1.ModelDeployment{}
		if err := k8s.Get(context.Background(), client.ObjectKeyFromObject(md), m); err != nil {
			return err
		}
		c := meta.FindStatusCondition(m.Status.Conditions, v1alpha1.ConditionReady)
		if c == nil || c.Status != metav1.ConditionTrue || m.Status.Serving == nil || m.Status.Serving.Version != version {
			return fmt.Errorf("Ready %+v serving %+v", c, m.Status.Serving)
		}
		*md = *m
		return nil
	}
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
	ctx := context.Background()
	res, err := server.Fixture(ctx, mlflowtest.Op{"op": "register", "model": "fragile", "seed": 1, "alias": "champion"})
	if err != nil {
		t.Fatal(err)
	}
	md := newMD(t, testenv.Namespace(t, k8s, "e2e"), "fragile", v1alpha1.ModelReference{Name: "fragile", Alias: "champion"})
	testenv.Eventually(t, 6*time.Minute, "v1 Ready", readyOn(t, md, res[0].Version))
	good := md.Status.Serving.Image

	broken, err := server.Fixture(ctx, mlflowtest.Op{"op": "register", "model": "fragile", "kind": "raises", "alias": "champion"})
	if err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 6*time.Minute, "broken version refused", func() error {
		m := &v1alpha1.ModelDeployment{}
		if err := k8s.Get(ctx, client.ObjectKeyFromObject(md), m); err != nil {
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
	// Production still answers.
	pods := &corev1.PodList{}
	if err := k8s.List(ctx, pods, client.InNamespace(md.Namespace), client.MatchingLabels{v1alpha1.LabelRole: v1alpha1.RoleProduction}); err != nil || len(pods.Items) == 0 {
		t.Fatalf("no production pods: %v", err)
	}
	body := `{"dataframe_split": {"columns": ["sepal length (cm)", "sepal width (cm)", "petal length (cm)", "petal width (cm)"], "data": [[5.1, 3.5, 1.4, 0.2]]}}`
	resp, err := http.Post(fmt.Sprintf("http://%s:%d/invocations", pods.Items[0].Status.PodIP, pn.Port), "application/json", bytes.NewReader([]byte(body)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("production answered HTTP %d", resp.StatusCode)
	}
}

// TestStageFollowingAndGarbageCollection follows the Production stage (no
// webhook exists for stage transitions: polling finds it), then deletes the
// ModelDeployment: the real garbage collector removes everything it owned.
func TestStageFollowingAndGarbageCollection(t *testing.T) {
	ctx := context.Background()
	res, err := server.Fixture(ctx, mlflowtest.Op{"op": "register", "model": "staged", "seed": 1, "stage": "Production"})
	if err != nil {
		t.Fatal(err)
	}
	md := newMD(t, testenv.Namespace(t, k8s, "e2e"), "staged", v1alpha1.ModelReference{Name: "staged", Stage: "Production"})
	testenv.Eventually(t, 6*time.Minute, "Production v1 Ready", readyOn(t, md, res[0].Version))

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
