package realnode_test

import (
	"errors"
	"fmt"
	"os"
	"testing"

	"github.com/mlflow-operator/mlflow-operator/test/harness/realnode"
)

// unsupported is why this machine cannot run a real node; the tests that
// need one skip with it.
var unsupported error

// TestMain runs the package's tests inside the real node's namespaces;
// Enter tears them down after the tests and fails the run when anything
// was left on the host.
func TestMain(m *testing.M) {
	if _, err := realnode.Enter(); err != nil {
		if !errors.Is(err, realnode.ErrUnsupported) {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		unsupported = err
	}
	os.Exit(m.Run())
}

func requireNamespace(t *testing.T) *realnode.Namespace {
	t.Helper()
	if unsupported != nil {
		t.Skip(unsupported)
	}
	return realnode.Current()
}
