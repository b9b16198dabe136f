package controllers_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/mlflow-operator/mlflow-operator/api/v1alpha1"
	"github.com/mlflow-operator/mlflow-operator/internal/resolver"
	"github.com/mlflow-operator/mlflow-operator/test/harness/fixtures"
)

// The status never claims more than happened: these tests are the cases
// where it once did.

// refuseCandidates installs a ValidatingAdmissionPolicy (a real admission
// check of the real API server) that refuses every Deployment named
// *-candidate in namespace ns, as a cluster policy, a quota or a webhook
// might, and waits until it is in force.
func refuseCandidates(t *testing.T, ns string) {
	t.Helper()
	ctx := context.Background()
	name := "refuse-candidates-" + ns
	policy := &admissionv1.ValidatingAdmissionPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: admissionv1.ValidatingAdmissionPolicySpec{
			FailurePolicy: ptr.To(admissionv1.Fail),
			MatchConstraints: &admissionv1.MatchResources{ResourceRules: []admissionv1.NamedRuleWithOperations{{
				RuleWithOperations: admissionv1.RuleWithOperations{
					Operations: []admissionv1.OperationType{admissionv1.Create, admissionv1.Update},
					Rule:       admissionv1.Rule{APIGroups: []string{"apps"}, APIVersions: []string{"v1"}, Resources: []string{"deployments"}},
				},
			}}},
			Validations: []admissionv1.Validation{{
				Expression: "!object.metadata.name.endsWith('-candidate')",
				Message:    "candidates are refused in this namespace by a test policy",
			}},
		},
	}
	binding := &admissionv1.ValidatingAdmissionPolicyBinding{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: admissionv1.ValidatingAdmissionPolicyBindingSpec{
			PolicyName:        name,
			ValidationActions: []admissionv1.ValidationAction{admissionv1.Deny},
			MatchResources: &admissionv1.MatchResources{NamespaceSelector: &metav1.LabelSelector{
				MatchLabels: map[string]string{"kubernetes.io/metadata.name": ns},
			}},
		},
	}
	for _, obj := range []client.Object{policy, binding} {
		if err := k8s.Create(ctx, obj); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = k8s.Delete(context.Background(), obj) })
	}
	probe := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "probe-candidate", Namespace: ns},
		Spec: appsv1.DeploymentSpec{
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"a": "b"}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"a": "b"}},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "x"}}},
			},
		},
	}
	eventually(t, "the policy is in force", func() error {
		if err := k8s.Create(ctx, probe, client.DryRunAll); err == nil {
			return fmt.Errorf("a candidate was admitted")
		}
		return nil
	})
}

// TestRefusedObjectNeverReportsReady: the API server refuses the candidate
// on every attempt. Ready must never be True, and Ready, an event and the
// message must name what was refused.
func TestRefusedObjectNeverReportsReady(t *testing.T) {
	ns := namespace(t)
	refuseCandidates(t, ns)
	md := fixtures.Valid(ns, "iris")
	fake.Set(client.ObjectKeyFromObject(md), answer{Version: resolver.ModelVersion{Version: "1", RunID: "run1"}, Image: imageV1})
	if err := k8s.Create(context.Background(), md); err != nil {
		t.Fatal(err)
	}
	eventually(t, "Ready says the candidate was refused", func() error {
		m := getMD(t, md)
		if err := wantCondition(m, v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonApplyFailed); err != nil {
			return err
		}
		if msg := condition(m, v1alpha1.ConditionReady).Message; !strings.Contains(msg, "Deployment iris-candidate") || !strings.Contains(msg, "refused in this namespace by a test policy") {
			return fmt.Errorf("Ready's message does not name the refused object and why: %q", msg)
		}
		if err := wantCondition(m, v1alpha1.ConditionReconciling, metav1.ConditionTrue, v1alpha1.ReasonApplyFailed); err != nil {
			return err
		}
		if ev := events(t, md); ev[v1alpha1.ReasonApplyFailed] != corev1.EventTypeWarning {
			return fmt.Errorf("no ApplyFailed warning among %v", ev)
		}
		return nil
	})
	consistently(t, "never Ready while nothing serves", 3*time.Second, func() error {
		m := getMD(t, md)
		if c := condition(m, v1alpha1.ConditionReady); c == nil || c.Status == metav1.ConditionTrue {
			return fmt.Errorf("Ready %+v with serving %+v", c, m.Status.Serving)
		}
		return nil
	})
	// One event for the transition, not one per retry.
	if n := countEvents(t, md, v1alpha1.ReasonApplyFailed); n != 1 {
		t.Errorf("%d ApplyFailed events, want 1 (events on transitions only)", n)
	}
}

func countEvents(t *testing.T, md *v1alpha1.ModelDeployment, reason v1alpha1.Reason) int {
	t.Helper()
	list := &eventsv1.EventList{}
	if err := k8s.List(context.Background(), list, client.InNamespace(md.Namespace)); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range list.Items {
		if e.Regarding.Name == md.Name && e.Reason == string(reason) {
			n++
			if e.Series != nil {
				n += int(e.Series.Count) - 1
			}
		}
	}
	return n
}

// TestReadinessOnlyIsSaid: a version logged without an input example is
// promoted on its candidate's readiness, and the status and an event say
// that no request was sent.
func TestReadinessOnlyIsSaid(t *testing.T) {
	srv := newScoringServer(t)
	md := serving(t, srv)
	fake.Set(client.ObjectKeyFromObject(md), answer{Version: resolver.ModelVersion{Version: "2", RunID: "run2"}, Image: imageV2, NoExample: true})
	touch(t, md)
	candidateUp(t, md, imageV2, "")
	eventually(t, "promoted on readiness, and said so", func() error {
		m := getMD(t, md)
		if err := wantCondition(m, v1alpha1.ConditionCandidateVerified, metav1.ConditionTrue, v1alpha1.ReasonReadinessOnly); err != nil {
			return err
		}
		if msg := condition(m, v1alpha1.ConditionCandidateVerified).Message; !strings.Contains(msg, "without a request") || !strings.Contains(msg, "input example") {
			return fmt.Errorf("message does not say what was (not) checked: %q", msg)
		}
		if ev := events(t, md); ev[v1alpha1.ReasonReadinessOnly] != corev1.EventTypeNormal {
			return fmt.Errorf("no ReadinessOnly event among %v", ev)
		}
		return nil
	})
	if reqs := srv.requests(); len(reqs) != 0 {
		t.Errorf("requests %q: there was nothing to send", reqs)
	}
}

// TestRequiredSmokeTestRefusesReadinessOnly: with smokeTest.required, a
// version without an input example is not promoted.
func TestRequiredSmokeTestRefusesReadinessOnly(t *testing.T) {
	srv := newScoringServer(t)
	md := serving(t, srv)
	updateMD(t, md, func(m *v1alpha1.ModelDeployment) { m.Spec.Rollout.SmokeTest.Required = true })
	fake.Set(client.ObjectKeyFromObject(md), answer{Version: resolver.ModelVersion{Version: "2", RunID: "run2"}, Image: imageV2, NoExample: true})
	touch(t, md)
	candidateUp(t, md, imageV2, "")
	eventually(t, "version 2 refused", func() error {
		m := getMD(t, md)
		if err := wantCondition(m, v1alpha1.ConditionCandidateVerified, metav1.ConditionFalse, v1alpha1.ReasonNoSmokeTestRequest); err != nil {
			return err
		}
		if len(m.Status.FailedVersions) == 0 || m.Status.FailedVersions[0].Version != "2" || m.Status.FailedVersions[0].Reason != v1alpha1.ReasonNoSmokeTestRequest {
			return fmt.Errorf("failedVersions %+v", m.Status.FailedVersions)
		}
		return candidateGone(md)
	})
	if img := image(getDeployment(t, md)); img != imageV1 {
		t.Errorf("production runs %s; version 1 must keep serving", img)
	}
}

// TestAliasBackToAServedVersionSkipsTheCandidate: moving the alias back to
// a version whose image rolled out completely before promotes it at once;
// no candidate, no smoke test.
func TestAliasBackToAServedVersionSkipsTheCandidate(t *testing.T) {
	srv := newScoringServer(t)
	md := serving(t, srv)
	moveTo(t, md, "2", imageV2)
	candidateUp(t, md, imageV2, "")
	eventually(t, "version 2 promoted", func() error {
		if img := image(getDeployment(t, md)); img != imageV2 {
			return fmt.Errorf("production runs %s", img)
		}
		return candidateGone(md)
	})
	completeRollout(t, md)
	eventually(t, "version 2 serves", func() error {
		if m := getMD(t, md); m.Status.Serving == nil || m.Status.Serving.Version != "2" {
			return fmt.Errorf("serving %+v", m.Status.Serving)
		}
		return nil
	})
	before := len(srv.requests())

	moveTo(t, md, "1", imageV1)
	eventually(t, "version 1 back in production without a candidate", func() error {
		if err := candidateGone(md); err != nil {
			t.Fatalf("a candidate of a version that served before: %v", err)
		}
		if img := image(getDeployment(t, md)); img != imageV1 {
			return fmt.Errorf("production runs %s", img)
		}
		return wantCondition(getMD(t, md), v1alpha1.ConditionCandidateVerified, metav1.ConditionTrue, v1alpha1.ReasonPreviouslyServed)
	})
	if n := len(srv.requests()); n != before {
		t.Errorf("%d smoke tests of an image that served before", n-before)
	}
}
