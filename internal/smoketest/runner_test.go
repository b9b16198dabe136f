package smoketest

import (
	"context"
	"sync"
	"testing"
	"time"
)

// outcome stands for what a check finds (the controllers use rollout.Smoke).
type outcome struct {
	OK      bool
	Message string
}

type doneLog struct {
	mu   sync.Mutex
	keys []string
	ch   chan string
}

func newDoneLog() *doneLog { return &doneLog{ch: make(chan string, 16)} }

func (d *doneLog) done(ns, name string) {
	d.mu.Lock()
	d.keys = append(d.keys, ns+"/"+name)
	d.mu.Unlock()
	d.ch <- ns + "/" + name
}

func (d *doneLog) wait(t *testing.T, want string) {
	t.Helper()
	select {
	case got := <-d.ch:
		if got != want {
			t.Fatalf("done for %s, want %s", got, want)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("no done for %s", want)
	}
}

func TestCheckRunsAwayAndReportsOnce(t *testing.T) {
	log := newDoneLog()
	r := &Runner[outcome]{Done: log.done}
	release := make(chan struct{})
	calls := 0
	run := func(ctx context.Context) outcome {
		calls++
		<-release
		return outcome{OK: true, Message: "answered"}
	}
	if _, done := r.Check("a", "m", "img@1/pod-1", run); done {
		t.Fatal("a check that was just started reported done")
	}
	// Asked again while it runs: not started twice, not done.
	if _, done := r.Check("a", "m", "img@1/pod-1", run); done {
		t.Fatal("done while running")
	}
	close(release)
	log.wait(t, "a/m")
	out, done := r.Check("a", "m", "img@1/pod-1", run)
	if !done || !out.OK || out.Message != "answered" {
		t.Fatalf("outcome %+v done %v", out, done)
	}
	if calls != 1 {
		t.Fatalf("run %d times", calls)
	}
	r.Forget("a", "m")
	if _, done := r.Check("a", "m", "img@1/pod-1", func(context.Context) outcome { return outcome{} }); done {
		t.Fatal("a forgotten outcome was reported")
	}
}

func TestNewerCheckCancelsTheOlder(t *testing.T) {
	log := newDoneLog()
	r := &Runner[outcome]{Done: log.done}
	started, cancelled := make(chan struct{}), make(chan struct{})
	r.Check("a", "m", "v1", func(ctx context.Context) outcome {
		close(started)
		<-ctx.Done()
		close(cancelled)
		return outcome{OK: true}
	})
	<-started
	r.Check("a", "m", "v2", func(ctx context.Context) outcome { return outcome{Message: "v2 failed"} })
	select {
	case <-cancelled:
	case <-time.After(10 * time.Second):
		t.Fatal("the older check was not cancelled")
	}
	log.wait(t, "a/m")
	out, done := r.Check("a", "m", "v2", nil)
	if !done || out.OK || out.Message != "v2 failed" {
		t.Fatalf("outcome %+v %v, want v2's", out, done)
	}
	select {
	case k := <-log.ch:
		t.Fatalf("a cancelled check reported done (%s)", k)
	case <-time.After(100 * time.Millisecond):
	}
}

// TestOneNamespaceCannotTakeEverySlot: a tenant's hanging checks wait
// behind its own bound; another namespace's check runs at once.
func TestOneNamespaceCannotTakeEverySlot(t *testing.T) {
	log := newDoneLog()
	r := &Runner[outcome]{Max: 4, PerNamespace: 2, Done: log.done}
	hang := func(ctx context.Context) outcome { <-ctx.Done(); return outcome{} }
	for _, name := range []string{"h1", "h2", "h3", "h4"} {
		r.Check("greedy", name, "x", hang)
	}
	deadline := time.Now().Add(10 * time.Second)
	for r.Running() != 2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := r.Running(); n != 2 {
		t.Fatalf("%d checks of one namespace running, want its bound 2", n)
	}
	r.Check("other", "m", "x", func(context.Context) outcome { return outcome{OK: true} })
	log.wait(t, "other/m")
	// A cancelled waiter leaves its place: the bound holds for the rest.
	r.Forget("greedy", "h1")
	r.Forget("greedy", "h3")
	r.Forget("greedy", "h4")
	deadline = time.Now().Add(10 * time.Second)
	for r.Running() != 1 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := r.Running(); n != 1 {
		t.Fatalf("%d running after three of four were forgotten", n)
	}
	r.Forget("greedy", "h2")
}
