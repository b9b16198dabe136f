package controllers_test

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/scheme"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	v1alpha1 "github.com/mlflow-operator/mlflow-operator/api/v1alpha1"
	"github.com/mlflow-operator/mlflow-operator/controllers"
	"github.com/mlflow-operator/mlflow-operator/test/testenv"
)

// The registry client and the image builder are not this suite's subject:
// these stand-ins answer per ModelDeployment what a test tells them, so that
// the tests can drive the Kubernetes side against a real API server.

type answer struct {
	version controllers.ModelVersion
	err     error
	image   string // empty: still building
}

type registry struct {
	mu      sync.Mutex
	answers map[types.NamespacedName]answer
}

func (f *registry) set(key types.NamespacedName, a answer) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.answers[key] = a
}

func (f *registry) get(md *v1alpha1.ModelDeployment) (answer, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	a, ok := f.answers[types.NamespacedName{Namespace: md.Namespace, Name: md.Name}]
	return a, ok
}

func (f *registry) Resolve(_ context.Context, md *v1alpha1.ModelDeployment) (controllers.ModelVersion, error) {
	a, ok := f.get(md)
	if !ok {
		return controllers.ModelVersion{}, reasoned{"ModelNotFound", "no such model"}
	}
	return a.version, a.err
}

func (f *registry) Image(_ context.Context, md *v1alpha1.ModelDeployment, v controllers.ModelVersion) (controllers.ImageResult, error) {
	a, _ := f.get(md)
	if a.image == "" {
		return controllers.ImageResult{Message: "pushing layers"}, nil
	}
	return controllers.ImageResult{Image: a.image}, nil
}

// Example answers every model's smoke test request.
func (f *registry) Example(context.Context, *v1alpha1.ModelDeployment, string) ([]byte, error) {
	return []byte(exampleBody), nil
}

const exampleBody = `{"dataframe_split": {"columns": ["sepal length (cm)"], "data": [[5.1]]}}`

type reasoned struct{ reason, msg string }

func (e reasoned) Error() string  { return e.msg }
func (e reasoned) Reason() string { return e.reason }
func (e reasoned) Terminal() bool { return false }

var (
	env  *testenv.Env
	k8s  client.Client
	fake = &registry{answers: map[types.NamespacedName]answer{}}
)

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
	operatorConfig, err := env.OperatorConfig(context.Background())
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	mgr, err := ctrl.NewManager(operatorConfig, ctrl.Options{
		Scheme:  scheme.Scheme,
		Metrics: metricsserver.Options{BindAddress: "0"},
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	r := &controllers.ModelDeploymentReconciler{
		Client:   mgr.GetClient(),
		Recorder: mgr.GetEventRecorder("mlflow-operator"),
		Resolver: fake,
		Images:   fake,
		Examples: fake,
	}
	if err := r.SetupWithManager(mgr); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- mgr.Start(ctx) }()

	code := m.Run()
	cancel()
	if err := <-done; err != nil {
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
