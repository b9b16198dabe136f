package smoketest

import (
	"context"
	"sync"
	"time"
)

// Runner runs smoke tests away from the reconcile workers: a reconcile asks
// for the outcome (of type T) of a check and goes on; the check runs in a
// goroutine of its own, bounded in number, and Done is called when it ends
// so that the object is reconciled again. A slow candidate then holds no
// worker, and a newer version of the same object cancels its predecessor's
// check at once.
//
// Each object (key) has at most one check: the one for its current id (the
// image and pod tested). Outcomes are kept until Forget or, unasked, for
// keep.
type Runner[T any] struct {
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
	ns      map[string]chan struct{} // namespace -> its slots
	checks  map[key]*check[T]
	pruned  time.Time
	running int
}

type key struct{ namespace, name string }

type check[T any] struct {
	id       string
	cancel   context.CancelFunc
	done     bool
	outcome  T
	finished time.Time
}

// keep is how long an outcome nobody asked for stays.
const keep = 10 * time.Minute

func (r *Runner[T]) init() {
	r.once.Do(func() {
		n := r.Max
		if n <= 0 {
			n = 16
		}
		r.slots = make(chan struct{}, n)
		r.ns = map[string]chan struct{}{}
		r.checks = map[key]*check[T]{}
	})
}

// Check returns the outcome of the check id of namespace/name when it has
// ended (true), else starts it (unless it runs already) and returns false.
// A check of another id for the same object is cancelled first. run gets a
// context that ends when the check is cancelled; it must honour it.
func (r *Runner[T]) Check(namespace, name, id string, run func(ctx context.Context) T) (T, bool) {
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
	c := &check[T]{id: id, cancel: cancel}
	r.checks[k] = c
	go r.run(ctx, k, c, run)
	var none T
	return none, false
}

// Forget drops the check of namespace/name, cancelling it if it runs (the
// object is gone, or its outcome was recorded).
func (r *Runner[T]) Forget(namespace, name string) {
	r.init()
	r.mu.Lock()
	defer r.mu.Unlock()
	if c, ok := r.checks[key{namespace, name}]; ok {
		c.cancel()
		delete(r.checks, key{namespace, name})
	}
}

// Running is how many checks hold a slot now.
func (r *Runner[T]) Running() int {
	r.init()
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.running
}

func (r *Runner[T]) run(ctx context.Context, k key, c *check[T], run func(ctx context.Context) T) {
	defer c.cancel()
	release, ok := r.acquire(ctx, k.namespace)
	if !ok {
		return
	}
	out := run(ctx)
	release()
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

// acquire waits for one of the namespace's slots, then a global one; false
// when ctx ended first. release gives both back.
func (r *Runner[T]) acquire(ctx context.Context, namespace string) (release func(), ok bool) {
	r.mu.Lock()
	mine, found := r.ns[namespace]
	if !found {
		n := r.PerNamespace
		if n <= 0 {
			n = max(1, cap(r.slots)/4)
		}
		mine = make(chan struct{}, n)
		r.ns[namespace] = mine
	}
	r.mu.Unlock()
	select {
	case mine <- struct{}{}:
	case <-ctx.Done():
		return nil, false
	}
	select {
	case r.slots <- struct{}{}:
	case <-ctx.Done():
		<-mine
		return nil, false
	}
	r.mu.Lock()
	r.running++
	r.mu.Unlock()
	return func() {
		r.mu.Lock()
		r.running--
		r.mu.Unlock()
		<-r.slots
		<-mine
	}, true
}

// prune drops outcomes nobody asked for in keep; r.mu is held.
func (r *Runner[T]) prune() {
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
