package controllers

import (
	"context"
	"fmt"
	"reflect"
	"sync"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/mlflow-operator/mlflow-operator/api/v1alpha1"
	"github.com/mlflow-operator/mlflow-operator/internal/failure"
)

// checkOwnership refuses to touch any of objs that exists and is not
// controlled by md: server-side apply with forced ownership would rewrite a
// same-named Service, HPA or NetworkPolicy of someone else, or another
// ModelDeployment's objects (a ModelDeployment named "x-candidate" and the
// candidate of "x"). The cache holds only the operator's own objects, so an
// object it does not have is looked up on the API server: the objects are
// checked at once, so that a new ModelDeployment's five lookups cost one
// round trip, not five. The first refusal or error, in the order of objs,
// is returned.
func (r *ModelDeploymentReconciler) checkOwnership(ctx context.Context, md *v1alpha1.ModelDeployment, objs ...client.Object) error {
	errs := make([]error, len(objs))
	var wg sync.WaitGroup
	for i, obj := range objs {
		wg.Go(func() { errs[i] = r.checkOwned(ctx, md, obj) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// checkOwned is checkOwnership for one object.
func (r *ModelDeploymentReconciler) checkOwned(ctx context.Context, md *v1alpha1.ModelDeployment, obj client.Object) error {
	// A typed object of the same kind, read from the typed cache (a
	// metadata-only read would start a second, unfiltered informer).
	existing, ok := reflect.New(reflect.TypeOf(obj).Elem()).Interface().(client.Object)
	if !ok {
		return fmt.Errorf("cannot check the ownership of %T", obj)
	}
	key := client.ObjectKeyFromObject(obj)
	err := r.Get(ctx, key, existing)
	if apierrors.IsNotFound(err) && r.APIReader != nil {
		err = r.APIReader.Get(ctx, key, existing)
	}
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if !metav1.IsControlledBy(existing, md) {
		owner := "no controller"
		if ref := metav1.GetControllerOf(existing); ref != nil {
			owner = fmt.Sprintf("controlled by %s %s", ref.Kind, ref.Name)
		}
		return failure.Errorf(failure.Refused, failure.Object,
			"%s %s exists (%s) and is not this ModelDeployment's: nothing was changed; rename or delete it, or rename the ModelDeployment",
			obj.GetObjectKind().GroupVersionKind().Kind, key.Name, owner)
	}
	return nil
}
