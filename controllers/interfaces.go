package controllers

import (
	"context"
	"errors"
	"time"

	v1alpha1 "github.com/mlflow-operator/mlflow-operator/api/v1alpha1"
)

// ModelVersion is a registered model version the reference resolved to.
type ModelVersion struct {
	Version string
	RunID   string
	Source  string
	// AnsweredAt is when the registry gave this answer: earlier than the
	// call when the answer was shared from another object's poll. Zero
	// means now.
	AnsweredAt time.Time
}

// Resolver tells which model version a ModelDeployment's model reference
// (alias, stage or version) means now. The MLflow registry client implements
// it.
type Resolver interface {
	Resolve(ctx context.Context, md *v1alpha1.ModelDeployment) (ModelVersion, error)
}

// ImageResult is the state of the image for one model version.
type ImageResult struct {
	// Image is the pushed image by digest (repository@sha256:...), empty
	// while it is being built.
	Image string
	// Message says, for a person, what is happening (e.g. "building").
	Message string
	// Dependencies is the dependency check's result, when one ran.
	Dependencies *DependencyStatus
	// RetryAt is when a failed build is tried again.
	RetryAt time.Time
}

// ImageProvider gives the image that serves a model version. The image
// builder implements it: it starts a build when there is none and answers
// without blocking.
type ImageProvider interface {
	Image(ctx context.Context, md *v1alpha1.ModelDeployment, v ModelVersion) (ImageResult, error)
}

// ReasonedError is an error that knows the condition reason it stands for,
// e.g. AliasNotFound or MLflowUnreachable.
type ReasonedError interface {
	error
	Reason() string
	// Terminal tells that retrying without a change will not help.
	Terminal() bool
}

// reasonOf is the condition reason of err, or fallback.
func reasonOf(err error, fallback string) (reason string, terminal bool) {
	var re ReasonedError
	if errors.As(err, &re) {
		return re.Reason(), re.Terminal()
	}
	return fallback, false
}
