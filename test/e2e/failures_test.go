package e2e

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/mlflow-operator/mlflow-operator/api/v1alpha1"
	"github.com/mlflow-operator/mlflow-operator/test/harness/cluster"
	"github.com/mlflow-operator/mlflow-operator/test/harness/mlflowserver"
	"github.com/mlflow-operator/mlflow-operator/test/harness/testenv"
)

// TestCrashingVersionRollsBack: version 2 passes its smoke test, is
// promoted, and its production pods crash. On the real node, version 2 is a
// model whose server exits as soon as it loads in a production pod (its
// role comes from the pod's label through the downward API), so its
// candidate passes; on kwok nodes, kwok's crash stage fails the production
// pods that a label in spec.serving.podLabels names. The operator rolls
// back to version 1 on its own, which keeps serving and answering, and on
// the real node a client through the Service sees no failed request: the
// crashing pods never become ready.
func TestCrashingVersionRollsBack(t *testing.T) {
	ctx := context.Background()
	real := st.Node == cluster.RealNode
	res := register(t, mlflowserver.Op{"op": "register", "model": "crashy", "seed": 1, "alias": "champion"})
	v1, _ := strconv.Atoi(res[0].Version)
	crashVersion := strconv.Itoa(v1 + 1)
	md := newMD(t, testenv.Namespace(t, k8s, "e2e"), "crashy", v1alpha1.ModelReference{Name: "crashy", Alias: "champion"},
		func(md *v1alpha1.ModelDeployment) {
			if real {
				md.Spec.Serving.Env = []corev1.EnvVar{{Name: "POD_ROLE", ValueFrom: &corev1.EnvVarSource{
					FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.labels['" + v1alpha1.LabelRole + "']"}}}}
			} else {
				md.Spec.Serving.PodLabels = map[string]string{cluster.CrashVersionLabel: crashVersion}
			}
		})
	waitReady(t, md, res[0].Version, "v1 Ready")
	good := md.Status.Serving.Image

	var serviceClient *load
	if real {
		serviceClient = startLoad(t, md)
	}
	op := mlflowserver.Op{"op": "register", "model": "crashy", "seed": 2, "alias": "champion"}
	if real {
		op["kind"], op["die_after"] = "dying", 0
	}
	bad := register(t, op)
	if bad[0].Version != crashVersion {
		t.Fatalf("registered version %s, the crash label names %s", bad[0].Version, crashVersion)
	}
	testenv.Eventually(t, 6*time.Minute, "rolled back to v1", func() error {
		m, err := getMD(md)
		if err != nil {
			return err
		}
		rb := meta.FindStatusCondition(m.Status.Conditions, v1alpha1.ConditionRolledBack)
		if rb == nil || rb.Status != metav1.ConditionTrue {
			return fmt.Errorf("RolledBack %+v", rb)
		}
		if len(m.Status.FailedVersions) == 0 || m.Status.FailedVersions[0].Version != crashVersion || m.Status.FailedVersions[0].Reason != "PodsFailing" {
			return fmt.Errorf("failedVersions %+v", m.Status.FailedVersions)
		}
		if m.Status.Serving == nil || m.Status.Serving.Image != good {
			return fmt.Errorf("serving %+v", m.Status.Serving)
		}
		return nil
	})
	if serviceClient != nil {
		time.Sleep(5 * time.Second)
		serviceClient.finish(t, "promotion of a crashing version and its rollback")
	}
	// It was production that crashed: the candidate passed and was promoted.
	if n := eventCount(t, md.Namespace, md.Name, "Promoted"); n != 2 {
		t.Errorf("%d Promoted events, want 2 (v1, then v2 before it crashed)", n)
	}
	// The Deployment is back on v1 with all its replicas, and they answer.
	testenv.Eventually(t, 3*time.Minute, "3 pods of v1 running", func() error {
		d := &appsv1.Deployment{}
		if err := k8s.Get(ctx, client.ObjectKeyFromObject(md), d); err != nil {
			return err
		}
		if img := d.Spec.Template.Spec.Containers[0].Image; img != good {
			return fmt.Errorf("template image %s", img)
		}
		if d.Status.AvailableReplicas < 3 || d.Status.UpdatedReplicas != d.Status.Replicas {
			return fmt.Errorf("status %+v", d.Status)
		}
		if pods := productionPods(t, md); len(pods[good]) < 3 || len(pods) != 1 {
			return fmt.Errorf("running pods by image: %d images, %d of v1", len(pods), len(pods[good]))
		}
		return nil
	})
	m, _ := getMD(md)
	if c := meta.FindStatusCondition(m.Status.Conditions, v1alpha1.ConditionStalled); c == nil || c.Status != metav1.ConditionTrue {
		t.Errorf("Stalled %+v, want True while a failed version is the target", c)
	}
	pods := productionPods(t, md)[good]
	got, err := predict(pods[0].Status.PodIP)
	if err != nil {
		t.Fatal(err)
	}
	if want := jsonInts(res[0].Predictions); got != want {
		t.Errorf("after the rollback, predictions %s, want version 1's %s", got, want)
	}
}

// TestOperatorKilledMidBuildAndMidRollout kills the operator binary with
// SIGKILL twice: while it is pushing version 1's model layer (seen in the
// registry's upload area), and while version 2 rolls out (status.promoting
// set, the Deployment not yet done). A new operator process finishes both:
// the same final state, one image per version, one promotion and one
// history entry per version.
func TestOperatorKilledMidBuildAndMidRollout(t *testing.T) {
	ctx := context.Background()
	// 150 MiB of incompressible data: the push takes long enough to be
	// caught in the middle.
	res := register(t, mlflowserver.Op{"op": "register", "model": "sturdy", "kind": "sized", "size_bytes": 150 << 20, "seed": 1, "alias": "champion"})
	repo := "models/sturdy"
	md := newMD(t, testenv.Namespace(t, k8s, "e2e"), "sturdy", v1alpha1.ModelReference{Name: "sturdy", Alias: "champion"})
	t.Cleanup(func() {
		if st.Operator.Exited() {
			if err := st.StartOperator(); err != nil {
				t.Errorf("restart the operator for the next tests: %v", err)
			}
		}
	})

	testenv.Eventually(t, 3*time.Minute, "the model layer being pushed", func() error {
		if n := reg.UploadingBytes(repo); n < 1<<20 {
			return fmt.Errorf("%d bytes uploading", n)
		}
		return nil
	})
	st.KillOperator()
	t.Logf("killed the operator with %d MiB of the layer pushed", reg.UploadingBytes(repo)>>20)
	if n := len(reg.Manifests(repo)); n != 0 {
		t.Fatalf("%d manifests pushed before the kill, want 0 (the build was not in the middle)", n)
	}
	if err := st.StartOperator(); err != nil {
		t.Fatal(err)
	}
	waitReady(t, md, res[0].Version, "v1 Ready after the restart")
	v1Image := md.Status.Serving.Image

	// Version 2, small; killed while its rolling update runs.
	moved := register(t, mlflowserver.Op{"op": "register", "model": "sturdy", "kind": "sized", "size_bytes": 1 << 20, "seed": 2, "alias": "champion"})
	testenv.Eventually(t, 6*time.Minute, "v2 promoted, rolling out", func() error {
		m, err := getMD(md)
		if err != nil {
			return err
		}
		if m.Status.Promoting == nil || m.Status.Promoting.Version != moved[0].Version {
			return fmt.Errorf("promoting %+v", m.Status.Promoting)
		}
		d := &appsv1.Deployment{}
		if err := k8s.Get(ctx, client.ObjectKeyFromObject(md), d); err != nil {
			return err
		}
		if d.Spec.Template.Spec.Containers[0].Image != m.Status.Promoting.Image {
			return fmt.Errorf("the Deployment does not run version 2 yet")
		}
		if d.Status.UpdatedReplicas >= 3 && d.Status.AvailableReplicas >= 3 && d.Status.Replicas == 3 {
			return fmt.Errorf("the rolling update is over: %+v", d.Status)
		}
		return nil
	})
	st.KillOperator()
	d := &appsv1.Deployment{}
	if err := k8s.Get(ctx, client.ObjectKeyFromObject(md), d); err != nil {
		t.Fatal(err)
	}
	t.Logf("killed the operator mid-rollout: Deployment updated %d, available %d, %d in all", d.Status.UpdatedReplicas, d.Status.AvailableReplicas, d.Status.Replicas)
	time.Sleep(3 * time.Second) // the rollout goes on without the operator
	if err := st.StartOperator(); err != nil {
		t.Fatal(err)
	}
	waitReady(t, md, moved[0].Version, "v2 Ready after the restart")

	// One image per version, nothing pushed twice.
	if got := reg.Manifests(repo); len(got) != 2 {
		t.Errorf("%d manifests in %s, want 2 (one per version): %v", len(got), repo, got)
	}
	if md.Status.Serving.Image == v1Image || md.Status.LastGood == nil || md.Status.LastGood.Image != md.Status.Serving.Image {
		t.Errorf("serving %+v lastGood %+v", md.Status.Serving, md.Status.LastGood)
	}
	// One history entry per version, both ended Succeeded; one promotion each.
	versions := map[string]int{}
	for _, h := range md.Status.History {
		versions[h.Version]++
		if h.Version == res[0].Version && h.End == nil {
			t.Errorf("history entry of v1 not ended: %+v", h)
		}
	}
	if versions[res[0].Version] != 1 || versions[moved[0].Version] != 1 || len(versions) != 2 {
		t.Errorf("history by version %v, want one entry each", versions)
	}
	if n := eventCount(t, md.Namespace, md.Name, "Promoted"); n != 2 {
		t.Errorf("%d Promoted events, want 2", n)
	}
	if pods := productionPods(t, md); len(pods[md.Status.Serving.Image]) != 3 || len(pods) != 1 {
		t.Errorf("running production pods by image: %v", len(pods))
	}
	cand := &appsv1.Deployment{}
	if err := k8s.Get(ctx, client.ObjectKey{Namespace: md.Namespace, Name: md.Name + "-candidate"}, cand); err == nil {
		t.Errorf("the candidate Deployment is left over")
	}
}

// TestMLflowOutageLeavesServingAlone stops the MLflow server for a while:
// the condition says MLflowUnreachable, the production Deployment is not
// touched and its pods keep answering; when MLflow is back, the operator
// resolves again and promotes the next version.
func TestMLflowOutageLeavesServingAlone(t *testing.T) {
	ctx := context.Background()
	res := register(t, mlflowserver.Op{"op": "register", "model": "outage", "seed": 1, "alias": "champion"})
	md := newMD(t, testenv.Namespace(t, k8s, "e2e"), "outage", v1alpha1.ModelReference{Name: "outage", Alias: "champion"})
	waitReady(t, md, res[0].Version, "v1 Ready")
	before := &appsv1.Deployment{}
	if err := k8s.Get(ctx, client.ObjectKeyFromObject(md), before); err != nil {
		t.Fatal(err)
	}

	server.Stop()
	restarted := false
	t.Cleanup(func() {
		if !restarted {
			_ = server.Restart()
		}
	})
	stopped := time.Now()
	testenv.Eventually(t, 3*time.Minute, "MLflowUnreachable", func() error {
		m, err := getMD(md)
		if err != nil {
			return err
		}
		c := meta.FindStatusCondition(m.Status.Conditions, v1alpha1.ConditionModelResolved)
		if c == nil || c.Status != metav1.ConditionFalse || c.Reason != string(v1alpha1.ReasonMLflowUnreachable) {
			return fmt.Errorf("ModelResolved %+v", c)
		}
		return nil
	})
	t.Logf("MEASURED MLflow stopped -> MLflowUnreachable: %s", time.Since(stopped).Round(100*time.Millisecond))
	// A few more polls with MLflow down.
	time.Sleep(12 * time.Second)
	m, err := getMD(md)
	if err != nil {
		t.Fatal(err)
	}
	if m.Status.Serving == nil || m.Status.Serving.Image != md.Status.Serving.Image {
		t.Errorf("serving changed during the outage: %+v", m.Status.Serving)
	}
	after := &appsv1.Deployment{}
	if err := k8s.Get(ctx, client.ObjectKeyFromObject(md), after); err != nil {
		t.Fatal(err)
	}
	if after.Generation != before.Generation || after.Status.AvailableReplicas < 3 {
		t.Errorf("the Deployment was touched during the outage: generation %d -> %d, available %d",
			before.Generation, after.Generation, after.Status.AvailableReplicas)
	}
	pods := productionPods(t, md)[md.Status.Serving.Image]
	if len(pods) == 0 {
		t.Fatal("no running production pod during the outage")
	}
	got, err := predict(pods[0].Status.PodIP)
	if err != nil {
		t.Fatalf("production does not answer during the outage: %v", err)
	}
	if want := jsonInts(res[0].Predictions); got != want {
		t.Errorf("predictions %s during the outage, want %s", got, want)
	}

	if err := server.Restart(); err != nil {
		t.Fatal(err)
	}
	restarted = true
	testenv.Eventually(t, 3*time.Minute, "resolved again", func() error {
		m, err := getMD(md)
		if err != nil {
			return err
		}
		if c := meta.FindStatusCondition(m.Status.Conditions, v1alpha1.ConditionModelResolved); c == nil || c.Status != metav1.ConditionTrue {
			return fmt.Errorf("ModelResolved %+v", c)
		}
		if c := meta.FindStatusCondition(m.Status.Conditions, v1alpha1.ConditionReady); c == nil || c.Status != metav1.ConditionTrue {
			return fmt.Errorf("Ready %+v", c)
		}
		return nil
	})
	next := register(t, mlflowserver.Op{"op": "register", "model": "outage", "seed": 2, "alias": "champion"})
	waitReady(t, md, next[0].Version, "v2 Ready after the outage")
}
