package controllers

import (
	"context"
	"sync"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"

	v1alpha1 "github.com/mlflow-operator/mlflow-operator/api/v1alpha1"
)

// freshness tells when the cached copy of a ModelDeployment can be acted on.
//
// A reconcile must not act on a copy older than this operator's own last
// status write: it would undo that write's decisions (recreate a candidate
// that just failed, say). Reading every object from the API server avoids
// that at the price of one GET per reconcile, every poll, for every object:
// at 1,000 objects, most of the requests an idle operator sends. So the
// cache is read, and the API server only while the cache has not yet shown
// the newest resourceVersion this operator knows of, which is the case only
// for a moment after a status write. Resource versions are compared for
// equality only, as the API asks.
type freshness struct {
	mu sync.Mutex
	// want is, per object, the resourceVersion the cache must show before
	// its copy is used: the one the last status write answered, or a newer
	// one a live read saw.
	want map[types.NamespacedName]string
}

// wrote records the resourceVersion a status write answered.
func (f *freshness) wrote(key types.NamespacedName, resourceVersion string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.want == nil {
		f.want = map[types.NamespacedName]string{}
	}
	f.want[key] = resourceVersion
}

// cached says whether a cached copy with resourceVersion may be used, and
// forgets the object once the cache has caught up.
func (f *freshness) cached(key types.NamespacedName, resourceVersion string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	want, ok := f.want[key]
	if !ok {
		return true
	}
	if want == resourceVersion {
		delete(f.want, key)
		return true
	}
	return false
}

// live records what a read from the API server saw: the cache must now
// reach that version (or the object is gone and nothing is awaited).
func (f *freshness) live(key types.NamespacedName, resourceVersion string, gone bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if gone {
		delete(f.want, key)
		return
	}
	if _, ok := f.want[key]; ok {
		f.want[key] = resourceVersion
	}
}

// readModelDeployment reads the ModelDeployment from the cache when its copy
// is fresh (see freshness), else from the API server.
func (r *ModelDeploymentReconciler) readModelDeployment(ctx context.Context, key types.NamespacedName) (*v1alpha1.ModelDeployment, *unstructured.Unstructured, error, error) {
	if r.Cache != nil && r.fresh != nil {
		md, undecodable, decodeErr, err := read(ctx, r.Cache, key)
		rv := ""
		switch {
		case md != nil:
			rv = md.ResourceVersion
		case undecodable != nil:
			rv = undecodable.GetResourceVersion()
		}
		if (err == nil || apierrors.IsNotFound(err)) && r.fresh.cached(key, rv) {
			return md, undecodable, decodeErr, err
		}
	}
	reader := r.APIReader
	if reader == nil {
		reader = r.Client
	}
	md, undecodable, decodeErr, err := read(ctx, reader, key)
	if r.fresh == nil {
		return md, undecodable, decodeErr, err
	}
	switch {
	case md != nil:
		r.fresh.live(key, md.ResourceVersion, false)
	case undecodable != nil:
		r.fresh.live(key, undecodable.GetResourceVersion(), false)
	case apierrors.IsNotFound(err):
		r.fresh.live(key, "", true)
	}
	return md, undecodable, decodeErr, err
}

// statusChanged says whether the reconcile changed the status, lastPolled
// aside: when the registry was last asked is recorded only along with a
// change, or every poll of every object would be a write.
func statusChanged(before, after *v1alpha1.ModelDeploymentStatus) bool {
	a, b := *before, *after
	a.LastPolled, b.LastPolled = nil, nil
	return !equality.Semantic.DeepEqual(a, b)
}
