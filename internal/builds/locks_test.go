package builds

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestTagLocksSerializeOneTagOnly(t *testing.T) {
	var l tagLocks
	var inside, most atomic.Int32
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			unlock, err := l.lock(context.Background(), "reg/models/iris:iris-v1")
			if err != nil {
				t.Error(err)
				return
			}
			n := inside.Add(1)
			for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
			}
			time.Sleep(5 * time.Millisecond)
			inside.Add(-1)
			unlock()
		}()
	}
	// Another tag is not held up meanwhile.
	unlock, err := l.lock(context.Background(), "reg/models/iris:iris-v2")
	if err != nil {
		t.Fatal(err)
	}
	unlock()
	wg.Wait()
	if most.Load() != 1 {
		t.Fatalf("%d builds of one tag at once, want 1", most.Load())
	}
	if len(l.locks) != 0 {
		t.Fatalf("locks left behind: %v", l.locks)
	}
}

func TestTagLockGivesUpWithTheContext(t *testing.T) {
	var l tagLocks
	unlock, err := l.lock(context.Background(), "k")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := l.lock(ctx, "k"); err == nil {
		t.Fatal("took a held lock")
	}
	unlock()
	if len(l.locks) != 0 {
		t.Fatalf("locks left behind: %v", l.locks)
	}
}
