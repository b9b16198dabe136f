package e2e

import (
	"context"
	"testing"

	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/mlflow-operator/mlflow-operator/api/v1alpha1"
	"github.com/mlflow-operator/mlflow-operator/test/harness/serviceload"
)

// load is a client of the model sending predictions through its Service
// (test/harness/serviceload) during a promotion or a rollback.
type load struct{ *serviceload.Load }

// startLoad starts sending to md's Service. It needs kube-proxy: the real
// node only.
func startLoad(t *testing.T, md *v1alpha1.ModelDeployment) *load {
	t.Helper()
	l, err := serviceload.Start(context.Background(), k8s, client.ObjectKeyFromObject(md), irisRows)
	if err != nil {
		t.Fatal(err)
	}
	return &load{l}
}

// finish stops the load and fails the test on any failed request.
func (l *load) finish(t *testing.T, what string) {
	t.Helper()
	r := l.Stop()
	t.Logf("MEASURED %s: %d requests through the Service answered, %d failed", what, r.OK, r.Failed)
	if r.Failed > 0 || r.OK == 0 {
		t.Errorf("%s: %d of %d requests failed: %v", what, r.Failed, r.Sent(), r.Failures)
	}
}
