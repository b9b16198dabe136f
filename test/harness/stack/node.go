package stack

import (
	"errors"
	"fmt"
	"os"

	"github.com/mlflow-operator/mlflow-operator/test/harness/cluster"
	"github.com/mlflow-operator/mlflow-operator/test/harness/realnode"
)

// EnterNode picks what runs the pods and, for a real node, enters its
// namespaces: the rest of the program runs again inside them (see
// realnode.Enter), and this returns there. Where the machine cannot run a
// real node (not root, no unshare), it falls back to kwok nodes with the
// reason in why, unless require is set; LOCAL_NODE=kwok asks for kwok nodes.
func EnterNode(require bool) (node cluster.NodeKind, ns *realnode.Namespace, why string, err error) {
	if os.Getenv("LOCAL_NODE") == "kwok" && !require {
		return cluster.KwokNodes, nil, "LOCAL_NODE=kwok", nil
	}
	ns, err = realnode.Enter()
	switch {
	case err == nil:
		return cluster.RealNode, ns, "", nil
	case errors.Is(err, realnode.ErrUnsupported) && !require:
		return cluster.KwokNodes, nil, err.Error(), nil
	default:
		return 0, nil, "", fmt.Errorf("cannot run a real node: %w", err)
	}
}
