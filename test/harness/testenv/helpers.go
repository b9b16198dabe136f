package testenv

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"go.uber.org/zap/zapcore"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	v1alpha1 "github.com/mlflow-operator/mlflow-operator/api/v1alpha1"
)

// SetLogger sends the operator's logs to stderr: errors only, everything
// with TEST_VERBOSE set.
func SetLogger() {
	level := zapcore.Level(2)
	if os.Getenv("TEST_VERBOSE") != "" {
		level = -2
	}
	ctrl.SetLogger(zap.New(zap.UseDevMode(true), zap.WriteTo(os.Stderr), zap.Level(level)))
}

// Namespace creates a namespace named prefix-<random> for one test.
func Namespace(t testing.TB, c client.Client, prefix string) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: prefix + "-"}}
	if err := c.Create(context.Background(), ns); err != nil {
		t.Fatal(err)
	}
	return ns.Name
}

// Eventually retries check until it returns nil, for up to timeout (the
// operator's cache lags behind the API server; builds and registries take
// their time), and fails the test with the last error.
func Eventually(t testing.TB, timeout time.Duration, what string, check func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var err error
	for time.Now().Before(deadline) {
		if err = check(); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s: still not true after %s: %v", what, timeout, err)
}

// CompleteDeployment writes the status the deployment controller writes
// once every replica of the current template is available (envtest runs no
// controllers), retrying on conflicts with the operator's writes.
func CompleteDeployment(t testing.TB, c client.Client, key client.ObjectKey) {
	t.Helper()
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		d := &appsv1.Deployment{}
		if err := c.Get(context.Background(), key, d); err != nil {
			return err
		}
		n := ptr.Deref(d.Spec.Replicas, 1)
		d.Status = appsv1.DeploymentStatus{ObservedGeneration: d.Generation, Replicas: n, UpdatedReplicas: n, ReadyReplicas: n, AvailableReplicas: n}
		return c.Status().Update(context.Background(), d)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// PassCandidate waits for md's candidate Deployment to run image, then
// reports it available. With the smoke test off, that is all it takes to be
// promoted.
func PassCandidate(t testing.TB, c client.Client, md *v1alpha1.ModelDeployment, image string) {
	t.Helper()
	key := client.ObjectKey{Namespace: md.Namespace, Name: md.Name + "-candidate"}
	Eventually(t, 60*time.Second, "candidate of "+image, func() error {
		d := &appsv1.Deployment{}
		if err := c.Get(context.Background(), key, d); err != nil {
			return err
		}
		if got := d.Spec.Template.Spec.Containers[0].Image; got != image {
			return fmt.Errorf("candidate runs %s", got)
		}
		return nil
	})
	CompleteDeployment(t, c, key)
}
