// Package testenv starts a real kube-apiserver and etcd (envtest) with the
// operator's CRDs installed. The binaries are the ones hack/controlplane.sh
// builds from source; `make test` points KUBEBUILDER_ASSETS at them.
package testenv

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/yaml"

	v1alpha1 "github.com/mlflow-operator/mlflow-operator/api/v1alpha1"
	"github.com/mlflow-operator/mlflow-operator/test/harness/procs"
)

// Env is a running API server with a client that knows the operator's types.
type Env struct {
	*envtest.Environment
	Config *rest.Config
	Client client.Client
}

// Start starts the API server. It fails with instructions when the
// control-plane binaries are missing, rather than downloading anything.
func Start() (*Env, error) {
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		return nil, fmt.Errorf("KUBEBUILDER_ASSETS is not set: run the tests with `make test`, or build the control plane with `make controlplane` and export KUBEBUILDER_ASSETS=$(hack/controlplane.sh --print-dir)")
	}
	if err := v1alpha1.AddToScheme(scheme.Scheme); err != nil {
		return nil, err
	}
	env := &envtest.Environment{
		CRDDirectoryPaths:     []string{filepath.Join(procs.RepoRoot(), "config", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
	}
	cfg, err := env.Start()
	if err != nil {
		return nil, fmt.Errorf("failed to start kube-apiserver and etcd from %s: %w", os.Getenv("KUBEBUILDER_ASSETS"), err)
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme.Scheme})
	if err != nil {
		_ = env.Stop()
		return nil, err
	}
	return &Env{Environment: env, Config: cfg, Client: c}, nil
}

// OperatorConfig is a client config for a user that holds only the
// ClusterRole generated from the operator's RBAC markers
// (config/rbac/role.yaml). Running the reconciler with it proves the role is
// enough: a missing permission fails the tests.
func (e *Env) OperatorConfig(ctx context.Context) (*rest.Config, error) {
	data, err := os.ReadFile(filepath.Join(procs.RepoRoot(), "config", "rbac", "role.yaml"))
	if err != nil {
		return nil, err
	}
	role := &rbacv1.ClusterRole{}
	if err := yaml.Unmarshal(data, role); err != nil {
		return nil, fmt.Errorf("config/rbac/role.yaml: %w", err)
	}
	const user = "mlflow-operator-test"
	role.Name = user
	if err := e.Client.Create(ctx, role); err != nil {
		return nil, err
	}
	binding := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: user},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role.Name},
		Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: user}},
	}
	if err := e.Client.Create(ctx, binding); err != nil {
		return nil, err
	}
	u, err := e.ControlPlane.AddUser(envtest.User{Name: user}, e.Config)
	if err != nil {
		return nil, err
	}
	return u.Config(), nil
}
