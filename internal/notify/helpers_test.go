package notify

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
	"github.com/prometheus/client_golang/prometheus"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1alpha1 "github.com/mlflow-operator/mlflow-operator/api/v1alpha1"
	"github.com/mlflow-operator/mlflow-operator/internal/metrics"
)

// staticSource is a configuration that does not change.
type staticSource struct {
	cfg *Config
	err error
}

func (s staticSource) Load(context.Context) (*Config, error) { return s.cfg, s.err }

// logBuf keeps the log lines of a test.
type logBuf struct {
	mu    sync.Mutex
	lines []string
}

func (l *logBuf) logger() logr.Logger {
	return funcr.New(func(prefix, args string) {
		l.mu.Lock()
		defer l.mu.Unlock()
		l.lines = append(l.lines, prefix+" "+args)
	}, funcr.Options{Verbosity: 1})
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

func (l *logBuf) count(substr string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, line := range l.lines {
		if strings.Contains(line, substr) {
			n++
		}
	}
	return n
}

// started is a running Notifier with its own metrics and log.
type started struct {
	*Notifier
	log *logBuf
	reg *prometheus.Registry
}

// start runs a Notifier on src (short backoffs, its own metrics registry)
// until the test ends.
func start(t *testing.T, src ConfigSource, mutate ...func(*Options)) *started {
	t.Helper()
	lb := &logBuf{}
	reg := prometheus.NewRegistry()
	m := metrics.NewNotifications(reg)
	o := Options{Source: src, Log: lb.logger(), Backoff: 5 * time.Millisecond, MaxBackoff: 20 * time.Millisecond,
		Timeout: 2 * time.Second, metrics: m}
	for _, f := range mutate {
		f(&o)
	}
	n := New(o)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		_ = n.Start(ctx)
		close(done)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return &started{Notifier: n, log: lb, reg: reg}
}

// value reads a counter or a gauge of reg: name, then label name and
// value pairs.
func value(reg prometheus.Gatherer, name string, labels ...string) float64 {
	mfs, err := reg.Gather()
	if err != nil {
		panic(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metrics:
		for _, m := range mf.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				found := false
				for _, lp := range m.GetLabel() {
					found = found || (lp.GetName() == labels[i] && lp.GetValue() == labels[i+1])
				}
				if !found {
					continue metrics
				}
			}
			if c := m.GetCounter(); c != nil {
				return c.GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	return 0
}

func (s *started) sent(service, trigger string) float64 {
	return value(s.reg, "mlflow_operator_notifications_sent_total", "service", service, "trigger", trigger)
}

func (s *started) failed(service, trigger string) float64 {
	return value(s.reg, "mlflow_operator_notifications_failed_total", "service", service, "trigger", trigger)
}

func (s *started) dropped(reason string) float64 {
	return value(s.reg, "mlflow_operator_notifications_dropped_total", "reason", reason)
}

func (s *started) retries(service string) float64 {
	return value(s.reg, "mlflow_operator_notifications_retries_total", "service", service)
}

func (s *started) pending() float64 {
	return value(s.reg, "mlflow_operator_notifications_pending")
}

// waitFor polls cond for up to 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: still not true after 10s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// modelDeployment is team-a/iris promoting version 2 over version 1, with
// the given annotations.
func modelDeployment(annotations map[string]string) *v1alpha1.ModelDeployment {
	return &v1alpha1.ModelDeployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "iris", UID: "0b7c9a52-uid", Annotations: annotations},
		Spec:       v1alpha1.ModelDeploymentSpec{Model: v1alpha1.ModelReference{Name: "iris"}},
		Status: v1alpha1.ModelDeploymentStatus{
			Target:   &v1alpha1.ModelVersionRef{Version: "2", Image: "registry.example.com/models/iris@sha256:22"},
			Serving:  &v1alpha1.ServingVersionStatus{ModelVersionRef: v1alpha1.ModelVersionRef{Version: "1"}},
			LastGood: &v1alpha1.ModelVersionRef{Version: "1"},
		},
	}
}

// promote records the Promoted event on md.
func promote(n *Notifier, md *v1alpha1.ModelDeployment) {
	n.Notify(md, "Normal", v1alpha1.ReasonPromoted, v1alpha1.ActionPromote, "candidate of version 2 answered the smoke test; promoting")
}

func mustParse(t *testing.T, data map[string]string, secret map[string][]byte) *Config {
	t.Helper()
	c := Parse(data, secret)
	if len(c.Problems) > 0 {
		t.Fatalf("configuration problems: %s", strings.Join(c.Problems, "; "))
	}
	return c
}
