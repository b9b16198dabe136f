package failure

import (
	"errors"
	"fmt"
	"testing"
)

func TestErrorMessageAndChain(t *testing.T) {
	cause := errors.New("connection refused")
	for _, tc := range []struct {
		err  *Error
		want string
	}{
		{New(Unreachable, MLflow, "GET registered-models/alias", cause), "GET registered-models/alias: connection refused"},
		{Errorf(NotFound, Alias, "alias %q of model %q does not exist", "champion", "iris"), `alias "champion" of model "iris" does not exist`},
		{New(Other, Build, "", cause), "connection refused"},
	} {
		if got := tc.err.Error(); got != tc.want {
			t.Errorf("Error() = %q, want %q", got, tc.want)
		}
	}
	wrapped := fmt.Errorf("build of version 3: %w", New(Unauthorized, Registry, "push", cause))
	if KindOf(wrapped) != Unauthorized || SubjectOf(wrapped) != Registry || !errors.Is(wrapped, cause) {
		t.Fatalf("the kind, subject or cause is lost through wrapping: %v", wrapped)
	}
	// The outermost failure decides.
	outer := New(NotFound, Model, "registered model \"iris\" does not exist", New(NotFound, MLflow, "GET", nil))
	if SubjectOf(outer) != Model {
		t.Fatalf("SubjectOf = %s, want Model", SubjectOf(outer))
	}
	if KindOf(errors.New("plain")) != Other || SubjectOf(errors.New("plain")) != "" || IsTerminal(errors.New("plain")) {
		t.Fatal("a plain error must be Other, without subject, and not terminal")
	}
}

func TestTerminalKinds(t *testing.T) {
	terminal := map[Kind]bool{Invalid: true, Refused: true}
	for k := Other; k <= Refused; k++ {
		if k.Terminal() != terminal[k] {
			t.Errorf("%s.Terminal() = %v", k, k.Terminal())
		}
		if IsTerminal(New(k, Build, "x", nil)) != terminal[k] {
			t.Errorf("IsTerminal of a %s failure = %v", k, !terminal[k])
		}
	}
}
