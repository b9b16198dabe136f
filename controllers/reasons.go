package controllers

import (
	v1alpha1 "github.com/mlflow-operator/mlflow-operator/api/v1alpha1"
	"github.com/mlflow-operator/mlflow-operator/internal/failure"
)

// reasons maps what an adapter reported (a failure's subject and kind) to
// the condition and event reason a person reads. The adapters know nothing
// of reasons; this table is the only place they are chosen.
var reasons = map[failure.Subject]struct {
	byKind   map[failure.Kind]v1alpha1.Reason
	fallback v1alpha1.Reason
}{
	failure.MLflow: {map[failure.Kind]v1alpha1.Reason{
		failure.Unreachable:  v1alpha1.ReasonMLflowUnreachable,
		failure.Unauthorized: v1alpha1.ReasonMLflowUnauthorized,
	}, v1alpha1.ReasonMLflowError},
	failure.Model:   {nil, v1alpha1.ReasonModelNotFound},
	failure.Alias:   {nil, v1alpha1.ReasonAliasNotFound},
	failure.Stage:   {nil, v1alpha1.ReasonStageEmpty},
	failure.Version: {map[failure.Kind]v1alpha1.Reason{failure.NotReady: v1alpha1.ReasonVersionNotReady}, v1alpha1.ReasonVersionNotFound},
	failure.Secret:  {nil, v1alpha1.ReasonSecretNotFound},
	failure.Registry: {map[failure.Kind]v1alpha1.Reason{
		failure.Unauthorized: v1alpha1.ReasonRegistryUnauthorized,
		failure.NotFound:     v1alpha1.ReasonImageNotFound,
		failure.Unreachable:  v1alpha1.ReasonRegistryUnreachable,
		failure.Invalid:      v1alpha1.ReasonBuildInvalid,
	}, v1alpha1.ReasonBuildFailed},
	failure.Build:        {map[failure.Kind]v1alpha1.Reason{failure.Invalid: v1alpha1.ReasonBuildInvalid}, v1alpha1.ReasonBuildFailed},
	failure.Dependencies: {nil, v1alpha1.ReasonDependenciesRefused},
	failure.Object:       {map[failure.Kind]v1alpha1.Reason{failure.Refused: v1alpha1.ReasonOwnershipConflict}, v1alpha1.ReasonApplyFailed},
}

// reasonOf is the condition reason of a step's error (fallback when the
// error is no failure, or of a subject the table does not know) and whether
// retrying without a change cannot help.
func reasonOf(err error, fallback v1alpha1.Reason) (v1alpha1.Reason, bool) {
	f, ok := failure.As(err)
	if !ok {
		return fallback, false
	}
	entry, ok := reasons[f.Subject]
	if !ok {
		return fallback, f.Kind.Terminal()
	}
	if r, ok := entry.byKind[f.Kind]; ok {
		return r, f.Kind.Terminal()
	}
	return entry.fallback, f.Kind.Terminal()
}
