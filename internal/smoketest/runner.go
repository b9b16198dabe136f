package smoketest

import (
	"context"
	"sync"
	"time"
)

// Outcome is what a finished check says: OK, or why not.
type Outcome struct {
	OK bool
	// NoRequest: there was nothing to send (no input example, no request
	// in the spec); OK then rests on readiness alone.
	NoRequest bool
	Message   string
}

// Runner runs smoke tests away from the reconcile workers: a reconcile asks
// for the outcome of a check and goes on; the check runs in a goroutine of
// its own, bounded in number, and done is called when it ends so that the
// object is reconciled again. A slow candidate then holds no worker, and a
// newer version of the same object cancels its predecessor's check at once.
//
// Each object (key) has at most one check: the one for its current id (the
// image and pod tested). Outcomes are kept until Forget or, unasked, for
// keep.
type Runner struct {
	// Max bounds the checks running at once; 16 when zero.
	Max int
	// PerNamespace bounds one namespace's running checks, so that one
	// tenant's hanging candidates cannot take every slot; a quarter of Max
	// (at least one) when zero.
	PerNamespace int
	// Done is called with the key when a check ends (not when it is
	// cancelled).
	Done func(namespace, name string)

	once    sync.Once
	mu      sync.Mutex
	slots   chan struct{}
	ns      map[string]int // namespace -> running
	nsFree  *sync.Cond
	checks  map[key]*check
	pruned  time.Time
	running int
}

type key struct{ namespace, name string }

type check struct {
	id       string
	cancel   context.CancelFunc
	done     bool
	outcome  Outcome
	finished time.Time
}

// keep is how long an outcome nobody asked for stays.
const keep = 10 * time.Minute

func (r *Runner) init() {
	r.once.Do(func() {
		n := r.Max
		if n <= 0 {
			n = 16
		}
		r.slots = make(chan struct{}, n)
		r.ns = map[string]int{}
		r.nsFree = sync.NewCond(&r.mu)
		r.checks = map[key]*check{}
	})
}

func (r *Runner) perNamespace() int {
	if r.PerNamespace > 0 {
		return r.PerNamespace
	}
	return max(1, cap(r.slots)/4)
}

// Check returns the outcome of the check id of namespace/name when it has
// ended (true), else starts it (unless it runs already) and returns false.
// A check of another id for the same object is cancelled first. run gets a
// context that ends when the check is cancelled; it must honour it.
func (r *Runner) Check(namespace, name, id string, run func(ctx context.Context) Outcome) (Outcome, bool) {
	r.init()
	k := key{namespace, name}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.prune()
	if c, ok := r.checks[k]; ok {
		if c.id == id {
			return c.outcome, c.done
		}
		c.cancel()
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &check{id: id, cancel: cancel}
	r.checks[k] = c
	go r.run(ctx, k, c, run)
	return Outcome{}, false
}

// Forget drops the check of namespace/name, cancelling it if it runs (the
// object is gone, or its outcome was recorded).
func (r *Runner) Forget(namespace, name string) {
	r.init()
	r.mu.Lock()
	defer r.mu.Unlock()
	if c, ok := r.checks[key{namespace, name}]; ok {
		c.cancel()
		delete(r.checks, key{namespace, name})
	}
}

// Running is how many checks hold a slot now.
func (r *Runner) Running() int {
	r.init()
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.running
}

func (r *Runner) run(ctx context.Context, k key, c *check, run func(ctx context.Context) Outcome) {
	defer c.cancel()
	if !r.acquire(ctx, k.namespace) {
		return
	}
	out := run(ctx)
	r.release(k.namespace)
	r.mu.Lock()
	current := r.checks[k] == c && ctx.Err() == nil
	if current {
		c.done, c.outcome, c.finished = true, out, time.Now()
	}
	r.mu.Unlock()
	if current && r.Done != nil {
		r.Done(k.namespace, k.name)
	}
}

// acquire waits for a namespace slot, then a global one; false when ctx
// ended first.
func (r *Runner) acquire(ctx context.Context, namespace string) bool {
	stop := context.AfterFunc(ctx, func() {
		r.mu.Lock()
		r.nsFree.Broadcast()
		r.mu.Unlock()
	})
	defer stop()
	r.mu.Lock()
	for r.ns[namespace] >= r.perNamespace() {
		if ctx.Err() != nil {
			r.mu.Unlock()
			return false
		}
		r.nsFree.Wait()
	}
	r.ns[namespace]++
	r.mu.Unlock()
	select {
	case r.slots <- struct{}{}:
		r.mu.Lock()
		r.running++
		r.mu.Unlock()
		return true
	case <-ctx.Done():
		r.mu.Lock()
		r.ns[namespace]--
		r.nsFree.Broadcast()
		r.mu.Unlock()
		return false
	}
}

func (r *Runner) release(namespace string) {
	<-r.slots
	r.mu.Lock()
	r.running--
	if r.ns[namespace]--; r.ns[namespace] <= 0 {
		delete(r.ns, namespace)
	}
	r.nsFree.Broadcast()
	r.mu.Unlock()
}

// prune drops outcomes nobody asked for in keep; r.mu is held.
func (r *Runner) prune() {
	now := time.Now()
	if now.Sub(r.pruned) < time.Minute {
		return
	}
	r.pruned = now
	for k, c := range r.checks {
		if c.done && now.Sub(c.finished) > keep {
			delete(r.checks, k)
		}
	}
}
