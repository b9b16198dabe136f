// Package failure is the operator's one error vocabulary: an error that
// says what kind of thing went wrong and what it concerns. Adapters (the
// MLflow client, the image builder, the dependency check, the Secret
// readers) report a Kind and a Subject; the reconciler alone maps them to a
// condition reason, and the Kind alone decides whether retrying can help.
//
// It knows nothing of Kubernetes or of the API types, so that every package
// below the controller can use it.
package failure

import (
	"errors"
	"fmt"
)

// Kind is what went wrong, in words every adapter shares.
type Kind uint8

const (
	// Other is anything the kinds below do not describe. Retried.
	Other Kind = iota
	// NotFound: the thing named does not exist (yet). Retried: it may be
	// created.
	NotFound
	// NotReady: it exists but cannot be used yet (a model version still
	// registering). Retried.
	NotReady
	// Unauthorized: the credentials were refused. Retried: Secrets rotate.
	Unauthorized
	// Unreachable: no answer, a timeout, or the peer kept failing (5xx,
	// 429). Retried with backoff.
	Unreachable
	// Invalid: the request cannot succeed as it is (a bad reference, an
	// unsafe model file). Terminal: the spec or the input must change.
	Invalid
	// Refused: a policy the user chose refused it (dependencyPolicy
	// Enforce). Terminal.
	Refused
)

func (k Kind) String() string {
	switch k {
	case NotFound:
		return "not found"
	case NotReady:
		return "not ready"
	case Unauthorized:
		return "unauthorized"
	case Unreachable:
		return "unreachable"
	case Invalid:
		return "invalid"
	case Refused:
		return "refused"
	default:
		return "error"
	}
}

// Terminal tells whether retrying without a change cannot help.
func (k Kind) Terminal() bool { return k == Invalid || k == Refused }

// Subject is what a failure concerns: together with the Kind it picks the
// condition reason (a missing alias and a missing Secret are both NotFound).
type Subject string

const (
	// MLflow is the tracking server as a whole (its API, its artifacts).
	MLflow Subject = "MLflow"
	// Model is a registered model.
	Model Subject = "Model"
	// Alias is an alias of a registered model.
	Alias Subject = "Alias"
	// Stage is a stage of a registered model.
	Stage Subject = "Stage"
	// Version is a model version.
	Version Subject = "Version"
	// Secret is a Secret the spec names, or a key in it.
	Secret Subject = "Secret"
	// Registry is the image registry (the base image's or the repository's).
	Registry Subject = "Registry"
	// Build is the image build itself (the model files, the layer).
	Build Subject = "Build"
	// Dependencies is the model's Python requirements against the base image.
	Dependencies Subject = "Dependencies"
	// Object is a Kubernetes object the operator applies (a Deployment, a
	// Service...): the API server or an admission check refused it.
	Object Subject = "Object"
)

// Error is a failure with its Kind and Subject. Msg says what happened for a
// person; Err is the cause, if any.
type Error struct {
	Kind    Kind
	Subject Subject
	Msg     string
	Err     error
}

// New returns an *Error.
func New(kind Kind, subject Subject, msg string, err error) *Error {
	return &Error{Kind: kind, Subject: subject, Msg: msg, Err: err}
}

// Errorf returns an *Error without a cause, its message formatted.
func Errorf(kind Kind, subject Subject, format string, args ...any) *Error {
	return &Error{Kind: kind, Subject: subject, Msg: fmt.Sprintf(format, args...)}
}

func (e *Error) Error() string {
	switch {
	case e.Err == nil:
		return e.Msg
	case e.Msg == "":
		return e.Err.Error()
	default:
		return e.Msg + ": " + e.Err.Error()
	}
}

func (e *Error) Unwrap() error { return e.Err }

// As returns the outermost *Error in err's chain.
func As(err error) (*Error, bool) {
	var e *Error
	if errors.As(err, &e) {
		return e, true
	}
	return nil, false
}

// KindOf is the Kind of the outermost *Error in err's chain, Other when
// there is none.
func KindOf(err error) Kind {
	if e, ok := As(err); ok {
		return e.Kind
	}
	return Other
}

// SubjectOf is the Subject of the outermost *Error in err's chain, "" when
// there is none.
func SubjectOf(err error) Subject {
	if e, ok := As(err); ok {
		return e.Subject
	}
	return ""
}

// IsNotFound tells whether err is a NotFound failure.
func IsNotFound(err error) bool { return KindOf(err) == NotFound }

// IsTerminal tells whether err is a failure retrying cannot fix.
func IsTerminal(err error) bool { return KindOf(err).Terminal() }
