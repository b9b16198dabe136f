package controllers_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/mlflow-operator/mlflow-operator/api/v1alpha1"
	"github.com/mlflow-operator/mlflow-operator/test/harness/testenv"
)

// toBlueGreen moves a serving ModelDeployment to strategy BlueGreen with
// the given scale-down delay.
func toBlueGreen(t *testing.T, md *v1alpha1.ModelDeployment, delay time.Duration) {
	t.Helper()
	updateMD(t, md, func(m *v1alpha1.ModelDeployment) {
		m.Spec.Rollout.Strategy = v1alpha1.StrategyBlueGreen
		m.Spec.Rollout.BlueGreen = &v1alpha1.BlueGreenSpec{ScaleDownDelay: &metav1.Duration{Duration: delay}}
	})
}

// slotDeployment reads the Deployment of a BlueGreen slot ("" for the one
// named like the ModelDeployment); nil when it does not exist.
func slotDeployment(t *testing.T, md *v1alpha1.ModelDeployment, slot v1alpha1.Slot) *appsv1.Deployment {
	t.Helper()
	name := md.Name
	if slot != "" {
		name += "-" + string(slot)
	}
	d := &appsv1.Deployment{}
	if err := k8s.Get(context.Background(), client.ObjectKey{Namespace: md.Namespace, Name: name}, d); err != nil {
		if apierrors.IsNotFound(err) {
			return nil
		}
		t.Fatal(err)
	}
	return d
}

// previewUp waits for the preview set of image in slot, with replicas
// pods, then plays the deployment controller and the kubelet: the set is
// available and one Ready pod of it answers at 127.0.0.1.
func previewUp(t *testing.T, md *v1alpha1.ModelDeployment, slot v1alpha1.Slot, image string, replicas int32) {
	t.Helper()
	var d *appsv1.Deployment
	eventually(t, fmt.Sprintf("preview set of %s in %s", image, slot), func() error {
		if d = slotDeployment(t, md, slot); d == nil {
			return fmt.Errorf("no Deployment")
		}
		if got := d.Spec.Template.Spec.Containers[0].Image; got != image {
			return fmt.Errorf("it runs %s", got)
		}
		if got := ptr.Deref(d.Spec.Replicas, 1); got != replicas {
			return fmt.Errorf("%d replicas, want %d (as many as production)", got, replicas)
		}
		return nil
	})
	if got := d.Spec.Template.Labels[v1alpha1.LabelRole]; got != string(slot) {
		t.Fatalf("preview pods labelled role %q, want %q", got, slot)
	}
	svc := &corev1.Service{}
	if err := k8s.Get(context.Background(), client.ObjectKeyFromObject(md), svc); err != nil {
		t.Fatal(err)
	}
	if got := svc.Spec.Selector[v1alpha1.LabelRole]; got == string(slot) {
		t.Fatalf("the Service selects the preview set (role %q) before it was verified", got)
	}
	createPod(t, md, fmt.Sprintf("%s-%d", slot, time.Now().UnixNano()), d.Spec.Template, "")
	testenv.CompleteDeployment(t, k8s, client.ObjectKeyFromObject(d))
}

// switchedTo waits for status.activeSlot to name slot, then plays the
// deployment controller once more: the verified annotation and the
// production apply moved the Deployment's generation (a Deployment's
// generation counts annotation changes), which a real one observes at once.
func switchedTo(t *testing.T, md *v1alpha1.ModelDeployment, slot v1alpha1.Slot) {
	t.Helper()
	eventually(t, "status.activeSlot "+string(slot), func() error {
		if got := getMD(t, md).Status.ActiveSlot; got != slot {
			return fmt.Errorf("status.activeSlot %q", got)
		}
		return nil
	})
	testenv.CompleteDeployment(t, k8s, client.ObjectKeyFromObject(slotDeployment(t, md, slot)))
}

// activeIs checks that status, Service, PodDisruptionBudget and
// HorizontalPodAutoscaler all point at slot, and that version v serves.
func activeIs(t *testing.T, md *v1alpha1.ModelDeployment, slot v1alpha1.Slot, v string) func() error {
	return func() error {
		ctx := context.Background()
		m := getMD(t, md)
		if m.Status.ActiveSlot != slot {
			return fmt.Errorf("status.activeSlot %q", m.Status.ActiveSlot)
		}
		role, name := string(slot), md.Name+"-"+string(slot)
		if slot == "" {
			role, name = v1alpha1.RoleProduction, md.Name
		}
		if m.Status.Serving == nil || m.Status.Serving.Version != v || m.Status.Promoting != nil {
			// The slot's generation against what the test last reported
			// observed: a change after the test completed it waits for a
			// deployment controller envtest does not run.
			gens := "no Deployment"
			if d := slotDeployment(t, md, slot); d != nil {
				gens = fmt.Sprintf("generation %d, observed %d", d.Generation, d.Status.ObservedGeneration)
			}
			return fmt.Errorf("serving %+v promoting %+v; Deployment %s: %s; Ready: %+v", m.Status.Serving, m.Status.Promoting,
				name, gens, condition(m, v1alpha1.ConditionReady))
		}
		svc := &corev1.Service{}
		if err := k8s.Get(ctx, client.ObjectKeyFromObject(md), svc); err != nil {
			return err
		}
		if got := svc.Spec.Selector[v1alpha1.LabelRole]; got != role {
			return fmt.Errorf("Service selects role %q", got)
		}
		pdb := &policyv1.PodDisruptionBudget{}
		if err := k8s.Get(ctx, client.ObjectKeyFromObject(md), pdb); err != nil {
			return err
		}
		if got := pdb.Spec.Selector.MatchLabels[v1alpha1.LabelRole]; got != role {
			return fmt.Errorf("PodDisruptionBudget selects role %q", got)
		}
		hpa := &autoscalingv2.HorizontalPodAutoscaler{}
		if err := k8s.Get(ctx, client.ObjectKeyFromObject(md), hpa); err != nil {
			return err
		}
		if hpa.Spec.ScaleTargetRef.Name != name {
			return fmt.Errorf("HorizontalPodAutoscaler scales %s", hpa.Spec.ScaleTargetRef.Name)
		}
		return wantCondition(m, v1alpha1.ConditionReady, metav1.ConditionTrue, "")
	}
}

// TestBlueGreenSwitchesAndSwitchesBack: a ModelDeployment moved from
// RollingUpdate to BlueGreen starts version 2's whole set beside
// production, unexposed, smoke-tests it, and switches the Service, the
// PodDisruptionBudget and the autoscaler to it at once; the next version
// goes to the other slot, and moving the model back to version 2 within
// the scale-down delay is a switch back to its kept set: no new
// Deployment, no pod, no smoke test. The old set goes when the delay ends.
func TestBlueGreenSwitchesAndSwitchesBack(t *testing.T) {
	srv := newScoringServer(t)
	md := serving(t, srv)
	// HPA's choice: production runs 4 pods; the preview starts as many.
	setReplicas := func(slot v1alpha1.Slot, n int32) {
		d := slotDeployment(t, md, slot)
		d.Spec.Replicas = ptr.To(n)
		if err := k8s.Update(context.Background(), d); err != nil {
			t.Fatal(err)
		}
	}
	setReplicas("", 4)
	completeRollout(t, md)
	toBlueGreen(t, md, time.Hour)

	// Version 2: the preview starts in blue, unexposed until verified.
	moveTo(t, md, "2", imageV2)
	previewUp(t, md, v1alpha1.SlotBlue, imageV2, 4)
	switchedTo(t, md, v1alpha1.SlotBlue)
	eventually(t, "switched to blue", activeIs(t, md, v1alpha1.SlotBlue, "2"))
	if reqs := srv.requests(); len(reqs) != 1 {
		t.Errorf("scoring server received %q, want the one smoke test", reqs)
	}
	eventually(t, "the Deployment named like the ModelDeployment deleted (a stray now)", func() error {
		if slotDeployment(t, md, "") != nil {
			return fmt.Errorf("still there")
		}
		return candidateGone(md)
	})
	if got := ptr.Deref(slotDeployment(t, md, v1alpha1.SlotBlue).Spec.Replicas, 0); got != 4 {
		t.Errorf("blue has %d replicas after the switch, want the 4 it started with", got)
	}

	// Version 3 goes to green; blue (version 2) stays.
	moveTo(t, md, "3", imageV3)
	previewUp(t, md, v1alpha1.SlotGreen, imageV3, 4)
	switchedTo(t, md, v1alpha1.SlotGreen)
	eventually(t, "switched to green", activeIs(t, md, v1alpha1.SlotGreen, "3"))
	if blue := slotDeployment(t, md, v1alpha1.SlotBlue); blue == nil || image(blue) != imageV2 {
		t.Fatalf("blue should keep version 2's set for the scale-down delay: %+v", blue)
	}

	// Back to version 2: a switch to blue, nothing started.
	blueGen := slotDeployment(t, md, v1alpha1.SlotBlue).Generation
	moveTo(t, md, "2", imageV2)
	eventually(t, "switched back to blue", activeIs(t, md, v1alpha1.SlotBlue, "2"))
	if got := slotDeployment(t, md, v1alpha1.SlotBlue).Generation; got != blueGen {
		t.Errorf("blue's generation moved %d -> %d: the switch back changed its pods", blueGen, got)
	}
	if reqs := srv.requests(); len(reqs) != 2 {
		t.Errorf("scoring server received %d requests, want 2 (no smoke test for a version that served)", len(reqs))
	}
	m := getMD(t, md)
	if c := condition(m, v1alpha1.ConditionCandidateVerified); c == nil || c.Reason != string(v1alpha1.ReasonPreviouslyServed) {
		t.Errorf("CandidateVerified %+v, want reason PreviouslyServed", c)
	}

	// The delay ends: green (version 3) goes, blue serves on.
	updateMD(t, md, func(m *v1alpha1.ModelDeployment) {
		m.Spec.Rollout.BlueGreen.ScaleDownDelay = &metav1.Duration{}
	})
	eventually(t, "green scaled down", func() error {
		if slotDeployment(t, md, v1alpha1.SlotGreen) != nil {
			return fmt.Errorf("green still there")
		}
		return activeIs(t, md, v1alpha1.SlotBlue, "2")()
	})
}

// TestBlueGreenRollbackIsASwitch: a switched-to version whose set fails
// before the promotion completes (here its Deployment exceeds its progress
// deadline) is rolled back by switching the Service back to the last good
// version's set, kept beside it: no pod of that set is touched.
func TestBlueGreenRollbackIsASwitch(t *testing.T) {
	srv := newScoringServer(t)
	md := serving(t, srv)
	toBlueGreen(t, md, time.Hour)
	moveTo(t, md, "2", imageV2)
	previewUp(t, md, v1alpha1.SlotBlue, imageV2, 3)
	switchedTo(t, md, v1alpha1.SlotBlue)
	eventually(t, "version 2 serves from blue", activeIs(t, md, v1alpha1.SlotBlue, "2"))
	blueGen := slotDeployment(t, md, v1alpha1.SlotBlue).Generation

	moveTo(t, md, "3", imageV3)
	previewUp(t, md, v1alpha1.SlotGreen, imageV3, 3)
	eventually(t, "switched to green", func() error {
		if got := getMD(t, md).Status.ActiveSlot; got != v1alpha1.SlotGreen {
			return fmt.Errorf("status.activeSlot %q", got)
		}
		return nil
	})
	// Green, now serving, never completes: the deployment controller gives up.
	green := client.ObjectKeyFromObject(slotDeployment(t, md, v1alpha1.SlotGreen))
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		d := &appsv1.Deployment{}
		if err := k8s.Get(context.Background(), green, d); err != nil {
			return err
		}
		d.Status = appsv1.DeploymentStatus{ObservedGeneration: d.Generation, Replicas: 3, UpdatedReplicas: 3,
			Conditions: []appsv1.DeploymentCondition{{Type: appsv1.DeploymentProgressing, Status: corev1.ConditionFalse,
				Reason: "ProgressDeadlineExceeded", Message: "ReplicaSet has timed out progressing.",
				LastUpdateTime: metav1.Now(), LastTransitionTime: metav1.Now()}}}
		return k8s.Status().Update(context.Background(), d)
	})
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "rolled back by switching to blue", func() error {
		m := getMD(t, md)
		if err := wantCondition(m, v1alpha1.ConditionRolledBack, metav1.ConditionTrue, v1alpha1.ReasonProgressDeadline); err != nil {
			return err
		}
		if m.Status.ActiveSlot != v1alpha1.SlotBlue || m.Status.Serving == nil || m.Status.Serving.Version != "2" {
			return fmt.Errorf("activeSlot %q serving %+v", m.Status.ActiveSlot, m.Status.Serving)
		}
		svc := &corev1.Service{}
		if err := k8s.Get(context.Background(), client.ObjectKeyFromObject(md), svc); err != nil {
			return err
		}
		if got := svc.Spec.Selector[v1alpha1.LabelRole]; got != string(v1alpha1.SlotBlue) {
			return fmt.Errorf("Service selects role %q", got)
		}
		return nil
	})
	if blue := slotDeployment(t, md, v1alpha1.SlotBlue); blue.Generation != blueGen || image(blue) != imageV2 {
		t.Errorf("blue changed during the rollback: generation %d -> %d, image %s", blueGen, blue.Generation, image(blue))
	}
	eventually(t, "the failed set deleted", func() error {
		if slotDeployment(t, md, v1alpha1.SlotGreen) != nil {
			return fmt.Errorf("green still there")
		}
		return nil
	})
}
