package main

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/mlflow-operator/mlflow-operator/api/v1alpha1"
)

// observer watches one namespace (informers on its ModelDeployment,
// Service, Deployments and pods) and timestamps each probe of the current run the
// moment a change makes it hold: watch timestamps, to the millisecond,
// where conditions' lastTransitionTime has whole seconds. The operator's
// events are not used: the event recorder folds the same reason about the
// same object into a series, and the third of a series is not sent at once.
type observer struct {
	name string // the ModelDeployment's

	mu     sync.Mutex
	md     *v1alpha1.ModelDeployment
	svc    *corev1.Service
	deps   map[string]*appsv1.Deployment
	pods   map[string]*corev1.Pod
	probes []probe
	at     map[string]time.Time
}

// watch starts watching namespace, for the ModelDeployment name, until ctx
// ends.
func watch(ctx context.Context, cfg *rest.Config, namespace, name string) (*observer, error) {
	o := &observer{name: name, deps: map[string]*appsv1.Deployment{}, pods: map[string]*corev1.Pod{}, at: map[string]time.Time{}}
	c, err := cache.New(cfg, cache.Options{Scheme: scheme.Scheme, DefaultNamespaces: map[string]cache.Config{namespace: {}}})
	if err != nil {
		return nil, err
	}
	for _, obj := range []client.Object{&v1alpha1.ModelDeployment{}, &corev1.Service{}, &appsv1.Deployment{}, &corev1.Pod{}} {
		inf, err := c.GetInformer(ctx, obj)
		if err != nil {
			return nil, err
		}
		if _, err := inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
			AddFunc:    func(obj any) { o.changed(obj, false) },
			UpdateFunc: func(_, obj any) { o.changed(obj, false) },
			DeleteFunc: func(obj any) {
				if d, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
					obj = d.Obj
				}
				o.changed(obj, true)
			},
		}); err != nil {
			return nil, err
		}
	}
	go func() { _ = c.Start(ctx) }()
	sync, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if !c.WaitForCacheSync(sync) {
		return nil, fmt.Errorf("the watches of namespace %s did not sync in 2 minutes", namespace)
	}
	return o, nil
}

// changed records a change and marks the probes it makes hold.
func (o *observer) changed(obj any, deleted bool) {
	now := time.Now()
	o.mu.Lock()
	defer o.mu.Unlock()
	switch x := obj.(type) {
	case *v1alpha1.ModelDeployment:
		if x.Name != o.name {
			return
		}
		if deleted {
			o.md = nil
		} else {
			o.md = x
		}
	case *corev1.Service:
		// The Service is named like the ModelDeployment.
		if x.Name != o.name {
			return
		}
		if deleted {
			o.svc = nil
		} else {
			o.svc = x
		}
	case *appsv1.Deployment:
		if deleted {
			delete(o.deps, x.Name)
		} else {
			o.deps[x.Name] = x
		}
	case *corev1.Pod:
		if deleted {
			delete(o.pods, x.Name)
		} else {
			o.pods[x.Name] = x
		}
	default:
		return
	}
	o.mark(now)
}

// mark records the probes that hold now (in order, so a probe waiting for
// another can be marked in the same change). Call with mu held.
func (o *observer) mark(now time.Time) {
	if len(o.probes) == 0 {
		return
	}
	v := o.viewLocked()
	for _, p := range o.probes {
		if _, done := o.at[p.name]; done {
			continue
		}
		if _, ok := o.at[p.after]; p.after != "" && !ok {
			continue
		}
		if p.holds(v) {
			o.at[p.name] = now
		}
	}
}

// expect starts a run: from now on the probes are marked.
func (o *observer) expect(probes []probe) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.probes, o.at = probes, map[string]time.Time{}
	o.mark(time.Now())
}

// marks ends the run: the marks seen, by name.
func (o *observer) marks() map[string]time.Time {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := o.at
	o.probes, o.at = nil, map[string]time.Time{}
	return out
}

// now is what the watches show at this moment.
func (o *observer) now() view {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.viewLocked()
}

func (o *observer) viewLocked() view {
	v := view{md: o.md, svc: o.svc}
	for _, d := range o.deps {
		v.deps = append(v.deps, d)
	}
	for _, p := range o.pods {
		v.pods = append(v.pods, p)
	}
	return v
}

// waitMark waits until the probe name was seen, for up to timeout.
func (o *observer) waitMark(ctx context.Context, name string, timeout time.Duration) error {
	return o.waitFor(ctx, name, timeout, func(view) bool {
		_, ok := o.at[name]
		return ok
	})
}

// waitFor waits until cond holds for what the watches show, checking every
// 50 ms for up to timeout; the error says what was awaited and shows the
// namespace.
func (o *observer) waitFor(ctx context.Context, what string, timeout time.Duration, cond func(view) bool) error {
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		o.mu.Lock()
		ok := cond(o.viewLocked())
		o.mu.Unlock()
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: not seen after %s\n%s", what, timeout, o.describe())
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: %w", what, context.Cause(ctx))
		case <-tick.C:
		}
	}
}

// describe is the namespace as a person would look at it when a wait
// fails: the ModelDeployment's versions and conditions, the Deployments
// and the pods.
func (o *observer) describe() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	var b strings.Builder
	if md := o.md; md == nil {
		b.WriteString("  no ModelDeployment\n")
	} else {
		ver := func(r *v1alpha1.ModelVersionRef) string {
			if r == nil {
				return "-"
			}
			return r.Version
		}
		serving, promoting := "-", "-"
		if md.Status.Serving != nil {
			serving = md.Status.Serving.Version
		}
		if md.Status.Promoting != nil {
			promoting = md.Status.Promoting.Version
		}
		fmt.Fprintf(&b, "  ModelDeployment %s: target %s, promoting %s, serving %s, last good %s, active slot %q\n", md.Name,
			ver(md.Status.Target), promoting, serving, ver(md.Status.LastGood), md.Status.ActiveSlot)
		if cs := md.Status.Canary; cs != nil {
			fmt.Fprintf(&b, "    canary: version %s, step %d, %d pods, weight %d%%, reached %v, analysis %q\n", cs.Version, cs.Step+1,
				cs.Replicas, cs.Weight, cs.Reached != nil, shorten(cs.Analysis, 160))
		}
		for _, c := range md.Status.Conditions {
			fmt.Fprintf(&b, "    %s=%s %s: %s\n", c.Type, c.Status, c.Reason, shorten(c.Message, 160))
		}
	}
	b.WriteString("  " + serviceText(o.svc) + "\n")
	var lines []string
	for _, d := range o.deps {
		lines = append(lines, fmt.Sprintf("  Deployment %s: %s version %s, replicas %d updated %d ready %d available %d", d.Name,
			d.Spec.Template.Labels[v1alpha1.LabelRole], d.Spec.Template.Labels[v1alpha1.LabelModelVersion], d.Status.Replicas, d.Status.UpdatedReplicas, d.Status.ReadyReplicas, d.Status.AvailableReplicas))
	}
	for _, p := range o.pods {
		lines = append(lines, fmt.Sprintf("  pod %s: %s version %s, %s, ready %v, terminating %v", p.Name, p.Labels[v1alpha1.LabelRole],
			p.Labels[v1alpha1.LabelModelVersion], p.Status.Phase, podReady(p), p.DeletionTimestamp != nil))
	}
	sort.Strings(lines)
	b.WriteString(strings.Join(lines, "\n"))
	return b.String()
}

func shorten(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n]) + "..."
	}
	return s
}
