package controllers_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/mlflow-operator/mlflow-operator/api/v1alpha1"
)

// annotate sets one annotation, as kubectl annotate --overwrite does.
func annotate(t *testing.T, md *v1alpha1.ModelDeployment, key, value string) {
	t.Helper()
	patch := []byte(fmt.Sprintf(`{"metadata":{"annotations":{%q:%q}}}`, key, value))
	if err := k8s.Patch(context.Background(), md, client.RawPatch("application/merge-patch+json", patch)); err != nil {
		t.Fatal(err)
	}
}

// candidateRuns checks that the candidate Deployment exists and runs image.
func candidateRuns(md *v1alpha1.ModelDeployment, image string) error {
	d := &appsv1.Deployment{}
	if err := k8s.Get(context.Background(), client.ObjectKey{Namespace: md.Namespace, Name: md.Name + "-candidate"}, d); err != nil {
		return fmt.Errorf("candidate: %w", err)
	}
	if got := d.Spec.Template.Spec.Containers[0].Image; got != image {
		return fmt.Errorf("candidate runs %s", got)
	}
	return nil
}

// waitsForApproval checks that version waits with image: status says so,
// Ready is False with reason AwaitingApproval and neither Reconciling nor
// Stalled is there.
func waitsForApproval(t *testing.T, md *v1alpha1.ModelDeployment, version, image string) func() error {
	return func() error {
		m := getMD(t, md)
		w := m.Status.AwaitingApproval
		if w == nil || w.Version != version || w.Image != image || w.Since == nil || w.Verification != v1alpha1.ReasonVerified {
			return fmt.Errorf("awaitingApproval %+v", w)
		}
		if err := wantCondition(m, v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonAwaitingApproval); err != nil {
			return err
		}
		if c := condition(m, v1alpha1.ConditionReconciling); c != nil {
			return fmt.Errorf("Reconciling present while waiting for a person: %+v", c)
		}
		if c := condition(m, v1alpha1.ConditionStalled); c != nil {
			return fmt.Errorf("Stalled present while waiting for a person: %+v", c)
		}
		return wantCondition(m, v1alpha1.ConditionCandidateVerified, metav1.ConditionTrue, v1alpha1.ReasonVerified)
	}
}

// TestApprovalGate: with spec.rollout.approval Manual a verified version
// waits, its candidate up and production untouched, until the approve
// annotation names it; an approval of another version does nothing; the
// abort annotation rejects a waiting version; a later version waits anew.
func TestApprovalGate(t *testing.T) {
	srv := newScoringServer(t)
	// Version 1 reaches production without approval: nothing served before.
	md := serving(t, srv, func(md *v1alpha1.ModelDeployment) { md.Spec.Rollout.Approval = v1alpha1.ApprovalManual })
	moveTo(t, md, "2", imageV2)
	candidateUp(t, md, imageV2, "")
	eventually(t, "version 2 waits for approval", waitsForApproval(t, md, "2", imageV2))

	m := getMD(t, md)
	msg := condition(m, v1alpha1.ConditionReady).Message
	for _, want := range []string{"answered the smoke test", "version 1 keeps serving",
		"kubectl -n " + md.Namespace + " annotate modeldeployment iris serving.mlflow-operator.io/approve=2 --overwrite",
		"serving.mlflow-operator.io/abort=2"} {
		if !strings.Contains(msg, want) {
			t.Errorf("Ready's message lacks %q: %s", want, msg)
		}
	}
	// The version the reference means does not serve: kubectl wait
	// --for=condition=Ready keeps waiting (Ready is False), and so does
	// kstatus (Flux's health checks), until someone approves or aborts.
	obj, err := runtime.DefaultUnstructuredConverter.ToUnstructured(m)
	if err != nil {
		t.Fatal(err)
	}
	if res, err := status.Compute(&unstructured.Unstructured{Object: obj}); err != nil || res.Status != status.InProgressStatus {
		t.Errorf("kstatus %v (%v), want InProgress", res, err)
	}
	if ev := events(t, md); ev[v1alpha1.ReasonAwaitingApproval] != "Normal" {
		t.Errorf("events %v: no AwaitingApproval", ev)
	}

	held := func(image string) func() error {
		return func() error {
			if err := candidateRuns(md, image); err != nil {
				return err
			}
			return productionRuns(t, md, imageV1)()
		}
	}
	// Waiting is idle: a reconcile writes nothing (not even the time it
	// began to wait).
	touch(t, md)
	rv := getMD(t, md).ResourceVersion
	consistently(t, "version 2 held, its candidate up, nothing written", 2*time.Second, func() error {
		if err := held(imageV2)(); err != nil {
			return err
		}
		if got := getMD(t, md).ResourceVersion; got != rv {
			return fmt.Errorf("written while waiting: resource version %s -> %s", rv, got)
		}
		return nil
	})

	// An approval that names another version does nothing.
	annotate(t, md, v1alpha1.AnnotationApprove, "3")
	consistently(t, "an approval of version 3 ignored", 2*time.Second, func() error {
		if err := held(imageV2)(); err != nil {
			return err
		}
		if m := getMD(t, md); m.Status.AwaitingApproval == nil || m.Status.LastApproval != "" {
			return fmt.Errorf("awaitingApproval %+v lastApproval %q", m.Status.AwaitingApproval, m.Status.LastApproval)
		}
		return nil
	})

	annotate(t, md, v1alpha1.AnnotationApprove, "2")
	eventually(t, "version 2 promoted once approved", func() error {
		if err := productionRuns(t, md, imageV2)(); err != nil {
			return err
		}
		m := getMD(t, md)
		if m.Status.AwaitingApproval != nil || m.Status.LastApproval != "2" || m.Status.Promoting == nil || m.Status.Promoting.Version != "2" {
			return fmt.Errorf("awaitingApproval %+v lastApproval %q promoting %+v", m.Status.AwaitingApproval, m.Status.LastApproval, m.Status.Promoting)
		}
		return candidateGone(md)
	})
	if ev := events(t, md); ev[v1alpha1.ReasonApproved] != "Normal" || ev[v1alpha1.ReasonPromoted] != "Normal" {
		t.Errorf("events %v lack Approved and Promoted", ev)
	}
	if n := len(srv.requests()); n != 1 {
		t.Errorf("%d smoke tests of version 2, want 1: a waiting candidate is not tested again", n)
	}
	completeRollout(t, md)
	eventually(t, "version 2 serves", func() error {
		m := getMD(t, md)
		if m.Status.Serving == nil || m.Status.Serving.Version != "2" {
			return fmt.Errorf("serving %+v", m.Status.Serving)
		}
		return wantCondition(m, v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonSucceeded)
	})

	// Version 3 waits although the approval of version 2 is still on the
	// object; the abort annotation rejects it and production stays.

	moveTo(t, md, "3", imageV3)
	candidateUp(t, md, imageV3, "")
	eventually(t, "version 3 waits", waitsForApproval(t, md, "3", imageV3))
	consistently(t, "the approval of version 2 does not promote version 3", 2*time.Second, func() error {
		if err := candidateRuns(md, imageV3); err != nil {
			return err
		}
		return productionRuns(t, md, imageV2)()
	})
	annotate(t, md, v1alpha1.AnnotationAbort, "3")
	eventually(t, "version 3 aborted", func() error {
		m := getMD(t, md)
		if len(m.Status.FailedVersions) == 0 || m.Status.FailedVersions[0].Version != "3" || m.Status.FailedVersions[0].Reason != v1alpha1.ReasonAborted {
			return fmt.Errorf("failedVersions %+v", m.Status.FailedVersions)
		}
		if m.Status.AwaitingApproval != nil || m.Status.LastAbort != "3" {
			return fmt.Errorf("awaitingApproval %+v lastAbort %q", m.Status.AwaitingApproval, m.Status.LastAbort)
		}
		if err := wantCondition(m, v1alpha1.ConditionStalled, metav1.ConditionTrue, ""); err != nil {
			return err
		}
		return candidateGone(md)
	})
	m = getMD(t, md)
	if img := image(getDeployment(t, md)); img != imageV2 || m.Status.Serving.Version != "2" || m.Status.LastGood.Version != "2" {
		t.Errorf("production %s, serving %+v, lastGood %+v after an abort: want version 2 untouched", img, m.Status.Serving, m.Status.LastGood)
	}
	if ev := events(t, md); ev[v1alpha1.ReasonAborted] != "Warning" {
		t.Errorf("events %v: no Aborted warning", ev)
	}

	// A later version gets a gate of its own.
	imageV4 := imageV1[:len(imageV1)-1] + "4"
	moveTo(t, md, "4", imageV4)
	candidateUp(t, md, imageV4, "")
	eventually(t, "version 4 waits", waitsForApproval(t, md, "4", imageV4))
	if img := image(getDeployment(t, md)); img != imageV2 {
		t.Errorf("production runs %s while version 4 waits", img)
	}
}
