package controllers

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"reflect"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// AppliedAnnotation is set on every object the operator applies: the hash
// of the operator's apply configuration, so that a field the operator stops
// setting (which an apply removes) is a change too.
const AppliedAnnotation = "serving.mlflow-operator.io/applied"

// unchanged returns the cached copy of obj, as unstructured, when applying
// u (obj's apply configuration) would change nothing: the copy carries the
// hash of u (the operator applied exactly this before) and holds every
// field u sets with u's value (nobody changed them since: no drift). Else,
// or when there is no cached copy, it returns nil and sets the hash on u.
// Fields others set or the API server defaulted are not compared: an apply
// leaves them alone too.
func unchanged(ctx context.Context, c client.Reader, obj client.Object, u *unstructured.Unstructured) *unstructured.Unstructured {
	annotations := u.GetAnnotations()
	if annotations == nil {
		annotations = map[string]string{}
	}
	data, err := json.Marshal(u.Object)
	if err != nil {
		return nil
	}
	sum := sha256.Sum256(data)
	annotations[AppliedAnnotation] = hex.EncodeToString(sum[:12])
	u.SetAnnotations(annotations)

	existing, ok := reflect.New(reflect.TypeOf(obj).Elem()).Interface().(client.Object)
	if !ok {
		return nil
	}
	if err := c.Get(ctx, client.ObjectKeyFromObject(obj), existing); err != nil {
		return nil
	}
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(existing)
	if err != nil {
		return nil
	}
	current := &unstructured.Unstructured{Object: m}
	if current.GetAnnotations()[AppliedAnnotation] != annotations[AppliedAnnotation] || !holds(current.Object, u.Object) {
		return nil
	}
	current.SetAPIVersion(u.GetAPIVersion())
	current.SetKind(u.GetKind())
	return current
}

// holds says whether have holds every value want sets: maps hold the keys
// of want's maps (with values held in turn), lists are as long as want's
// with each item held, other values are equal. A value want sets to its
// zero (false, 0, "", empty) is held by its absence: the API server drops
// those.
func holds(have, want any) bool {
	switch w := want.(type) {
	case map[string]any:
		h, ok := have.(map[string]any)
		if !ok {
			return have == nil && len(w) == 0
		}
		for k, wv := range w {
			hv, found := h[k]
			if !found {
				if !zero(wv) {
					return false
				}
				continue
			}
			if !holds(hv, wv) {
				return false
			}
		}
		return true
	case []any:
		h, ok := have.([]any)
		if !ok {
			return have == nil && len(w) == 0
		}
		if len(h) != len(w) {
			return false
		}
		for i := range w {
			if !holds(h[i], w[i]) {
				return false
			}
		}
		return true
	case nil:
		return true
	default:
		return reflect.DeepEqual(have, want)
	}
}

// zero says whether v is a zero value or empty.
func zero(v any) bool {
	switch x := v.(type) {
	case nil:
		return true
	case map[string]any:
		return len(x) == 0
	case []any:
		return len(x) == 0
	case string:
		return x == ""
	case bool:
		return !x
	case int64:
		return x == 0
	case float64:
		return x == 0
	}
	return false
}
