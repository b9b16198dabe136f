package controllers

import (
	"context"
	"encoding/json"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/mlflow-operator/mlflow-operator/api/v1alpha1"
	"github.com/mlflow-operator/mlflow-operator/internal/status"
	"github.com/mlflow-operator/mlflow-operator/internal/text"
)

// The operator watches ModelDeployments as unstructured objects and decodes
// each one in its own reconcile. A watch of the typed objects would decode
// every object of the list at once: one value the API server accepted but
// Go cannot decode (a CRD older than its validation rules, a hand-edited
// etcd) would keep the cache from ever syncing, and stop the operator for
// every namespace. Decoded one by one, such an object is reported on its
// own status and skipped.

// modelDeploymentObject is an empty unstructured ModelDeployment: what the
// controller watches and the webhook receiver lists.
func modelDeploymentObject() *unstructured.Unstructured {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(v1alpha1.GroupVersion.WithKind("ModelDeployment"))
	return u
}

// read reads the ModelDeployment at key from reader. undecodable is set
// when the object exists but cannot be decoded; err is then nil.
func read(ctx context.Context, reader client.Reader, key types.NamespacedName) (md *v1alpha1.ModelDeployment, undecodable *unstructured.Unstructured, decodeErr error, err error) {
	u := modelDeploymentObject()
	if err := reader.Get(ctx, key, u); err != nil {
		return nil, nil, nil, err
	}
	md = &v1alpha1.ModelDeployment{}
	// Decoded as the API client would: through JSON, which checks every
	// value (a duration, a quantity) the way the typed client does.
	data, err := json.Marshal(u.Object)
	if err != nil {
		return nil, u, err, nil
	}
	if err := json.Unmarshal(data, md); err != nil {
		return nil, u, err, nil
	}
	return md, nil, nil, nil
}

// reportUndecodable writes, with a merge patch that does not need the typed
// object, that the ModelDeployment cannot be read: Ready=False and
// Stalled=True with reason InvalidSpec. Nothing else of it is reconciled
// until its spec changes.
func (r *ModelDeploymentReconciler) reportUndecodable(ctx context.Context, u *unstructured.Unstructured, decodeErr error) error {
	msg := text.Shorten("the operator cannot read this ModelDeployment: "+decodeErr.Error()+
		"; fix the value (the CRD's validation refuses it; was the CRD updated?)", maxMessage)
	var conds []metav1.Condition
	if raw, found, _ := unstructured.NestedSlice(u.Object, "status", "conditions"); found {
		data, _ := json.Marshal(raw)
		_ = json.Unmarshal(data, &conds)
	}
	ready := meta.FindStatusCondition(conds, v1alpha1.ConditionReady)
	if ready != nil && ready.Reason == string(v1alpha1.ReasonInvalidSpec) && ready.Message == msg && ready.ObservedGeneration == u.GetGeneration() {
		return nil
	}
	status.SetSummary(&conds, u.GetGeneration(), status.Outcome{Stalled: true, Reason: v1alpha1.ReasonInvalidSpec, Message: msg})
	patch, err := json.Marshal(map[string]any{"status": map[string]any{"conditions": conds}})
	if err != nil {
		return err
	}
	if err := r.Status().Patch(ctx, u, client.RawPatch(types.MergePatchType, patch)); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("failed to report an undecodable ModelDeployment: %w", err)
	}
	r.eventObject(u, msg)
	return nil
}

// eventObject records a Warning InvalidSpec event about an object known
// only in its unstructured form.
func (r *ModelDeploymentReconciler) eventObject(obj runtime.Object, note string) {
	if r.Recorder != nil {
		r.Recorder.Eventf(obj, nil, "Warning", string(v1alpha1.ReasonInvalidSpec), string(v1alpha1.ActionReconcile), "%s", note)
	}
}
