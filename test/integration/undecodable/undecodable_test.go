// Package undecodable runs the operator against an API server that lets
// through a ModelDeployment the operator cannot decode (its CRD lacks the
// duration bounds, as an older CRD would). That object must be reported on
// its own status and skipped; every other ModelDeployment is reconciled as
// usual.
package undecodable

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/mlflow-operator/mlflow-operator/api/v1alpha1"
	"github.com/mlflow-operator/mlflow-operator/controllers"
	"github.com/mlflow-operator/mlflow-operator/internal/resolver"
	"github.com/mlflow-operator/mlflow-operator/test/harness/fixtures"
	"github.com/mlflow-operator/mlflow-operator/test/harness/operator"
	"github.com/mlflow-operator/mlflow-operator/test/harness/testenv"
)

const image = "registry.example.com/models/iris@sha256:1111111111111111111111111111111111111111111111111111111111111111"

var env *testenv.Env

func TestMain(m *testing.M) {
	testenv.SetLogger()
	var err error
	if env, err = testenv.Start(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	_ = env.Stop()
	os.Exit(code)
}

// weakenCRD drops the validation rules of spec.rollout.smokeTest.timeout,
// so that the API server stores values Go's duration parser refuses.
func weakenCRD(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	if err := apiextensionsv1.AddToScheme(scheme.Scheme); err != nil {
		t.Fatal(err)
	}
	crd := &apiextensionsv1.CustomResourceDefinition{}
	if err := env.Client.Get(ctx, client.ObjectKey{Name: "modeldeployments.serving.mlflow-operator.io"}, crd); err != nil {
		t.Fatal(err)
	}
	timeout := crd.Spec.Versions[0].Schema.OpenAPIV3Schema.
		Properties["spec"].Properties["rollout"].Properties["smokeTest"].Properties["timeout"]
	timeout.XValidations = nil
	crd.Spec.Versions[0].Schema.OpenAPIV3Schema.Properties["spec"].Properties["rollout"].Properties["smokeTest"].Properties["timeout"] = timeout
	if err := env.Client.Update(ctx, crd); err != nil {
		t.Fatal(err)
	}
}

func TestUndecodableObjectIsReportedAndSkipped(t *testing.T) {
	ctx := context.Background()
	weakenCRD(t)
	ns := testenv.Namespace(t, env.Client, "undecodable")

	// The API server now takes a timeout no Go duration can hold.
	bad, err := runtime.DefaultUnstructuredConverter.ToUnstructured(fixtures.Valid(ns, "bad"))
	if err != nil {
		t.Fatal(err)
	}
	u := &unstructured.Unstructured{Object: bad}
	if err := unstructured.SetNestedField(u.Object, "99999999999h", "spec", "rollout", "smokeTest", "timeout"); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 30*time.Second, "the weakened CRD is served", func() error {
		return env.Client.Create(ctx, u.DeepCopy())
	})

	fake := fixtures.NewFakeRegistry()
	good := fixtures.Valid(ns, "good")
	fake.Set(client.ObjectKeyFromObject(good), fixtures.Answer{Version: resolver.ModelVersion{Version: "1", RunID: "run1"}, Image: image})
	if err := env.Client.Create(ctx, good); err != nil {
		t.Fatal(err)
	}
	op, err := operator.Start(env.Config, operator.WithReconciler(controllers.ModelDeploymentReconciler{
		Resolver: fake, Images: fake, Examples: fake,
	}))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = op.Stop() }()

	testenv.Eventually(t, 60*time.Second, "the good ModelDeployment is reconciled", func() error {
		return env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "good-candidate"}, &appsv1.Deployment{})
	})
	testenv.Eventually(t, 60*time.Second, "the bad one is reported, not reconciled", func() error {
		got := &unstructured.Unstructured{}
		got.SetGroupVersionKind(v1alpha1.GroupVersion.WithKind("ModelDeployment"))
		if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "bad"}, got); err != nil {
			return err
		}
		raw, _, _ := unstructured.NestedSlice(got.Object, "status", "conditions")
		var conds []metav1.Condition
		for _, c := range raw {
			m, _ := c.(map[string]any)
			var cond metav1.Condition
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(m, &cond); err == nil {
				conds = append(conds, cond)
			}
		}
		ready := meta.FindStatusCondition(conds, v1alpha1.ConditionReady)
		if ready == nil || ready.Status != metav1.ConditionFalse || ready.Reason != string(v1alpha1.ReasonInvalidSpec) ||
			!strings.Contains(ready.Message, "cannot read this ModelDeployment") {
			return fmt.Errorf("Ready %+v", ready)
		}
		if !meta.IsStatusConditionTrue(conds, v1alpha1.ConditionStalled) {
			return fmt.Errorf("not Stalled: %+v", conds)
		}
		return nil
	})
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "bad-candidate"}, &appsv1.Deployment{}); err == nil {
		t.Error("the undecodable ModelDeployment got a candidate")
	}
}
