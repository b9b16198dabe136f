package buildpush

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1alpha1 "github.com/mlflow-operator/mlflow-operator/api/v1alpha1"
)

// grantedNamespace is the one namespace the suite's operator lets use its
// own registry identity (for models/granted/ and serving/).
const grantedNamespace = "build-granted"

// TestBuildsDoNotBorrowTheOperatorsIdentity: the operator's own registry
// identity can pull the base and push anywhere in the registry. A tenant
// who names no Secret, or a Secret for another registry, must not get it:
// the build is refused as unauthorized, nothing is pushed.
func TestBuildsDoNotBorrowTheOperatorsIdentity(t *testing.T) {
	ns := namespace(t)
	other := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "other-registry", Namespace: ns},
		Type:       corev1.SecretTypeDockerConfigJson,
		Data: map[string][]byte{corev1.DockerConfigJsonKey: mustJSON(map[string]any{"auths": map[string]any{
			"other.example.com": map[string]string{"auth": base64.StdEncoding.EncodeToString([]byte("u:p"))}}})},
	}
	if err := k8s.Create(context.Background(), other); err != nil {
		t.Fatal(err)
	}
	inRepo := func(repo string) func(*v1alpha1.ModelDeployment) {
		return func(md *v1alpha1.ModelDeployment) { md.Spec.Image.Repository = reg.Host + "/models/" + repo }
	}
	noSecret := newMD(t, ns, "no-secret", fullBase, "", inRepo("borrowed-a"))
	wrongSecret := newMD(t, ns, "other-secret", fullBase, "other-registry", inRepo("borrowed-b"))
	for _, md := range []*v1alpha1.ModelDeployment{noSecret, wrongSecret} {
		eventually(t, 60*time.Second, md.Name+" refused", func() error {
			m := get(t, md)
			if err := cond(m, v1alpha1.ConditionImageReady, metav1.ConditionFalse, v1alpha1.ReasonRegistryUnauthorized); err != nil {
				return err
			}
			if m.Status.Target == nil || m.Status.Target.Image != "" {
				return fmt.Errorf("target %+v", m.Status.Target)
			}
			return nil
		})
	}
	for _, repo := range []string{"models/borrowed-a", "models/borrowed-b"} {
		if n := manifestPuts.count(repo); n != 0 || len(reg.Manifests(repo)) != 0 {
			t.Errorf("%s: %d pushes with the operator's identity", repo, n)
		}
	}
}

// TestGrantedNamespaceUsesTheOperatorsIdentity: where an administrator
// grants it, a build without a Secret uses the operator's identity.
func TestGrantedNamespaceUsesTheOperatorsIdentity(t *testing.T) {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: grantedNamespace}}
	if err := k8s.Create(context.Background(), ns); err != nil {
		t.Fatal(err)
	}
	md := newMD(t, grantedNamespace, "iris", fullBase, "", func(md *v1alpha1.ModelDeployment) {
		md.Spec.Image.Repository = reg.Host + "/models/granted/iris"
	})
	eventually(t, 120*time.Second, "pushed with the granted identity", func() error {
		m := get(t, md)
		if err := cond(m, v1alpha1.ConditionImageReady, metav1.ConditionTrue, v1alpha1.ReasonPushed); err != nil {
			c := meta.FindStatusCondition(m.Status.Conditions, v1alpha1.ConditionImageReady)
			if c != nil && strings.Contains(c.Message, "unauthorized") {
				return fmt.Errorf("refused although granted: %s", c.Message)
			}
			return err
		}
		return nil
	})
}

func mustJSON(v any) []byte {
	data, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return data
}
