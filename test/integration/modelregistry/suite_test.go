// Package modelregistry tests the operator against a real MLflow tracking server
// and a real kube-apiserver: resolution of aliases, stages and versions,
// polling, MLflow webhooks, and what happens while MLflow is down.
package modelregistry

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/mlflow-operator/mlflow-operator/api/v1alpha1"
	"github.com/mlflow-operator/mlflow-operator/controllers"
	"github.com/mlflow-operator/mlflow-operator/internal/builds"
	"github.com/mlflow-operator/mlflow-operator/internal/mlflow"
	"github.com/mlflow-operator/mlflow-operator/internal/resolver"
	"github.com/mlflow-operator/mlflow-operator/internal/webhook"
	"github.com/mlflow-operator/mlflow-operator/test/harness/mlflowserver"
	"github.com/mlflow-operator/mlflow-operator/test/harness/operator"
	"github.com/mlflow-operator/mlflow-operator/test/harness/procs"
	"github.com/mlflow-operator/mlflow-operator/test/harness/testenv"
)

const webhookSecret = "registry-suite-webhook-secret"

var (
	env        *testenv.Env
	k8s        client.Client
	server     *mlflowserver.Server
	webhookURL string
	requests   = &countingTransport{next: http.DefaultTransport}
)

// countingTransport counts the MLflow requests the operator sends, by path.
type countingTransport struct {
	next  http.RoundTripper
	total atomic.Int64
	byKey counter
}

type counter struct {
	mu sync.Mutex
	m  map[string]int
}

func (c *counter) add(k string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string]int{}
	}
	c.m[k]++
}

// take returns the counts so far and starts again from zero.
func (c *counter) take() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := c.m
	c.m = map[string]int{}
	return m
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.total.Add(1)
	c.byKey.add(r.URL.Path + "?" + r.URL.RawQuery)
	return c.next.RoundTrip(r)
}

// images stands in for the image builder (a later part of the operator): it
// answers a made-up digest per model version at once.
type images struct{}

func (images) Image(_ context.Context, md *v1alpha1.ModelDeployment, v resolver.ModelVersion) (builds.Result, error) {
	return builds.Result{Image: imageFor(md, v.Version)}, nil
}

func (images) Forget(types.NamespacedName) {}

func imageFor(md *v1alpha1.ModelDeployment, version string) string {
	sum := sha256.Sum256([]byte(md.Spec.Model.Name + "/" + version))
	return md.Spec.Image.Repository + "@sha256:" + hex.EncodeToString(sum[:])
}

func TestMain(m *testing.M) { os.Exit(run(m)) }

func run(m *testing.M) int {
	testenv.SetLogger()
	var err error
	server, err = mlflowserver.Start(mlflowserver.Options{Webhooks: true})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer server.Close()
	env, err = testenv.Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() { _ = env.Stop() }()
	k8s = env.Client
	operatorConfig, err := env.OperatorConfig(context.Background())
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	port, err := procs.FreePort()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	webhookURL = fmt.Sprintf("http://127.0.0.1:%d%s", port, webhook.Path)
	op, err := operator.Start(operatorConfig, operator.WithSetup(controllers.Options{
		MaxConcurrentReconciles: 4,
		WebhookAddr:             fmt.Sprintf("127.0.0.1:%d", port),
		WebhookSecret:           []byte(webhookSecret),
		MLflowTransport:         requests,
		MLflowOptions:           []mlflow.Option{mlflow.WithRetries(1, 100*time.Millisecond, 500*time.Millisecond), mlflow.WithTimeout(3 * time.Second)},
		Images:                  images{},
	}))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() { _ = op.Stop() }()
	return m.Run()
}

func namespace(t *testing.T) string { return testenv.Namespace(t, k8s, "registry") }

func eventually(t *testing.T, timeout time.Duration, what string, check func() error) {
	t.Helper()
	testenv.Eventually(t, timeout, what, check)
}

func fixture(t *testing.T, ops ...mlflowserver.Op) []mlflowserver.Result {
	t.Helper()
	res, err := server.Fixture(context.Background(), ops...)
	if err != nil {
		t.Fatalf("%v\nserver logs:\n%s", err, lastLines(server.Logs(), 40))
	}
	return res
}

func lastLines(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
