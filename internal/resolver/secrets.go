package resolver

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/mlflow-operator/mlflow-operator/api/v1alpha1"
	"github.com/mlflow-operator/mlflow-operator/internal/failure"
	"github.com/mlflow-operator/mlflow-operator/internal/mlflow"
)

// Keys of the MLflow credentials Secret: the MLflow Python client's
// environment variable names.
const (
	SecretKeyUsername = "MLFLOW_TRACKING_USERNAME"
	SecretKeyPassword = "MLFLOW_TRACKING_PASSWORD"
	SecretKeyToken    = "MLFLOW_TRACKING_TOKEN"
	SecretKeyCA       = "ca.crt"
)

// connection reads the Secrets a ModelDeployment names. Their values go only
// into request headers and the TLS configuration: never into logs, events
// or status.
func (r *Resolver) connection(ctx context.Context, md *v1alpha1.ModelDeployment) (connection, error) {
	conn := connection{uri: md.Spec.MLflow.TrackingURI, insecure: md.Spec.MLflow.InsecureSkipTLSVerify}
	if ref := md.Spec.MLflow.CredentialsSecretRef; ref != nil && ref.Name != "" {
		data, err := ReadSecret(ctx, r.Reader, md.Namespace, ref.Name)
		if err != nil {
			return conn, err
		}
		conn.auth = mlflow.Auth{
			Username: string(data[SecretKeyUsername]),
			Password: string(data[SecretKeyPassword]),
			Token:    string(data[SecretKeyToken]),
		}
		if conn.auth == (mlflow.Auth{}) {
			return conn, failure.Errorf(failure.NotFound, failure.Secret,
				"secret %q has none of the keys %s, %s or %s", ref.Name, SecretKeyUsername, SecretKeyPassword, SecretKeyToken)
		}
	}
	if ref := md.Spec.MLflow.CASecretRef; ref != nil && ref.Name != "" {
		data, err := ReadSecret(ctx, r.Reader, md.Namespace, ref.Name)
		if err != nil {
			return conn, err
		}
		ca, ok := data[SecretKeyCA]
		if !ok {
			return conn, failure.Errorf(failure.NotFound, failure.Secret, "secret %q has no key %s", ref.Name, SecretKeyCA)
		}
		conn.ca = ca
	}
	return conn, nil
}

// ReadSecret reads the data of a Secret the spec names. A missing Secret is
// a NotFound failure about a Secret; other errors are the API server's.
func ReadSecret(ctx context.Context, reader client.Reader, namespace, name string) (map[string][]byte, error) {
	s := &corev1.Secret{}
	if err := reader.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, s); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, failure.Errorf(failure.NotFound, failure.Secret, "secret %q not found in namespace %s", name, namespace)
		}
		return nil, fmt.Errorf("failed to read secret %q: %w", name, err)
	}
	return s.Data, nil
}
