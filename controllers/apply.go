package controllers

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/mlflow-operator/mlflow-operator/internal/failure"
)

// FieldOwner is the server-side apply field manager of the operator.
const FieldOwner = "mlflow-operator"

// apply server-side applies obj (a typed object with its TypeMeta set) under
// the operator's field manager, taking over fields another manager changed:
// that is how drift is corrected. Fields the operator does not set are left
// to their owners. It returns the object as the API server answered.
//
// Nothing is sent when the object is as it would be after the apply (see
// unchanged): the cached object is returned then. An apply of an unchanged
// object is a request all the same (the API server decodes, runs admission
// and compares), and an idle operator would send five per object and poll.
func apply(ctx context.Context, c client.Client, obj client.Object, manager string) (*unstructured.Unstructured, error) {
	u, err := toApplyObject(obj)
	if err != nil {
		return nil, err
	}
	if existing := unchanged(ctx, c, obj, u); existing != nil {
		return existing, nil
	}
	return u, send(ctx, c, u, manager)
}

// applyPartial applies only the fields obj sets that are not zero, under
// manager: obj names an existing object and carries the few fields manager
// owns. It returns the object as the API server answered.
func applyPartial(ctx context.Context, c client.Client, obj runtime.Object, manager string) (*unstructured.Unstructured, error) {
	u, err := toApplyObject(obj)
	if err != nil {
		return nil, err
	}
	for _, f := range []string{"selector", "strategy", "template"} {
		unstructured.RemoveNestedField(u.Object, "spec", f)
	}
	return u, send(ctx, c, u, manager)
}

// send applies u; the API server's answer replaces u's content.
func send(ctx context.Context, c client.Client, u *unstructured.Unstructured, manager string) error {
	kind, name := u.GetKind(), u.GetName()
	if err := c.Apply(ctx, client.ApplyConfigurationFromUnstructured(u), client.FieldOwner(manager), client.ForceOwnership); err != nil {
		// A refusal (an admission policy, a quota, an invalid field) needs a
		// change somewhere; the reconcile is retried all the same, since the
		// change may come from outside the ModelDeployment.
		return failure.New(failure.Other, failure.Object, fmt.Sprintf("failed to apply %s %s", kind, name), err)
	}
	return nil
}

// toApplyObject converts a typed object to the unstructured form sent as an
// apply patch: without status and without the empty creationTimestamp a
// typed object always carries.
func toApplyObject(obj runtime.Object) (*unstructured.Unstructured, error) {
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return nil, err
	}
	u := &unstructured.Unstructured{Object: m}
	delete(u.Object, "status")
	unstructured.RemoveNestedField(u.Object, "metadata", "creationTimestamp")
	unstructured.RemoveNestedField(u.Object, "spec", "template", "metadata", "creationTimestamp")
	return u, nil
}
