package controllers_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/mlflow-operator/mlflow-operator/api/v1alpha1"
	"github.com/mlflow-operator/mlflow-operator/internal/failure"
	"github.com/mlflow-operator/mlflow-operator/internal/resolver"
	"github.com/mlflow-operator/mlflow-operator/test/harness/fixtures"
	"github.com/mlflow-operator/mlflow-operator/test/harness/testenv"
)

const (
	imageV1 = "registry.example.com/models/iris@sha256:1111111111111111111111111111111111111111111111111111111111111111"
	imageV2 = "registry.example.com/models/iris@sha256:2222222222222222222222222222222222222222222222222222222222222222"
	imageV3 = "registry.example.com/models/iris@sha256:3333333333333333333333333333333333333333333333333333333333333333"
)

// setup creates a ModelDeployment whose reference resolves to version 1 with
// image imageV1, and waits for its Deployment.
func setup(t *testing.T, mutate ...func(*v1alpha1.ModelDeployment)) *v1alpha1.ModelDeployment {
	t.Helper()
	md := fixtures.Valid(namespace(t), "iris")
	// These tests are about the production objects: the candidate only has
	// to become Ready (rollout_test.go tests the smoke test).
	md.Spec.Rollout.SmokeTest.Enabled = ptr.To(false)
	for _, m := range mutate {
		m(md)
	}
	fake.Set(client.ObjectKeyFromObject(md), answer{
		Version: resolver.ModelVersion{Version: "1", RunID: "run1", Source: "models:/m-1"}, Image: imageV1,
	})
	if err := k8s.Create(context.Background(), md); err != nil {
		t.Fatal(err)
	}
	passCandidate(t, md, imageV1)
	// Created, and given its initial replica count (a second write, which
	// bumps the generation): tests that play the deployment controller
	// start after both.
	eventually(t, "Deployment created with its initial replicas", func() error {
		d := &appsv1.Deployment{}
		if err := k8s.Get(context.Background(), client.ObjectKeyFromObject(md), d); err != nil {
			return err
		}
		if ptr.Deref(d.Spec.Replicas, 0) != md.Spec.MinReplicas() {
			return fmt.Errorf("replicas %d", ptr.Deref(d.Spec.Replicas, 0))
		}
		return nil
	})
	return md
}

func getMD(t *testing.T, md *v1alpha1.ModelDeployment) *v1alpha1.ModelDeployment {
	t.Helper()
	got := &v1alpha1.ModelDeployment{}
	if err := k8s.Get(context.Background(), client.ObjectKeyFromObject(md), got); err != nil {
		t.Fatal(err)
	}
	return got
}

func getDeployment(t *testing.T, md *v1alpha1.ModelDeployment) *appsv1.Deployment {
	t.Helper()
	d := &appsv1.Deployment{}
	if err := k8s.Get(context.Background(), client.ObjectKeyFromObject(md), d); err != nil {
		t.Fatal(err)
	}
	return d
}

func image(d *appsv1.Deployment) string { return d.Spec.Template.Spec.Containers[0].Image }

// completeRollout writes the Deployment status the deployment controller
// would write once every replica of the current template is available
// (envtest runs no controllers).
func completeRollout(t *testing.T, md *v1alpha1.ModelDeployment) {
	t.Helper()
	setDeploymentStatus(t, md, func(d *appsv1.Deployment) {
		n := ptr.Deref(d.Spec.Replicas, 1)
		d.Status = appsv1.DeploymentStatus{
			ObservedGeneration: d.Generation, Replicas: n, UpdatedReplicas: n, ReadyReplicas: n, AvailableReplicas: n,
			Conditions: []appsv1.DeploymentCondition{
				{Type: appsv1.DeploymentAvailable, Status: corev1.ConditionTrue, Reason: "MinimumReplicasAvailable", LastUpdateTime: metav1.Now(), LastTransitionTime: metav1.Now()},
				{Type: appsv1.DeploymentProgressing, Status: corev1.ConditionTrue, Reason: "NewReplicaSetAvailable", LastUpdateTime: metav1.Now(), LastTransitionTime: metav1.Now()},
			},
		}
	})
}

func passCandidate(t *testing.T, md *v1alpha1.ModelDeployment, image string) {
	t.Helper()
	testenv.PassCandidate(t, k8s, md, image)
}

// setDeploymentStatus writes a Deployment status as the deployment
// controller would, for the current generation, retrying on conflicts with
// the operator's own writes.
func setDeploymentStatus(t *testing.T, md *v1alpha1.ModelDeployment, set func(*appsv1.Deployment)) {
	t.Helper()
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		d := getDeployment(t, md)
		set(d)
		d.Status.ObservedGeneration = d.Generation
		return k8s.Status().Update(context.Background(), d)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func condition(md *v1alpha1.ModelDeployment, t string) *metav1.Condition {
	return meta.FindStatusCondition(md.Status.Conditions, t)
}

// wantCondition checks a condition's status and reason.
func wantCondition(md *v1alpha1.ModelDeployment, t string, status metav1.ConditionStatus, reason v1alpha1.Reason) error {
	c := condition(md, t)
	if c == nil {
		return fmt.Errorf("no %s condition in %+v", t, md.Status.Conditions)
	}
	if c.Status != status || (reason != "" && c.Reason != string(reason)) {
		return fmt.Errorf("%s is %s/%s (%s), want %s/%s", t, c.Status, c.Reason, c.Message, status, reason)
	}
	return nil
}

// touch changes an annotation, which makes the operator reconcile now.
func touch(t *testing.T, md *v1alpha1.ModelDeployment) {
	t.Helper()
	patch := []byte(fmt.Sprintf(`{"metadata":{"annotations":{"test/touch":"%d"}}}`, time.Now().UnixNano()))
	if err := k8s.Patch(context.Background(), md, client.RawPatch("application/merge-patch+json", patch)); err != nil {
		t.Fatal(err)
	}
}

func TestOwnedObjectsCreated(t *testing.T) {
	ctx := context.Background()
	md := setup(t)
	key := client.ObjectKeyFromObject(md)
	md = getMD(t, md)

	owned := map[string]client.Object{
		"Deployment":              &appsv1.Deployment{},
		"Service":                 &corev1.Service{},
		"HorizontalPodAutoscaler": &autoscalingv2.HorizontalPodAutoscaler{},
		"PodDisruptionBudget":     &policyv1.PodDisruptionBudget{},
		"NetworkPolicy":           &networkingv1.NetworkPolicy{},
	}
	for kind, obj := range owned {
		eventually(t, kind+" created", func() error { return k8s.Get(ctx, key, obj) })
		if !metav1.IsControlledBy(obj, md) {
			t.Errorf("%s is not controlled by the ModelDeployment: %+v", kind, obj.GetOwnerReferences())
		}
		ref := metav1.GetControllerOf(obj)
		if ref == nil || !ptr.Deref(ref.BlockOwnerDeletion, false) {
			t.Errorf("%s owner reference does not block owner deletion (foreground deletion would not wait for it)", kind)
		}
	}

	d := owned["Deployment"].(*appsv1.Deployment)
	if image(d) != imageV1 {
		t.Errorf("image %s, want %s", image(d), imageV1)
	}
	if got := ptr.Deref(d.Spec.Replicas, 0); got != 3 {
		t.Errorf("replicas %d, want the 3 of minReplicas", got)
	}
	if d.Spec.Template.Labels[v1alpha1.LabelModelVersion] != "1" {
		t.Errorf("pod labels %v lack model version 1", d.Spec.Template.Labels)
	}
	svc := owned["Service"].(*corev1.Service)
	if svc.Spec.Ports[0].Port != 8080 || svc.Spec.Selector[v1alpha1.LabelRole] != v1alpha1.RoleProduction {
		t.Errorf("service %+v", svc.Spec)
	}

	eventually(t, "status before the rollout completes", func() error {
		md = getMD(t, md)
		if md.Status.Target == nil || md.Status.Target.Version != "1" || md.Status.Target.Image != imageV1 || md.Status.Target.RunID != "run1" {
			return fmt.Errorf("target %+v", md.Status.Target)
		}
		for _, c := range []struct {
			t      string
			s      metav1.ConditionStatus
			reason v1alpha1.Reason
		}{
			{v1alpha1.ConditionModelResolved, metav1.ConditionTrue, v1alpha1.ReasonResolved},
			{v1alpha1.ConditionImageReady, metav1.ConditionTrue, v1alpha1.ReasonPushed},
			{v1alpha1.ConditionRolledOut, metav1.ConditionFalse, v1alpha1.ReasonRollingOut},
			{v1alpha1.ConditionReady, metav1.ConditionUnknown, v1alpha1.ReasonRollingOut},
			{v1alpha1.ConditionReconciling, metav1.ConditionTrue, v1alpha1.ReasonRollingOut},
		} {
			if err := wantCondition(md, c.t, c.s, c.reason); err != nil {
				return err
			}
		}
		if condition(md, v1alpha1.ConditionStalled) != nil {
			return fmt.Errorf("Stalled present while reconciling")
		}
		if md.Status.Serving != nil {
			return fmt.Errorf("serving %+v before any replica is available", md.Status.Serving)
		}
		if md.Status.Endpoint != "http://iris."+md.Namespace+".svc:8080" {
			return fmt.Errorf("endpoint %q", md.Status.Endpoint)
		}
		if md.Status.LastPolled == nil || md.Status.ObservedGeneration != md.Generation {
			return fmt.Errorf("lastPolled %v observedGeneration %d", md.Status.LastPolled, md.Status.ObservedGeneration)
		}
		return nil
	})

	// The deployment controller reports every replica available.
	completeRollout(t, md)
	eventually(t, "Ready from the Deployment's state", func() error {
		md = getMD(t, md)
		if err := wantCondition(md, v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonSucceeded); err != nil {
			return err
		}
		if err := wantCondition(md, v1alpha1.ConditionRolledOut, metav1.ConditionTrue, v1alpha1.ReasonRolloutComplete); err != nil {
			return err
		}
		if condition(md, v1alpha1.ConditionReconciling) != nil || condition(md, v1alpha1.ConditionStalled) != nil {
			return fmt.Errorf("Reconciling or Stalled still present: %+v", md.Status.Conditions)
		}
		if md.Status.Serving == nil || md.Status.Serving.Version != "1" || md.Status.Serving.Image != imageV1 || md.Status.Serving.Since == nil {
			return fmt.Errorf("serving %+v", md.Status.Serving)
		}
		if md.Status.LastGood == nil || md.Status.LastGood.Version != "1" {
			return fmt.Errorf("lastGood %+v", md.Status.LastGood)
		}
		if md.Status.ReadyReplicas != 3 || md.Status.Replicas != 3 {
			return fmt.Errorf("replicas %d ready %d", md.Status.Replicas, md.Status.ReadyReplicas)
		}
		return nil
	})

	eventually(t, "events recorded", func() error {
		list := &eventsv1.EventList{}
		if err := k8s.List(ctx, list, client.InNamespace(md.Namespace)); err != nil {
			return err
		}
		reasons := map[v1alpha1.Reason]bool{}
		for _, e := range list.Items {
			if e.Regarding.Name == md.Name {
				reasons[v1alpha1.Reason(e.Reason)] = true
			}
		}
		for _, r := range []v1alpha1.Reason{v1alpha1.ReasonResolved, v1alpha1.ReasonPushed, v1alpha1.ReasonRolloutComplete} {
			if !reasons[r] {
				return fmt.Errorf("no %s event among %v", r, reasons)
			}
		}
		return nil
	})
}

func TestDriftIsCorrected(t *testing.T) {
	ctx := context.Background()
	md := setup(t)
	key := client.ObjectKeyFromObject(md)

	// Someone edits the image, adds their own annotation, and deletes the
	// Service and changes the autoscaler.
	d := getDeployment(t, md)
	d.Spec.Template.Spec.Containers[0].Image = "evil.example.com/other:latest"
	if d.Annotations == nil {
		d.Annotations = map[string]string{}
	}
	d.Annotations["team.example.com/owner"] = "ml-platform"
	if err := k8s.Update(ctx, d); err != nil {
		t.Fatal(err)
	}
	if err := k8s.Delete(ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: md.Name, Namespace: md.Namespace}}); err != nil {
		t.Fatal(err)
	}
	hpa := &autoscalingv2.HorizontalPodAutoscaler{}
	eventually(t, "HPA", func() error { return k8s.Get(ctx, key, hpa) })
	hpa.Spec.MaxReplicas = 50
	if err := k8s.Update(ctx, hpa); err != nil {
		t.Fatal(err)
	}

	eventually(t, "image restored", func() error {
		d := getDeployment(t, md)
		if image(d) != imageV1 {
			return fmt.Errorf("image %s", image(d))
		}
		if d.Annotations["team.example.com/owner"] != "ml-platform" {
			return fmt.Errorf("a field the operator does not own was removed: %v", d.Annotations)
		}
		return nil
	})
	eventually(t, "Service recreated", func() error { return k8s.Get(ctx, key, &corev1.Service{}) })
	eventually(t, "HPA restored", func() error {
		h := &autoscalingv2.HorizontalPodAutoscaler{}
		if err := k8s.Get(ctx, key, h); err != nil {
			return err
		}
		if h.Spec.MaxReplicas != 10 {
			return fmt.Errorf("maxReplicas %d", h.Spec.MaxReplicas)
		}
		return nil
	})
}

func TestAutoscalerOwnsReplicas(t *testing.T) {
	ctx := context.Background()
	md := setup(t)
	// The HPA controller scales through the scale subresource.
	d := getDeployment(t, md)
	scale := &autoscalingv1.Scale{Spec: autoscalingv1.ScaleSpec{Replicas: 7}}
	if err := k8s.SubResource("scale").Update(ctx, d, client.WithSubResourceBody(scale)); err != nil {
		t.Fatal(err)
	}
	// A spec change makes the operator apply the Deployment again.
	updateMD(t, md, func(m *v1alpha1.ModelDeployment) {
		m.Spec.Serving.Env = []corev1.EnvVar{{Name: "GUNICORN_CMD_ARGS", Value: "--timeout 60"}}
	})
	eventually(t, "env applied", func() error {
		if env := getDeployment(t, md).Spec.Template.Spec.Containers[0].Env; len(env) != 1 {
			return fmt.Errorf("env %v", env)
		}
		return nil
	})
	if got := ptr.Deref(getDeployment(t, md).Spec.Replicas, 0); got != 7 {
		t.Errorf("replicas %d after an apply, want the autoscaler's 7", got)
	}
}

func TestSpecChangesApplied(t *testing.T) {
	ctx := context.Background()
	md := setup(t)
	updateMD(t, md, func(m *v1alpha1.ModelDeployment) {
		m.Spec.Serving.Port = 9090
		m.Spec.Scaling.MinReplicas = ptr.To(int32(2))
		m.Spec.Scaling.MaxReplicas = ptr.To(int32(4))
		m.Spec.NetworkPolicy.Enabled = ptr.To(false)
	})
	key := client.ObjectKeyFromObject(md)
	eventually(t, "port, autoscaler and budget follow the spec", func() error {
		svc := &corev1.Service{}
		if err := k8s.Get(ctx, key, svc); err != nil {
			return err
		}
		if svc.Spec.Ports[0].Port != 9090 {
			return fmt.Errorf("service port %d", svc.Spec.Ports[0].Port)
		}
		if p := getDeployment(t, md).Spec.Template.Spec.Containers[0].Ports[0].ContainerPort; p != 9090 {
			return fmt.Errorf("container port %d", p)
		}
		h := &autoscalingv2.HorizontalPodAutoscaler{}
		if err := k8s.Get(ctx, key, h); err != nil {
			return err
		}
		if ptr.Deref(h.Spec.MinReplicas, 0) != 2 || h.Spec.MaxReplicas != 4 {
			return fmt.Errorf("hpa %d..%d", ptr.Deref(h.Spec.MinReplicas, 0), h.Spec.MaxReplicas)
		}
		pdb := &policyv1.PodDisruptionBudget{}
		if err := k8s.Get(ctx, key, pdb); err != nil {
			return err
		}
		if pdb.Spec.MinAvailable != nil || pdb.Spec.MaxUnavailable == nil || pdb.Spec.MaxUnavailable.IntValue() != 1 {
			return fmt.Errorf("pdb %+v blocks evictions at 2 replicas", pdb.Spec)
		}
		return nil
	})
	eventually(t, "NetworkPolicy removed when disabled", func() error {
		err := k8s.Get(ctx, key, &networkingv1.NetworkPolicy{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("still there: %v", err)
	})
}

func TestSuspend(t *testing.T) {
	ctx := context.Background()
	md := setup(t)
	updateMD(t, md, func(m *v1alpha1.ModelDeployment) {
		m.Spec.Suspend = true
	})
	// Let the operator see the suspension before changing anything else.
	time.Sleep(time.Second)
	updateMD(t, md, func(m *v1alpha1.ModelDeployment) {
		m.Spec.Serving.Port = 9191
	})
	d := getDeployment(t, md)
	d.Spec.Template.Spec.Containers[0].Image = "someone.example.com/else:1"
	if err := k8s.Update(ctx, d); err != nil {
		t.Fatal(err)
	}
	consistently(t, "suspended: nothing applied", 3*time.Second, func() error {
		d := getDeployment(t, md)
		if image(d) != "someone.example.com/else:1" {
			return fmt.Errorf("drift corrected while suspended: %s", image(d))
		}
		if p := d.Spec.Template.Spec.Containers[0].Ports[0].ContainerPort; p != 8080 {
			return fmt.Errorf("spec change applied while suspended: port %d", p)
		}
		return nil
	})
	got := getMD(t, md)
	if got.Status.ObservedGeneration == got.Generation {
		t.Errorf("observedGeneration %d claims a suspended generation was handled", got.Status.ObservedGeneration)
	}
	// The summary says it is suspended (keeping the status last observed).
	if c := condition(got, v1alpha1.ConditionReady); c == nil || c.Reason != string(v1alpha1.ReasonSuspended) || !strings.Contains(c.Message, "suspended") {
		t.Errorf("Ready does not say it is suspended: %+v", c)
	}
	if meta.FindStatusCondition(got.Status.Conditions, v1alpha1.ConditionReconciling) != nil {
		t.Error("Reconciling while suspended: no work is under way")
	}

	updateMD(t, md, func(m *v1alpha1.ModelDeployment) {
		m.Spec.Suspend = false
	})
	eventually(t, "resumed: spec applied and drift corrected", func() error {
		d := getDeployment(t, md)
		if image(d) != imageV1 || d.Spec.Template.Spec.Containers[0].Ports[0].ContainerPort != 9191 {
			return fmt.Errorf("image %s port %d", image(d), d.Spec.Template.Spec.Containers[0].Ports[0].ContainerPort)
		}
		if c := condition(getMD(t, md), v1alpha1.ConditionReady); c == nil || c.Reason == string(v1alpha1.ReasonSuspended) {
			return fmt.Errorf("Ready still says suspended: %+v", c)
		}
		return nil
	})
}

func TestNewVersionReplacesServingOnlyWhenRolledOut(t *testing.T) {
	md := setup(t)
	completeRollout(t, md)
	eventually(t, "v1 ready", func() error {
		return wantCondition(getMD(t, md), v1alpha1.ConditionReady, metav1.ConditionTrue, "")
	})

	// The alias moves to version 2, whose image is still being built.
	key := client.ObjectKeyFromObject(md)
	fake.Set(key, answer{Version: resolver.ModelVersion{Version: "2", RunID: "run2"}})
	touch(t, md)
	eventually(t, "building v2 while v1 serves", func() error {
		m := getMD(t, md)
		if m.Status.Target == nil || m.Status.Target.Version != "2" {
			return fmt.Errorf("target %+v", m.Status.Target)
		}
		if err := wantCondition(m, v1alpha1.ConditionImageReady, metav1.ConditionFalse, v1alpha1.ReasonBuilding); err != nil {
			return err
		}
		return wantCondition(m, v1alpha1.ConditionReady, metav1.ConditionUnknown, v1alpha1.ReasonBuilding)
	})
	if got := image(getDeployment(t, md)); got != imageV1 {
		t.Fatalf("deployment switched to %s before v2's image existed", got)
	}

	fake.Set(key, answer{Version: resolver.ModelVersion{Version: "2", RunID: "run2"}, Image: imageV2})
	// v2 is verified on a candidate before production sees it.
	if got := image(getDeployment(t, md)); got != imageV1 {
		t.Fatalf("production switched to %s before v2's candidate was Ready", got)
	}
	passCandidate(t, md, imageV2)
	eventually(t, "v2 applied", func() error {
		if got := image(getDeployment(t, md)); got != imageV2 {
			return fmt.Errorf("image %s", got)
		}
		return nil
	})
	m := getMD(t, md)
	if m.Status.Serving == nil || m.Status.Serving.Version != "1" {
		t.Errorf("serving %+v changed before v2 rolled out", m.Status.Serving)
	}
	completeRollout(t, md)
	eventually(t, "v2 serves", func() error {
		m := getMD(t, md)
		if m.Status.Serving == nil || m.Status.Serving.Version != "2" || m.Status.Serving.Image != imageV2 || m.Status.Serving.RunID != "run2" {
			return fmt.Errorf("serving %+v", m.Status.Serving)
		}
		return wantCondition(m, v1alpha1.ConditionReady, metav1.ConditionTrue, "")
	})
}

func TestRegistryFailureKeepsServing(t *testing.T) {
	md := setup(t)
	completeRollout(t, md)
	eventually(t, "v1 ready", func() error {
		return wantCondition(getMD(t, md), v1alpha1.ConditionReady, metav1.ConditionTrue, "")
	})
	key := client.ObjectKeyFromObject(md)
	fake.Set(key, answer{Err: failure.New(failure.Unreachable, failure.MLflow, "GET registered-models/alias", errors.New("dial tcp 127.0.0.1:5000: connection refused"))})
	touch(t, md)
	eventually(t, "condition tells MLflow is unreachable", func() error {
		m := getMD(t, md)
		if err := wantCondition(m, v1alpha1.ConditionModelResolved, metav1.ConditionFalse, v1alpha1.ReasonMLflowUnreachable); err != nil {
			return err
		}
		if !strings.Contains(condition(m, v1alpha1.ConditionModelResolved).Message, "connection refused") {
			return fmt.Errorf("message %q", condition(m, v1alpha1.ConditionModelResolved).Message)
		}
		if err := wantCondition(m, v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonMLflowUnreachable); err != nil {
			return err
		}
		return wantCondition(m, v1alpha1.ConditionReconciling, metav1.ConditionTrue, v1alpha1.ReasonMLflowUnreachable)
	})
	m := getMD(t, md)
	if m.Status.Serving == nil || m.Status.Serving.Version != "1" {
		t.Errorf("serving %+v lost while MLflow is down", m.Status.Serving)
	}
	if got := image(getDeployment(t, md)); got != imageV1 {
		t.Errorf("deployment image %s changed while MLflow is down", got)
	}

	fake.Set(key, answer{Version: resolver.ModelVersion{Version: "1", RunID: "run1"}, Image: imageV1})
	touch(t, md)
	eventually(t, "recovers", func() error {
		return wantCondition(getMD(t, md), v1alpha1.ConditionReady, metav1.ConditionTrue, "")
	})
}

func TestProgressDeadlineStalls(t *testing.T) {
	md := setup(t)
	setDeploymentStatus(t, md, func(d *appsv1.Deployment) {
		d.Status = appsv1.DeploymentStatus{
			Replicas: 1, UpdatedReplicas: 1,
			Conditions: []appsv1.DeploymentCondition{{
				Type: appsv1.DeploymentProgressing, Status: corev1.ConditionFalse, Reason: "ProgressDeadlineExceeded",
				Message: `ReplicaSet "iris-abc" has timed out progressing.`, LastUpdateTime: metav1.Now(), LastTransitionTime: metav1.Now(),
			}},
		}
	})
	eventually(t, "stalled", func() error {
		m := getMD(t, md)
		if err := wantCondition(m, v1alpha1.ConditionRolledOut, metav1.ConditionFalse, v1alpha1.ReasonProgressDeadline); err != nil {
			return err
		}
		// The first version has nothing to roll back to: it is marked failed
		// (ProgressDeadlineExceeded), then held (VersionFailed).
		if err := wantCondition(m, v1alpha1.ConditionStalled, metav1.ConditionTrue, ""); err != nil {
			return err
		}
		if len(m.Status.FailedVersions) != 1 || m.Status.FailedVersions[0].Version != "1" || m.Status.FailedVersions[0].Reason != v1alpha1.ReasonProgressDeadline {
			return fmt.Errorf("failedVersions %+v", m.Status.FailedVersions)
		}
		if condition(m, v1alpha1.ConditionReconciling) != nil {
			return fmt.Errorf("Reconciling present with Stalled")
		}
		return wantCondition(m, v1alpha1.ConditionReady, metav1.ConditionFalse, "")
	})
}

func TestUnknownModelNothingDeployed(t *testing.T) {
	ctx := context.Background()
	md := fixtures.Valid(namespace(t), "ghost")
	md.Spec.Model.Name = "ghost"
	if err := k8s.Create(ctx, md); err != nil {
		t.Fatal(err)
	}
	eventually(t, "ModelNotFound reported", func() error {
		m := getMD(t, md)
		if err := wantCondition(m, v1alpha1.ConditionModelResolved, metav1.ConditionFalse, "ModelNotFound"); err != nil {
			return err
		}
		return wantCondition(m, v1alpha1.ConditionReady, metav1.ConditionFalse, "ModelNotFound")
	})
	if err := k8s.Get(ctx, client.ObjectKeyFromObject(md), &appsv1.Deployment{}); !apierrors.IsNotFound(err) {
		t.Errorf("a Deployment exists for a model that resolves to nothing: %v", err)
	}
}

// updateMD changes a ModelDeployment's spec, retrying on conflicts with the
// operator's status writes.
func updateMD(t *testing.T, md *v1alpha1.ModelDeployment, change func(*v1alpha1.ModelDeployment)) {
	t.Helper()
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		m := getMD(t, md)
		change(m)
		return k8s.Update(context.Background(), m)
	})
	if err != nil {
		t.Fatal(err)
	}
}
