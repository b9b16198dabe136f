package main

import (
	"context"
	"maps"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"

	v1alpha1 "github.com/mlflow-operator/mlflow-operator/api/v1alpha1"
)

// tracker watches the ModelDeployments of one namespace (an informer, so
// the bench does not list 1,000 objects again and again) and notes when
// each is first Ready on the version it should serve, and when one that
// was Ready stops being so.
type tracker struct {
	mu sync.Mutex
	// want is the version each object must serve to count as Ready.
	want    map[string]string
	readyAt map[string]time.Time // first seen Ready on want
	ready   map[string]bool      // Ready on want now
	// lost counts, per object, the times it stopped being Ready on want.
	lost map[string]int
	// updates counts the changes of any object (new resource versions).
	updates int
	// firstTrue is, per object and condition type of stepConditions, when
	// the condition was first True (never reset: the creation's steps).
	firstTrue map[string]map[string]trueAt
}

// trueAt is when a condition was first seen True: seen is when the
// tracker's informer delivered the change, transition the condition's
// lastTransitionTime (the operator's clock, whole seconds).
type trueAt struct{ seen, transition time.Time }

func newTracker() *tracker {
	return &tracker{want: map[string]string{}, readyAt: map[string]time.Time{}, ready: map[string]bool{}, lost: map[string]int{},
		firstTrue: map[string]map[string]trueAt{}}
}

// start runs an informer on namespace's ModelDeployments until ctx ends.
func (t *tracker) start(ctx context.Context, cfg *rest.Config, namespace string) error {
	c, err := cache.New(cfg, cache.Options{Scheme: scheme.Scheme, DefaultNamespaces: map[string]cache.Config{namespace: {}}})
	if err != nil {
		return err
	}
	inf, err := c.GetInformer(ctx, &v1alpha1.ModelDeployment{})
	if err != nil {
		return err
	}
	if _, err := inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) { t.seen(obj, true) },
		UpdateFunc: func(old, obj any) {
			o, n := old.(*v1alpha1.ModelDeployment), obj.(*v1alpha1.ModelDeployment)
			t.seen(obj, o.ResourceVersion != n.ResourceVersion)
		},
	}); err != nil {
		return err
	}
	go func() { _ = c.Start(ctx) }()
	c.WaitForCacheSync(ctx)
	return nil
}

func (t *tracker) seen(obj any, changed bool) {
	md, ok := obj.(*v1alpha1.ModelDeployment)
	if !ok {
		return
	}
	now := time.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	if changed {
		t.updates++
	}
	want, ok := t.want[md.Name]
	if !ok {
		return
	}
	t.noteConditions(md, now)
	c := meta.FindStatusCondition(md.Status.Conditions, v1alpha1.ConditionReady)
	r := c != nil && c.Status == metav1.ConditionTrue && md.Status.Serving != nil && md.Status.Serving.Version == want
	if r {
		if _, done := t.readyAt[md.Name]; !done {
			t.readyAt[md.Name] = now
		}
	} else if t.ready[md.Name] {
		t.lost[md.Name]++
	}
	t.ready[md.Name] = r
}

// noteConditions records the conditions of stepConditions that are True
// for the first time; t.mu is held.
func (t *tracker) noteConditions(md *v1alpha1.ModelDeployment, now time.Time) {
	first := t.firstTrue[md.Name]
	for _, typ := range stepConditions {
		if _, done := first[typ]; done {
			continue
		}
		c := meta.FindStatusCondition(md.Status.Conditions, typ)
		if c == nil || c.Status != metav1.ConditionTrue {
			continue
		}
		if first == nil {
			first = map[string]trueAt{}
			t.firstTrue[md.Name] = first
		}
		first[typ] = trueAt{seen: now, transition: c.LastTransitionTime.Time}
	}
}

// conditionTimes is, for each of names, when each condition of
// stepConditions was first True (absent when not yet).
func (t *tracker) conditionTimes(names []string) []map[string]trueAt {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]map[string]trueAt, len(names))
	for i, name := range names {
		out[i] = maps.Clone(t.firstTrue[name])
	}
	return out
}

// expect says name must serve version; it counts as not Ready until it
// does (an object already Ready on it is noticed at its next change).
func (t *tracker) expect(name, version string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.want[name] = version
	delete(t.readyAt, name)
	t.ready[name] = false
}

// readyCount is how many of names are Ready on their version now.
func (t *tracker) readyCount(names []string) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for _, name := range names {
		if t.ready[name] {
			n++
		}
	}
	return n
}

// firstReady is when each of names was first Ready on its version (zero
// when not yet).
func (t *tracker) firstReady(names []string) []time.Time {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]time.Time, len(names))
	for i, name := range names {
		out[i] = t.readyAt[name]
	}
	return out
}

// lostCount is how many of names stopped being Ready at least once since
// resetLost, and the number of times in all.
func (t *tracker) lostCount(names []string) (objects, times int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, name := range names {
		if n := t.lost[name]; n > 0 {
			objects++
			times += n
		}
	}
	return objects, times
}

func (t *tracker) resetLost() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.lost = map[string]int{}
}

func (t *tracker) updateCount() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.updates
}
