// Package restart stops the operator at each step of a rollout and starts a
// new one (a new manager: nothing kept in memory), to show that the outcome
// is the same and nothing is duplicated: all state is in the status and the
// owned objects.
package restart

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sync/atomic"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/mlflow-operator/mlflow-operator/api/v1alpha1"
	"github.com/mlflow-operator/mlflow-operator/controllers"
	"github.com/mlflow-operator/mlflow-operator/internal/resolver"
	"github.com/mlflow-operator/mlflow-operator/test/harness/fixtures"
	"github.com/mlflow-operator/mlflow-operator/test/harness/operator"
	"github.com/mlflow-operator/mlflow-operator/test/harness/testenv"
)

const (
	img1 = "registry.example.com/models/iris@sha256:1111111111111111111111111111111111111111111111111111111111111111"
	img2 = "registry.example.com/models/iris@sha256:2222222222222222222222222222222222222222222222222222222222222222"
)

var (
	env  *testenv.Env
	k8s  client.Client
	fake = fixtures.NewFakeRegistry()
)

func TestMain(m *testing.M) {
	testenv.SetLogger()
	var err error
	if env, err = testenv.Start(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	k8s = env.Client
	code := m.Run()
	_ = env.Stop()
	os.Exit(code)
}

// start runs one operator (a fresh manager and reconciler: nothing kept in
// memory) until stop.
func start(t *testing.T) *running {
	t.Helper()
	op, err := operator.Start(env.Config, operator.WithReconciler(controllers.ModelDeploymentReconciler{
		Resolver: fake, Images: fake, Examples: fake,
	}))
	if err != nil {
		t.Fatal(err)
	}
	return &running{op}
}

type running struct{ *operator.Operator }

func (o *running) stop(t *testing.T) {
	t.Helper()
	if err := o.Stop(); err != nil {
		t.Fatal(err)
	}
}

// scoring counts smoke tests.
type scoring struct {
	port  int32
	calls atomic.Int32
}

func newScoring(t *testing.T) *scoring {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &scoring{port: int32(l.Addr().(*net.TCPAddr).Port)}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		s.calls.Add(1)
		fmt.Fprint(w, `{"predictions": [1]}`)
	})}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return s
}

func get(t *testing.T, md *v1alpha1.ModelDeployment) *v1alpha1.ModelDeployment {
	t.Helper()
	m := &v1alpha1.ModelDeployment{}
	if err := k8s.Get(context.Background(), client.ObjectKeyFromObject(md), m); err != nil {
		t.Fatal(err)
	}
	return m
}

func deployment(t *testing.T, md *v1alpha1.ModelDeployment, name string) *appsv1.Deployment {
	t.Helper()
	d := &appsv1.Deployment{}
	if err := k8s.Get(context.Background(), client.ObjectKey{Namespace: md.Namespace, Name: name}, d); err != nil {
		t.Fatal(err)
	}
	return d
}

func readyPod(t *testing.T, md *v1alpha1.ModelDeployment, tmpl corev1.PodTemplateSpec) {
	t.Helper()
	ctx := context.Background()
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{GenerateName: "candidate-", Namespace: md.Namespace, Labels: tmpl.Labels}, Spec: tmpl.Spec}
	if err := k8s.Create(ctx, pod); err != nil {
		t.Fatal(err)
	}
	pod.Status = corev1.PodStatus{Phase: corev1.PodRunning, PodIP: "127.0.0.1",
		Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: metav1.Now()}}}
	if err := k8s.Status().Update(ctx, pod); err != nil {
		t.Fatal(err)
	}
}

func TestRestartAtEveryStep(t *testing.T) {
	ctx := context.Background()
	srv := newScoring(t)
	md := fixtures.Valid(testenv.Namespace(t, k8s, "restart"), "iris")
	md.Spec.Serving.Port = srv.port
	key := client.ObjectKeyFromObject(md)
	fake.Set(key, fixtures.Answer{Version: resolver.ModelVersion{Version: "1"}, Image: img1})
	if err := k8s.Create(ctx, md); err != nil {
		t.Fatal(err)
	}
	candKey := client.ObjectKey{Namespace: md.Namespace, Name: md.Name + "-candidate"}

	// Operator A starts the candidate of v1, then dies.
	a := start(t)
	testenv.Eventually(t, 30*time.Second, "candidate of v1", func() error { return k8s.Get(ctx, candKey, &appsv1.Deployment{}) })
	a.stop(t)
	firstCandidate := deployment(t, md, candKey.Name).UID

	// While nobody runs, the candidate becomes Ready.
	readyPod(t, md, deployment(t, md, candKey.Name).Spec.Template)
	testenv.CompleteDeployment(t, k8s, candKey)

	// Operator B finds the same candidate (no second one), tests it once and
	// promotes it, then dies before the rollout completes.
	b := start(t)
	testenv.Eventually(t, 30*time.Second, "v1 promoted", func() error {
		d := &appsv1.Deployment{}
		if err := k8s.Get(ctx, key, d); err != nil {
			return err
		}
		if img := d.Spec.Template.Spec.Containers[0].Image; img != img1 {
			return fmt.Errorf("production runs %s", img)
		}
		if p := get(t, md).Status.Promoting; p == nil || p.Version != "1" {
			return fmt.Errorf("promoting %+v", p)
		}
		return nil
	})
	b.stop(t)
	if n := srv.calls.Load(); n != 1 {
		t.Errorf("%d smoke tests of v1, want 1", n)
	}
	if got := get(t, md).Status.History; len(got) != 1 || got[0].Version != "1" {
		t.Errorf("history %+v, want one entry for v1 (candidate %s reused)", got, firstCandidate)
	}

	// The rollout completes while nobody runs; operator C records it.
	testenv.CompleteDeployment(t, k8s, key)
	c := start(t)
	testenv.Eventually(t, 30*time.Second, "v1 serves", func() error {
		m := get(t, md)
		if m.Status.Serving == nil || m.Status.Serving.Version != "1" || m.Status.Promoting != nil {
			return fmt.Errorf("serving %+v promoting %+v", m.Status.Serving, m.Status.Promoting)
		}
		return nil
	})

	// v2: C verifies and promotes it, then dies mid-rollout; the rollout
	// then stalls while nobody runs. Operator D rolls back to v1.
	fake.Set(key, fixtures.Answer{Version: resolver.ModelVersion{Version: "2"}, Image: img2})
	touch(t, md)
	testenv.Eventually(t, 30*time.Second, "candidate of v2", func() error {
		d := &appsv1.Deployment{}
		if err := k8s.Get(ctx, candKey, d); err != nil {
			return err
		}
		if d.Spec.Template.Spec.Containers[0].Image != img2 {
			return fmt.Errorf("candidate runs %s", d.Spec.Template.Spec.Containers[0].Image)
		}
		return nil
	})
	readyPod(t, md, deployment(t, md, candKey.Name).Spec.Template)
	testenv.CompleteDeployment(t, k8s, candKey)
	testenv.Eventually(t, 30*time.Second, "v2 promoted", func() error {
		if img := deployment(t, md, md.Name).Spec.Template.Spec.Containers[0].Image; img != img2 {
			return fmt.Errorf("production runs %s", img)
		}
		return nil
	})
	c.stop(t)
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		d := deployment(t, md, md.Name)
		d.Status = appsv1.DeploymentStatus{ObservedGeneration: d.Generation, Replicas: 4, UpdatedReplicas: 1, ReadyReplicas: 3, AvailableReplicas: 3,
			Conditions: []appsv1.DeploymentCondition{{Type: appsv1.DeploymentProgressing, Status: corev1.ConditionFalse,
				Reason: "ProgressDeadlineExceeded", LastUpdateTime: metav1.Now(), LastTransitionTime: metav1.Now()}}}
		return k8s.Status().Update(ctx, d)
	})
	if err != nil {
		t.Fatal(err)
	}
	d := start(t)
	defer d.stop(t)
	testenv.Eventually(t, 30*time.Second, "rolled back to v1", func() error {
		if img := deployment(t, md, md.Name).Spec.Template.Spec.Containers[0].Image; img != img1 {
			return fmt.Errorf("production runs %s", img)
		}
		m := get(t, md)
		if len(m.Status.FailedVersions) != 1 || m.Status.FailedVersions[0].Version != "2" {
			return fmt.Errorf("failedVersions %+v", m.Status.FailedVersions)
		}
		return nil
	})
	m := get(t, md)
	if len(m.Status.History) != 2 || m.Status.History[0].Outcome != "RolledBack" || m.Status.History[1].Outcome != "Succeeded" {
		t.Errorf("history %+v, want v2 RolledBack then v1 Succeeded, once each", m.Status.History)
	}
	if n := srv.calls.Load(); n != 2 {
		t.Errorf("%d smoke tests in all, want one per version", n)
	}
}

func touch(t *testing.T, md *v1alpha1.ModelDeployment) {
	t.Helper()
	patch := []byte(fmt.Sprintf(`{"metadata":{"annotations":{"test/touch":"%d"}}}`, time.Now().UnixNano()))
	if err := k8s.Patch(context.Background(), md, client.RawPatch("application/merge-patch+json", patch)); err != nil {
		t.Fatal(err)
	}
}
