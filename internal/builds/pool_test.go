package builds

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/event"

	v1alpha1 "github.com/mlflow-operator/mlflow-operator/api/v1alpha1"
	"github.com/mlflow-operator/mlflow-operator/internal/resolver"
)

// These tests replace the build itself (download, check, push: tested on
// real parts in test/integration) with a function, to test the pool's own
// logic: bounds, cancellation, retries, and stopping with the manager.

func md(name string) *v1alpha1.ModelDeployment {
	return &v1alpha1.ModelDeployment{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name, UID: types.UID("uid-" + name)},
		Spec: v1alpha1.ModelDeploymentSpec{Image: v1alpha1.ImageSpec{Repository: "reg/models/" + name, BaseImage: "reg/base:1"}}}
}

func version(v string) resolver.ModelVersion { return resolver.ModelVersion{Version: v} }

// started starts p until the test ends and returns the Start error channel
// and the cancel of its context.
func started(t *testing.T, p *Pool) (context.CancelFunc, chan error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return cancel, done
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after 10s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestBuildAnswersWithoutBlockingThenNotifies(t *testing.T) {
	release := make(chan struct{})
	done := make(chan event.GenericEvent, 1)
	p := &Pool{Log: logr.Discard(), Done: done, run: func(ctx context.Context, j *job) (*Result, error) {
		<-release
		return &Result{Image: "reg/models/a@sha256:" + j.version.Version}, nil
	}}
	// Asked before the pool starts (the manager starts runnables in any
	// order): the build waits for a worker.
	res, err := p.Image(context.Background(), md("a"), version("1"))
	if err != nil || res.Image != "" || res.Message != "waiting for a build worker" {
		t.Fatalf("first answer: %+v, %v", res, err)
	}
	started(t, p)
	close(release)
	select {
	case e := <-done:
		if e.Object.GetName() != "a" {
			t.Fatalf("notified %s", e.Object.GetName())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no notification after the build")
	}
	res, err = p.Image(context.Background(), md("a"), version("1"))
	if err != nil || res.Image != "reg/models/a@sha256:1" {
		t.Fatalf("after the build: %+v, %v", res, err)
	}
}

func TestWorkersBoundConcurrentBuilds(t *testing.T) {
	var running, most atomic.Int32
	release := make(chan struct{})
	var finished atomic.Int32
	p := &Pool{Workers: 2, PerNamespace: 2, Log: logr.Discard(), run: func(ctx context.Context, j *job) (*Result, error) {
		n := running.Add(1)
		for {
			m := most.Load()
			if n <= m || most.CompareAndSwap(m, n) {
				break
			}
		}
		<-release
		running.Add(-1)
		finished.Add(1)
		return &Result{Image: "x"}, nil
	}}
	started(t, p)
	for i := range 6 {
		if _, err := p.Image(context.Background(), md(fmt.Sprint("m", i)), version("1")); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "two builds running", func() bool { return running.Load() == 2 })
	time.Sleep(50 * time.Millisecond)
	if most.Load() != 2 {
		t.Fatalf("%d builds ran at once with 2 workers", most.Load())
	}
	close(release)
	waitFor(t, "all six built", func() bool { return finished.Load() == 6 })
	if most.Load() != 2 {
		t.Fatalf("%d builds ran at once with 2 workers", most.Load())
	}
}

func TestMovedTargetCancelsTheOldBuild(t *testing.T) {
	cancelled := make(chan string, 2)
	p := &Pool{Log: logr.Discard(), run: func(ctx context.Context, j *job) (*Result, error) {
		if j.version.Version == "2" {
			return &Result{Image: "image-2"}, nil
		}
		<-ctx.Done()
		cancelled <- j.version.Version
		return &Result{Image: "image-1"}, nil // an outcome nobody may see
	}}
	started(t, p)
	if _, err := p.Image(context.Background(), md("a"), version("1")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "version 1 building", func() bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		return p.jobs[types.NamespacedName{Namespace: "ns", Name: "a"}].running
	})
	if _, err := p.Image(context.Background(), md("a"), version("2")); err != nil {
		t.Fatal(err)
	}
	select {
	case v := <-cancelled:
		if v != "1" {
			t.Fatalf("cancelled version %s", v)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the build of the old version goes on")
	}
	waitFor(t, "version 2 built", func() bool {
		res, _ := p.Image(context.Background(), md("a"), version("2"))
		return res.Image == "image-2"
	})
}

func TestForgetCancelsTheBuildOfADeletedObject(t *testing.T) {
	cancelled := make(chan struct{})
	p := &Pool{Log: logr.Discard(), run: func(ctx context.Context, j *job) (*Result, error) {
		<-ctx.Done()
		close(cancelled)
		return nil, ctx.Err()
	}}
	started(t, p)
	if _, err := p.Image(context.Background(), md("a"), version("1")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "building", func() bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		j := p.jobs[types.NamespacedName{Namespace: "ns", Name: "a"}]
		return j != nil && j.running
	})
	p.Forget(types.NamespacedName{Namespace: "ns", Name: "a"})
	select {
	case <-cancelled:
	case <-time.After(10 * time.Second):
		t.Fatal("the build of a forgotten object goes on")
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.jobs) != 0 {
		t.Fatalf("jobs left: %v", p.jobs)
	}
}

func TestBuildsStopWithTheManager(t *testing.T) {
	var stoppedBuilds atomic.Int32
	p := &Pool{Workers: 2, PerNamespace: 2, Log: logr.Discard(), run: func(ctx context.Context, j *job) (*Result, error) {
		<-ctx.Done()
		stoppedBuilds.Add(1)
		return nil, ctx.Err()
	}}
	cancel, done := started(t, p)
	for i := range 3 {
		_, _ = p.Image(context.Background(), md(fmt.Sprint("m", i)), version("1"))
	}
	waitFor(t, "two builds running", func() bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		n := 0
		for _, j := range p.jobs {
			if j.running {
				n++
			}
		}
		return n == 2
	})
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
		done <- nil // for the cleanup
	case <-time.After(10 * time.Second):
		t.Fatal("Start did not return after its context ended")
	}
	if n := stoppedBuilds.Load(); n != 2 {
		t.Fatalf("%d running builds stopped, want 2 (and the queued one never started)", n)
	}
}

func TestFailuresBackOff(t *testing.T) {
	clock := clocktesting.NewFakePassiveClock(time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC))
	var runs atomic.Int32
	boom := errors.New("registry says no")
	p := &Pool{Log: logr.Discard(), Clock: clock, run: func(ctx context.Context, j *job) (*Result, error) {
		runs.Add(1)
		return &Result{Dependencies: &Dependencies{Message: "2 missing"}}, boom
	}}
	started(t, p)
	ask := func() (Result, error) { return p.Image(context.Background(), md("a"), version("1")) }
	_, _ = ask()
	waitFor(t, "first failure", func() bool { _, err := ask(); return err != nil })
	res, err := ask()
	if !errors.Is(err, boom) || !res.RetryAt.Equal(clock.Now().Add(10*time.Second)) || res.Dependencies == nil {
		t.Fatalf("after the first failure: %+v, %v; want a retry in 10s and the dependency verdict", res, err)
	}
	if runs.Load() != 1 {
		t.Fatalf("%d runs before the retry time", runs.Load())
	}
	clock.SetTime(clock.Now().Add(11 * time.Second))
	_, _ = ask() // due: queued again
	waitFor(t, "second failure", func() bool { return runs.Load() == 2 })
	waitFor(t, "second failure recorded", func() bool {
		res, err := ask()
		return err != nil && res.RetryAt.Equal(clock.Now().Add(20*time.Second))
	})
}

// TestOneNamespaceCannotHoldEveryWorker: two builds of one namespace that
// never finish (a tarpit MLflow server) hold at most half the workers; a
// build of another namespace starts at once.
func TestOneNamespaceCannotHoldEveryWorker(t *testing.T) {
	starts := make(chan string, 10)
	p := &Pool{Workers: 2, Log: logr.Discard(), run: func(ctx context.Context, j *job) (*Result, error) {
		starts <- j.key.String()
		if j.key.Namespace == "tarpit" {
			<-ctx.Done()
			return nil, ctx.Err()
		}
		return &Result{Image: "healthy-image"}, nil
	}}
	next := func() string {
		select {
		case k := <-starts:
			return k
		case <-time.After(10 * time.Second):
			return ""
		}
	}
	started(t, p)
	for _, name := range []string{"a", "b"} {
		m := md(name)
		m.Namespace = "tarpit"
		_, _ = p.Image(context.Background(), m, version("1"))
	}
	if k := next(); k != "tarpit/a" {
		t.Fatalf("first build started: %q", k)
	}
	healthy := md("h")
	healthy.Namespace = "healthy"
	_, _ = p.Image(context.Background(), healthy, version("1"))
	if k := next(); k != "healthy/h" {
		t.Fatalf("the second worker went to %q, want the other namespace's build", k)
	}
	waitFor(t, "healthy built", func() bool {
		res, _ := p.Image(context.Background(), healthy, version("1"))
		return res.Image == "healthy-image"
	})
	// The second tarpit build starts only when a worker is free of any
	// other namespace's work: it waits behind the cap, and never runs
	// beside the first one.
	select {
	case k := <-starts:
		t.Fatalf("%s started while tarpit/a holds its namespace's share", k)
	case <-time.After(200 * time.Millisecond):
	}
}

// TestBuildDeadline: a build that does not finish within Timeout fails with
// a failure that says so, and its worker is free again.
func TestBuildDeadline(t *testing.T) {
	p := &Pool{Timeout: 100 * time.Millisecond, Log: logr.Discard(), run: func(ctx context.Context, j *job) (*Result, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	}}
	started(t, p)
	_, _ = p.Image(context.Background(), md("slow"), version("1"))
	waitFor(t, "the deadline", func() bool {
		_, err := p.Image(context.Background(), md("slow"), version("1"))
		return err != nil && strings.Contains(err.Error(), "did not finish within 100ms")
	})
}

// TestBackoffSurvivesARestart: the status says the image of version 1 has
// failed for 40 s; a new operator waits as long again before building.
func TestBackoffSurvivesARestart(t *testing.T) {
	clock := clocktesting.NewFakePassiveClock(time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC))
	var runs atomic.Int32
	p := &Pool{Clock: clock, Log: logr.Discard(), run: func(ctx context.Context, j *job) (*Result, error) {
		runs.Add(1)
		return &Result{Image: "img"}, nil
	}}
	started(t, p)
	m := md("a")
	m.Status.Target = &v1alpha1.ModelVersionRef{Version: "1"}
	m.Status.Conditions = []metav1.Condition{{Type: v1alpha1.ConditionImageReady, Status: metav1.ConditionFalse,
		Reason: string(v1alpha1.ReasonRegistryUnauthorized), Message: "image of version 1: push refused",
		LastTransitionTime: metav1.NewTime(clock.Now().Add(-40 * time.Second))}}
	res, err := p.Image(context.Background(), m, version("1"))
	if err != nil || !res.Deferred || !res.RetryAt.Equal(clock.Now().Add(40*time.Second)) {
		t.Fatalf("after a restart: %+v, %v; want deferred until 40s from now", res, err)
	}
	time.Sleep(50 * time.Millisecond)
	if runs.Load() != 0 {
		t.Fatal("built before the backoff ended")
	}
	clock.SetTime(clock.Now().Add(41 * time.Second))
	waitFor(t, "built once the backoff ended", func() bool {
		res, _ := p.Image(context.Background(), m, version("1"))
		return res.Image == "img"
	})
	// Another version's failure does not hold this one back.
	m2 := md("b")
	m2.Status = m.Status
	if res, _ := p.Image(context.Background(), m2, version("2")); res.Deferred {
		t.Fatal("a failure of version 1 deferred version 2")
	}
}
