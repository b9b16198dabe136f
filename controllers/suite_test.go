package controllers_test

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/mlflow-operator/mlflow-operator/controllers"
	"github.com/mlflow-operator/mlflow-operator/test/harness/fixtures"
	"github.com/mlflow-operator/mlflow-operator/test/harness/operator"
	"github.com/mlflow-operator/mlflow-operator/test/harness/testenv"
)

// The registry client and the image builder are not this suite's subject:
// fixtures.FakeRegistry answers per ModelDeployment what a test tells it, so
// that the tests drive the Kubernetes side against a real API server.

const exampleBody = fixtures.ExampleBody

type answer = fixtures.Answer

// sidecarImage is the request-metrics image the suite's operator has.
const sidecarImage = "registry.example.com/mlflow-operator@sha256:5555555555555555555555555555555555555555555555555555555555555555"

var (
	env  *testenv.Env
	k8s  client.Client
	fake = fixtures.NewFakeRegistry()
	// op is the running operator; operatorConfig the identity it runs as.
	op             *operator.Operator
	operatorConfig *rest.Config
)

// reconciler is the suite operator's reconciler with the request-metrics
// image given.
func reconciler(requestMetricsImage string) operator.Wiring {
	return operator.WithReconciler(controllers.ModelDeploymentReconciler{
		Resolver: fake, Images: fake, Examples: fake, RequestMetricsImage: requestMetricsImage,
	})
}

// restartOperator replaces the suite's operator with one wired by wire for
// the rest of the test, and puts the suite's back after it.
func restartOperator(t *testing.T, wire operator.Wiring) {
	t.Helper()
	if err := op.Stop(); err != nil {
		t.Fatalf("stopping the operator: %v", err)
	}
	start := func(w operator.Wiring) {
		var err error
		if op, err = operator.Start(operatorConfig, w); err != nil {
			t.Fatal(err)
		}
	}
	start(wire)
	t.Cleanup(func() {
		if err := op.Stop(); err != nil {
			t.Errorf("stopping the operator: %v", err)
		}
		start(reconciler(sidecarImage))
	})
}

func TestMain(m *testing.M) {
	testenv.SetLogger()
	var err error
	env, err = testenv.Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	k8s = env.Client
	// The reconciler runs as a user holding only the generated RBAC role.
	operatorConfig, err = env.OperatorConfig(context.Background())
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	op, err = operator.Start(operatorConfig, reconciler(sidecarImage))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}

	code := m.Run()
	if err := op.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "manager:", err)
	}
	_ = env.Stop()
	os.Exit(code)
}

// namespace creates a namespace for one test.
func namespace(t *testing.T) string { return testenv.Namespace(t, k8s, "md") }

// eventually retries check for up to 30 s (the manager's cache lags behind
// the API server).
func eventually(t *testing.T, what string, check func() error) {
	t.Helper()
	testenv.Eventually(t, 30*time.Second, what, check)
}

// consistently fails when check returns an error within d.
func consistently(t *testing.T, what string, d time.Duration, check func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if err := check(); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
