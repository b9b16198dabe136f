package builds

import (
	"context"
	"sync"
)

// tagLocks serializes the builds of one image reference (repository and
// tag): two ModelDeployments, in one namespace or two, that follow the same
// model version into the same repository build it once; the second waits,
// then finds the image with its own credentials and reuses it.
type tagLocks struct {
	mu    sync.Mutex
	locks map[string]*tagLock
}

type tagLock struct {
	held  chan struct{} // a token: holding the lock is having taken it
	users int
}

// lock takes the lock of key, or gives up when ctx ends. unlock releases it.
func (l *tagLocks) lock(ctx context.Context, key string) (unlock func(), err error) {
	l.mu.Lock()
	if l.locks == nil {
		l.locks = map[string]*tagLock{}
	}
	t := l.locks[key]
	if t == nil {
		t = &tagLock{held: make(chan struct{}, 1)}
		l.locks[key] = t
	}
	t.users++
	l.mu.Unlock()

	release := func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		if t.users--; t.users == 0 {
			delete(l.locks, key)
		}
	}
	select {
	case t.held <- struct{}{}:
		return func() {
			<-t.held
			release()
		}, nil
	case <-ctx.Done():
		release()
		return nil, ctx.Err()
	}
}
