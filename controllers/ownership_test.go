package controllers_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/mlflow-operator/mlflow-operator/api/v1alpha1"
	"github.com/mlflow-operator/mlflow-operator/internal/resolver"
	"github.com/mlflow-operator/mlflow-operator/test/harness/fixtures"
)

// TestForeignServiceIsNotTakenOver: a Service of someone else carries the
// name the ModelDeployment's Service would have. The operator must not
// rewrite it (server-side apply with forced ownership would), and says why.
func TestForeignServiceIsNotTakenOver(t *testing.T) {
	ctx := context.Background()
	ns := namespace(t)
	theirs := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "iris", Namespace: ns, Labels: map[string]string{"team": "payments"}},
		Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "payments"},
			Ports: []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromInt32(9000)}}},
	}
	if err := k8s.Create(ctx, theirs); err != nil {
		t.Fatal(err)
	}
	md := fixtures.Valid(ns, "iris")
	md.Spec.Rollout.SmokeTest.Enabled = ptrFalse()
	fake.Set(client.ObjectKeyFromObject(md), answer{Version: resolver.ModelVersion{Version: "1", RunID: "run1"}, Image: imageV1})
	if err := k8s.Create(ctx, md); err != nil {
		t.Fatal(err)
	}
	passCandidate(t, md, imageV1)
	eventually(t, "the conflict is reported", func() error {
		m := getMD(t, md)
		if err := wantCondition(m, v1alpha1.ConditionStalled, metav1.ConditionTrue, v1alpha1.ReasonOwnershipConflict); err != nil {
			return err
		}
		if msg := condition(m, v1alpha1.ConditionReady).Message; !strings.Contains(msg, "Service iris exists") {
			return fmt.Errorf("the message does not name the Service: %q", msg)
		}
		return nil
	})
	consistently(t, "their Service untouched, no production Deployment", 2*time.Second, func() error {
		got := &corev1.Service{}
		if err := k8s.Get(ctx, client.ObjectKeyFromObject(theirs), got); err != nil {
			return err
		}
		if got.Spec.Selector["app"] != "payments" || got.Labels["team"] != "payments" || len(got.OwnerReferences) != 0 ||
			got.Spec.Ports[0].Port != 80 || len(got.ManagedFields) != 1 {
			return fmt.Errorf("their Service was changed: selector %v labels %v owners %v ports %v managers %d",
				got.Spec.Selector, got.Labels, got.OwnerReferences, got.Spec.Ports, len(got.ManagedFields))
		}
		err := k8s.Get(ctx, client.ObjectKeyFromObject(md), &appsv1.Deployment{})
		if !apierrors.IsNotFound(err) {
			return fmt.Errorf("a production Deployment was applied beside a conflict (%v)", err)
		}
		return nil
	})
}

// TestCandidateNameCollision: a ModelDeployment named "x-candidate" owns a
// Deployment of that name, which is also the name of x's candidate. x must
// not take it over.
func TestCandidateNameCollision(t *testing.T) {
	ctx := context.Background()
	ns := namespace(t)
	other := fixtures.Valid(ns, "x-candidate")
	other.Spec.Rollout.SmokeTest.Enabled = ptrFalse()
	fake.Set(client.ObjectKeyFromObject(other), answer{Version: resolver.ModelVersion{Version: "1", RunID: "run1"}, Image: imageV1})
	if err := k8s.Create(ctx, other); err != nil {
		t.Fatal(err)
	}
	passCandidate(t, other, imageV1)
	eventually(t, "x-candidate's production Deployment", func() error {
		return k8s.Get(ctx, client.ObjectKeyFromObject(other), &appsv1.Deployment{})
	})

	x := fixtures.Valid(ns, "x")
	fake.Set(client.ObjectKeyFromObject(x), answer{Version: resolver.ModelVersion{Version: "2", RunID: "run2"}, Image: imageV2})
	if err := k8s.Create(ctx, x); err != nil {
		t.Fatal(err)
	}
	eventually(t, "x reports the conflict", func() error {
		return wantCondition(getMD(t, x), v1alpha1.ConditionStalled, metav1.ConditionTrue, v1alpha1.ReasonOwnershipConflict)
	})
	d := &appsv1.Deployment{}
	if err := k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: "x-candidate"}, d); err != nil {
		t.Fatal(err)
	}
	if image(d) != imageV1 || d.OwnerReferences[0].Name != "x-candidate" {
		t.Errorf("x-candidate's Deployment was taken over: image %s owner %s", image(d), d.OwnerReferences[0].Name)
	}
}

func ptrFalse() *bool { f := false; return &f }
