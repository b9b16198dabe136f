package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/mlflow-operator/mlflow-operator/api/v1alpha1"
	"github.com/mlflow-operator/mlflow-operator/test/harness/mlflowserver"
	"github.com/mlflow-operator/mlflow-operator/test/harness/testenv"
)

// register runs fixture operations on the MLflow server (see fixture.py).
func register(t *testing.T, ops ...mlflowserver.Op) []mlflowserver.Result {
	t.Helper()
	res, err := server.Fixture(context.Background(), ops...)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// waitReady waits until md is Ready on version and loads it into md.
func waitReady(t *testing.T, md *v1alpha1.ModelDeployment, version, what string) {
	t.Helper()
	testenv.Eventually(t, 6*time.Minute, what, func() error {
		m, err := getMD(md)
		if err != nil {
			return err
		}
		c := meta.FindStatusCondition(m.Status.Conditions, v1alpha1.ConditionReady)
		if c == nil || c.Status != metav1.ConditionTrue || m.Status.Serving == nil || m.Status.Serving.Version != version {
			return fmt.Errorf("Ready %+v serving %+v", c, m.Status.Serving)
		}
		*md = *m
		return nil
	})
}

const irisRows = mlflowserver.IrisRows

// servingPort is where a serving pod listens: the pod network stand-in's
// port on kwok nodes, the default port on the real node.
func servingPort() int {
	if pn != nil {
		return pn.Port
	}
	return int(v1alpha1.DefaultPort)
}

// predict sends three iris rows to a pod IP (or a Service's ClusterIP) and
// returns the predictions, as compact JSON.
func predict(ip string) (string, error) {
	resp, err := http.Post(fmt.Sprintf("http://%s:%d/invocations", ip, servingPort()), "application/json", bytes.NewReader([]byte(irisRows)))
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("HTTP %d: %s", resp.StatusCode, data)
	}
	var answer struct {
		Predictions any `json:"predictions"`
	}
	if err := json.Unmarshal(data, &answer); err != nil || answer.Predictions == nil {
		return "", fmt.Errorf("no predictions (%v): %s", err, data)
	}
	compact, _ := json.Marshal(answer.Predictions)
	return string(compact), nil
}

// productionPods are the running pods of the production Deployment, by
// image.
func productionPods(t *testing.T, md *v1alpha1.ModelDeployment) map[string][]corev1.Pod {
	t.Helper()
	pods := &corev1.PodList{}
	if err := k8s.List(context.Background(), pods, client.InNamespace(md.Namespace),
		client.MatchingLabels{v1alpha1.LabelRole: v1alpha1.RoleProduction}); err != nil {
		t.Fatal(err)
	}
	out := map[string][]corev1.Pod{}
	for _, p := range pods.Items {
		if p.Status.Phase == corev1.PodRunning && p.DeletionTimestamp == nil {
			out[p.Spec.Containers[0].Image] = append(out[p.Spec.Containers[0].Image], p)
		}
	}
	return out
}

func getMD(md *v1alpha1.ModelDeployment) (*v1alpha1.ModelDeployment, error) {
	m := &v1alpha1.ModelDeployment{}
	return m, k8s.Get(context.Background(), client.ObjectKeyFromObject(md), m)
}

// eventCount counts the namespace's events with reason about the object.
func eventCount(t *testing.T, ns, object, reason string) int {
	t.Helper()
	events := &corev1.EventList{}
	if err := k8s.List(context.Background(), events, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range events.Items {
		if e.InvolvedObject.Name == object && e.Reason == reason {
			n += int(max(e.Count, 1))
		}
	}
	return n
}

func jsonInts(v []int) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// checkReadyMeansServing runs after every scenario: when a ModelDeployment
// reports Ready=True, every pod of its status.serving version must be
// available and answer a prediction. A status that claims more than
// happened fails the scenario that produced it. The check is repeated when
// the ModelDeployment changed while it ran (a reconcile in between).
func checkReadyMeansServing(t *testing.T, md *v1alpha1.ModelDeployment) {
	t.Helper()
	var last error
	for range 3 {
		m, err := getMD(md)
		if err != nil {
			return // deleted by the scenario
		}
		ready := meta.FindStatusCondition(m.Status.Conditions, v1alpha1.ConditionReady)
		if ready == nil || ready.Status != metav1.ConditionTrue {
			return
		}
		last = servesEverywhere(m)
		after, err := getMD(md)
		if err != nil || after.ResourceVersion == m.ResourceVersion {
			break
		}
	}
	if last != nil {
		t.Errorf("%s reports Ready=True, but: %v", md.Name, last)
	}
}

// servesEverywhere tells why m's serving version is not served by all its
// production replicas, each answering a prediction; nil when it is.
func servesEverywhere(m *v1alpha1.ModelDeployment) error {
	sv := m.Status.Serving
	if sv == nil || sv.Version == "" || sv.Image == "" {
		return fmt.Errorf("status.serving is %+v", sv)
	}
	// Production is the Deployment of status.activeSlot, and its pods are
	// those the Service selects.
	name := m.Name
	if m.Status.ActiveSlot != "" {
		name += "-" + string(m.Status.ActiveSlot)
	}
	d := &appsv1.Deployment{}
	if err := k8s.Get(context.Background(), client.ObjectKey{Namespace: m.Namespace, Name: name}, d); err != nil {
		return fmt.Errorf("production Deployment: %w", err)
	}
	svc := &corev1.Service{}
	if err := k8s.Get(context.Background(), client.ObjectKeyFromObject(m), svc); err != nil {
		return fmt.Errorf("Service: %w", err)
	}
	if len(svc.Spec.Selector) == 0 {
		return fmt.Errorf("the Service selects nothing")
	}
	pods := &corev1.PodList{}
	if err := k8s.List(context.Background(), pods, client.InNamespace(m.Namespace), client.MatchingLabels(svc.Spec.Selector)); err != nil {
		return err
	}
	want := int(ptr.Deref(d.Spec.Replicas, 1))
	serving := 0
	for _, p := range pods.Items {
		if p.DeletionTimestamp != nil {
			continue
		}
		if p.Spec.Containers[0].Image != sv.Image {
			return fmt.Errorf("pod %s runs %s, not the serving version %s's %s", p.Name, p.Spec.Containers[0].Image, sv.Version, sv.Image)
		}
		if !podAvailable(&p) {
			return fmt.Errorf("pod %s of version %s is not Ready (phase %s)", p.Name, sv.Version, p.Status.Phase)
		}
		if _, err := predict(p.Status.PodIP); err != nil {
			return fmt.Errorf("pod %s of version %s does not answer a prediction: %w", p.Name, sv.Version, err)
		}
		serving++
	}
	if serving < want {
		return fmt.Errorf("%d of %d replicas serve version %s", serving, want, sv.Version)
	}
	return nil
}

func podAvailable(p *corev1.Pod) bool {
	if p.Status.Phase != corev1.PodRunning {
		return false
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}
