package mlflow

import (
	"errors"
	"fmt"
)

// Kind classifies a failed MLflow request by what the caller can do about it.
type Kind int

const (
	// KindOther is an error that fits no other kind (a bad request, an
	// unexpected answer).
	KindOther Kind = iota
	// KindNotFound: the model, version, alias or artifact does not exist.
	KindNotFound
	// KindUnauthorized: the server refused the credentials (401 or 403).
	KindUnauthorized
	// KindUnreachable: no answer, a timeout, or the server kept failing
	// (5xx, 429) after retries. Worth retrying later.
	KindUnreachable
	// KindInvalid: the server said the request is invalid (400).
	KindInvalid
)

func (k Kind) String() string {
	switch k {
	case KindNotFound:
		return "not found"
	case KindUnauthorized:
		return "unauthorized"
	case KindUnreachable:
		return "unreachable"
	case KindInvalid:
		return "invalid request"
	default:
		return "error"
	}
}

// Error is a failed MLflow request.
type Error struct {
	Kind Kind
	// Op names the request, e.g. "GET registered-models/alias".
	Op string
	// StatusCode is the HTTP status, 0 when no answer came.
	StatusCode int
	// Code is MLflow's error_code, e.g. RESOURCE_DOES_NOT_EXIST.
	Code string
	// Message is MLflow's message, or the body of a non-JSON answer (cut short).
	Message string
	// Err is the underlying error (a network error), if any.
	Err error
}

func (e *Error) Error() string {
	switch {
	case e.Err != nil && e.StatusCode == 0:
		return fmt.Sprintf("%s: %v", e.Op, e.Err)
	case e.Code != "":
		return fmt.Sprintf("%s: HTTP %d %s: %s", e.Op, e.StatusCode, e.Code, e.Message)
	default:
		return fmt.Sprintf("%s: HTTP %d: %s", e.Op, e.StatusCode, e.Message)
	}
}

func (e *Error) Unwrap() error { return e.Err }

// KindOf is the Kind of err, KindOther when err is not an MLflow error.
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return KindOther
}

// IsNotFound tells whether err says a registry object or artifact does not exist.
func IsNotFound(err error) bool { return KindOf(err) == KindNotFound }

// IsUnauthorized tells whether err says the credentials were refused.
func IsUnauthorized(err error) bool { return KindOf(err) == KindUnauthorized }

// IsUnreachable tells whether err says the server could not be reached.
func IsUnreachable(err error) bool { return KindOf(err) == KindUnreachable }

// ResolveError says why a model reference did not resolve to a version.
type ResolveError struct {
	// Reason is a CamelCase reason: ModelNotFound, AliasNotFound, StageEmpty,
	// VersionNotFound, VersionNotReady, MLflowUnreachable, MLflowUnauthorized
	// or MLflowError.
	Reason string
	Msg    string
	Err    error
}

func (e *ResolveError) Error() string {
	if e.Err != nil {
		return e.Msg + ": " + e.Err.Error()
	}
	return e.Msg
}

func (e *ResolveError) Unwrap() error { return e.Err }

// Resolution failure reasons.
const (
	ReasonModelNotFound      = "ModelNotFound"
	ReasonAliasNotFound      = "AliasNotFound"
	ReasonStageEmpty         = "StageEmpty"
	ReasonVersionNotFound    = "VersionNotFound"
	ReasonVersionNotReady    = "VersionNotReady"
	ReasonMLflowUnreachable  = "MLflowUnreachable"
	ReasonMLflowUnauthorized = "MLflowUnauthorized"
	ReasonMLflowError        = "MLflowError"
)

// reasonFor maps a request error to a resolution reason.
func reasonFor(err error) string {
	switch KindOf(err) {
	case KindUnreachable:
		return ReasonMLflowUnreachable
	case KindUnauthorized:
		return ReasonMLflowUnauthorized
	default:
		return ReasonMLflowError
	}
}
