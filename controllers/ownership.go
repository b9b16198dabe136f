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
// object it does not have is looked up on the API server: those lookups go
// out at once, so that a new ModelDeployment's five cost one round trip,
// not five. The first refusal or error, in the order of objs, is returned.
func (r *ModelDeploymentReconciler) checkOwnership(ctx context.Context, md *v1alpha1.ModelDeployment, objs ...client.Object) error {
	errs := make([]error, len(objs))
	var wg sync.WaitGroup
	for i, obj := range objs {
		// A typed object of the same kind, read from the typed cache (a
		// metadata-only read would start a second, unfiltered informer).
		existing, ok := reflect.New(reflect.TypeOf(obj).Elem()).Interface().(client.Object)
		if !ok {
			errs[i] = fmt.Errorf("cannot check the ownership of %T", obj)
			continue
		}
		key := client.ObjectKeyFromObject(obj)
		err := r.Get(ctx, key, existing)
		if !apierrors.IsNotFound(err) || r.APIReader == nil {
			errs[i] = owned(md, obj, existing, err)
			continue
		}
		wg.Go(func() { errs[i] = owned(md, obj, existing, r.APIReader.Get(ctx, key, existing)) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// owned is the verdict on obj once existing was read (err the read's
// error): nil when it does not exist or md controls it.
func owned(md *v1alpha1.ModelDeployment, obj, existing client.Object, err error) error {
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
			obj.GetObjectKind().GroupVersionKind().Kind, existing.GetName(), owner)
	}
	return nil
}
