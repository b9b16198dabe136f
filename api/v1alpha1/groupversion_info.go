// Package v1alpha1 holds the ModelDeployment API of the serving.mlflow-operator.io
// group: a registered MLflow model, what version of it to follow, and how to
// build, verify, serve and scale it.
//
// +kubebuilder:object:generate=true
// +groupName=serving.mlflow-operator.io
package v1alpha1

import (
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/scheme"
)

var (
	// GroupVersion is the group and version of this API.
	GroupVersion = schema.GroupVersion{Group: "serving.mlflow-operator.io", Version: "v1alpha1"}

	// SchemeBuilder registers the types of this API with a runtime.Scheme.
	SchemeBuilder = &scheme.Builder{GroupVersion: GroupVersion}

	// AddToScheme adds the types of this API to a runtime.Scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)
