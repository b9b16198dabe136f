package builds

import (
	"context"
	"errors"
	"testing"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/types"

	"github.com/mlflow-operator/mlflow-operator/internal/metrics/metricstest"
)

// TestBuildMetrics: every finished build is counted by result, with its
// duration, and a push's bytes are added up; a build whose object moved on
// is counted as canceled.
func TestBuildMetrics(t *testing.T) {
	count := func(result string) float64 {
		return metricstest.Count(t, "mlflow_operator_builds_total", map[string]string{"result": result})
	}
	observed := func(result string) float64 {
		return metricstest.Count(t, "mlflow_operator_build_duration_seconds", map[string]string{"result": result})
	}
	bytes := func() float64 { return metricstest.Count(t, "mlflow_operator_build_pushed_bytes_total", nil) }
	before := map[string]float64{"failed": count("failed"), "pushed": count("pushed"), "reused": count("reused"), "canceled": count("canceled")}
	beforeSeconds, beforeBytes := observed("failed"), bytes()

	block := make(chan struct{})
	p := &Pool{Log: logr.Discard(), run: func(ctx context.Context, j *job) (*Result, error) {
		switch j.key.Name {
		case "broken":
			return nil, errors.New("the registry said no")
		case "reuse":
			return &Result{Image: "reg/models/reuse@sha256:1", Reused: true}, nil
		case "slow":
			select {
			case <-block:
				return &Result{Image: "reg/models/slow@sha256:1"}, nil
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		return &Result{Image: "reg/models/new@sha256:1", PushedBytes: 1234}, nil
	}}
	started(t, p)
	ctx := context.Background()
	for _, name := range []string{"broken", "reuse", "new"} {
		if _, err := p.Image(ctx, md(name), version("1")); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "three builds counted", func() bool {
		return count("failed") == before["failed"]+1 && count("reused") == before["reused"]+1 && count("pushed") == before["pushed"]+1
	})
	if got := observed("failed"); got != beforeSeconds+1 {
		t.Errorf("failed build durations observed: %v, want %v", got, beforeSeconds+1)
	}
	if got := bytes(); got != beforeBytes+1234 {
		t.Errorf("pushed bytes %v, want %v", got, beforeBytes+1234)
	}

	// The target moves while a build runs: the old one is canceled.
	if _, err := p.Image(ctx, md("slow"), version("1")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the slow build running", func() bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		j := p.jobs[types.NamespacedName{Namespace: "ns", Name: "slow"}]
		return j != nil && j.running
	})
	if _, err := p.Image(ctx, md("slow"), version("2")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the superseded build counted as canceled", func() bool { return count("canceled") == before["canceled"]+1 })
	close(block)
}
