package controllers

import (
	"strings"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"

	v1alpha1 "github.com/mlflow-operator/mlflow-operator/api/v1alpha1"
	"github.com/mlflow-operator/mlflow-operator/internal/metrics"
)

// What the reconciler records in internal/metrics: rollouts by outcome,
// rollbacks, held versions and promotion latency (counted once the status
// that records them is written: a reconcile retried after a conflict does
// not count them twice), and each ModelDeployment's info, Ready and Stalled
// series (set from the status written, removed with the object).

// onCommit runs f once the status of this pass is written (persist or the
// final patch); a pass whose write fails drops it, and the retry records it
// again.
func (s *scope) onCommit(f func()) { s.commits = append(s.commits, f) }

// committed runs what waited for the status write.
func (s *scope) committed() {
	for _, f := range s.commits {
		f()
	}
	s.commits = nil
}

// rolloutEnded counts how a rollout attempt ended, once written.
func (s *scope) rolloutEnded(outcome v1alpha1.HistoryOutcome) {
	label := map[v1alpha1.HistoryOutcome]string{v1alpha1.OutcomeSucceeded: metrics.RolloutSucceeded,
		v1alpha1.OutcomeFailed: metrics.RolloutFailed, v1alpha1.OutcomeRolledBack: metrics.RolloutRolledBack}[outcome]
	if label != "" {
		s.onCommit(func() { metrics.RolloutEnded(label) })
	}
}

// registryChange is a change of a ModelDeployment's target version that the
// model registry made (not its spec), on its way to Ready.
type registryChange struct {
	version string
	at      time.Time
	trigger string
}

// registryChanges remembers, per ModelDeployment, the registry change
// whose promotion latency is measured when its version is Ready (nil
// remembers nothing). It lives in memory: a change seen by an operator that
// stopped before Ready is not measured by the next one, which cannot know
// when the change was seen.
type registryChanges struct {
	mu sync.Mutex
	m  map[types.NamespacedName]registryChange
}

// saw records that the registry moved key's target to version at at. A
// change already recorded for the same version keeps its time.
func (c *registryChanges) saw(key types.NamespacedName, version string, at time.Time, trigger string) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[types.NamespacedName]registryChange{}
	}
	if old, ok := c.m[key]; ok && old.version == version {
		return
	}
	c.m[key] = registryChange{version: version, at: at, trigger: trigger}
}

// take returns and forgets key's change when it is of version.
func (c *registryChanges) take(key types.NamespacedName, version string) (registryChange, bool) {
	if c == nil {
		return registryChange{}, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	ch, ok := c.m[key]
	if !ok || ch.version != version {
		return registryChange{}, false
	}
	delete(c.m, key)
	return ch, true
}

// drop forgets key's change (the object went, or its version failed).
func (c *registryChanges) drop(key types.NamespacedName) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.m, key)
}

// sawRegistryChange records a new target version when the registry moved
// it: the object's spec is the one already handled (a spec change moves
// the target too, and is no registry change) and a target was known before.
func (r *ModelDeploymentReconciler) sawRegistryChange(s *scope, version string, changedAt, answeredAt time.Time) {
	md := s.md
	if md.Status.Target == nil || md.Status.Target.Version == version || md.Generation != md.Status.ObservedGeneration {
		return
	}
	at, trigger := changedAt, metrics.TriggerWebhook
	if at.IsZero() {
		at, trigger = answeredAt, metrics.TriggerPoll
	}
	if at.After(s.now) {
		at = s.now
	}
	r.changes.saw(key(md), version, at, trigger)
}

// measurePromotion, at the end of a pass, records the promotion latency of
// the registry change when its version is Ready, and forgets a change whose
// version is stalled (held, rolled back).
func (r *ModelDeploymentReconciler) measurePromotion(s *scope, ready, stalled bool) {
	k := key(s.md)
	switch {
	case ready:
		version, now := s.version, s.now
		s.onCommit(func() {
			if ch, ok := r.changes.take(k, version); ok {
				metrics.Promoted(ch.trigger, now.Sub(ch.at))
			}
		})
	case stalled:
		r.changes.drop(k)
	}
}

func key(md *v1alpha1.ModelDeployment) types.NamespacedName {
	return types.NamespacedName{Namespace: md.Namespace, Name: md.Name}
}

// observeObject sets md's per-object series from its status.
func observeObject(md *v1alpha1.ModelDeployment) {
	st := metrics.State{Namespace: md.Namespace, Name: md.Name, Model: md.Spec.Model.Name,
		Ready:   meta.IsStatusConditionTrue(md.Status.Conditions, v1alpha1.ConditionReady),
		Stalled: meta.IsStatusConditionTrue(md.Status.Conditions, v1alpha1.ConditionStalled)}
	if sv := md.Status.Serving; sv != nil {
		st.Version, st.ImageDigest = sv.Version, digestOf(sv.Image)
	}
	metrics.Observe(st)
}

// observeUndecodable sets the series of an object the operator cannot
// decode: stalled, with what its fields still say.
func observeUndecodable(u *unstructured.Unstructured) {
	model, _, _ := unstructured.NestedString(u.Object, "spec", "model", "name")
	version, _, _ := unstructured.NestedString(u.Object, "status", "serving", "version")
	image, _, _ := unstructured.NestedString(u.Object, "status", "serving", "image")
	metrics.Observe(metrics.State{Namespace: u.GetNamespace(), Name: u.GetName(), Model: model,
		Version: version, ImageDigest: digestOf(image), Stalled: true})
}

// digestOf is the digest of an image reference by digest
// (repository@sha256:...), empty otherwise.
func digestOf(image string) string {
	if _, d, ok := strings.Cut(image, "@"); ok {
		return d
	}
	return ""
}
