package e2e

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/mlflow-operator/mlflow-operator/api/v1alpha1"
	"github.com/mlflow-operator/mlflow-operator/test/harness/cluster"
	"github.com/mlflow-operator/mlflow-operator/test/harness/mlflowserver"
	"github.com/mlflow-operator/mlflow-operator/test/harness/testenv"
)

// Scenarios only a real node can play: containers that really crash, and
// images that really cannot be pulled.

func needRealNode(t *testing.T) {
	t.Helper()
	if st.Node != cluster.RealNode {
		t.Skip("needs the real node (kubelet, containerd, runc): kwok nodes do not run containers")
	}
}

// heldWhileProductionServes waits until version v failed (reason) and
// checks that the version before it still serves every replica.
func heldWhileProductionServes(t *testing.T, md *v1alpha1.ModelDeployment, v string, reason v1alpha1.Reason, serving string) {
	t.Helper()
	testenv.Eventually(t, 6*time.Minute, "version "+v+" held", func() error {
		m, err := getMD(md)
		if err != nil {
			return err
		}
		if len(m.Status.FailedVersions) == 0 || m.Status.FailedVersions[0].Version != v || m.Status.FailedVersions[0].Reason != reason {
			return fmt.Errorf("failedVersions %+v", m.Status.FailedVersions)
		}
		if !meta.IsStatusConditionTrue(m.Status.Conditions, v1alpha1.ConditionStalled) {
			return fmt.Errorf("not Stalled: %+v", m.Status.Conditions)
		}
		if m.Status.Serving == nil || m.Status.Serving.Image != serving {
			return fmt.Errorf("serving %+v", m.Status.Serving)
		}
		return nil
	})
	m, _ := getMD(md)
	t.Logf("held: %s", m.Status.FailedVersions[0].Message)
	if err := servesEverywhere(m); err != nil {
		t.Errorf("production after a held version: %v", err)
	}
	if img := productionImage(t, md); img != serving {
		t.Errorf("production runs %s, want the version that served (%s)", img, serving)
	}
}

// TestModelThatCannotLoadIsHeld: version 2 cannot be loaded (a missing
// dependency would do the same): its candidate's container really exits and
// crash-loops. The version is held; production never runs it.
func TestModelThatCannotLoadIsHeld(t *testing.T) {
	needRealNode(t)
	res := register(t, mlflowserver.Op{"op": "register", "model": "unloadable", "seed": 1, "alias": "champion"})
	md := newMD(t, testenv.Namespace(t, k8s, "e2e"), "unloadable", v1alpha1.ModelReference{Name: "unloadable", Alias: "champion"})
	waitReady(t, md, res[0].Version, "v1 Ready")
	good := md.Status.Serving.Image

	bad := register(t, mlflowserver.Op{"op": "register", "model": "unloadable", "kind": "broken", "alias": "champion"})
	heldWhileProductionServes(t, md, bad[0].Version, v1alpha1.ReasonCandidateFailed, good)
	m, _ := getMD(md)
	if msg := m.Status.FailedVersions[0].Message; !strings.Contains(msg, "CrashLoopBackOff") && !strings.Contains(msg, "restarted") {
		t.Errorf("the failure does not say the container crashed: %s", msg)
	}
}

// TestUnpullableImageIsHeld: the image of version 2 is in the registry's
// index but one of its layers is gone (deleted from the registry), so the
// node cannot pull it. Its candidate cannot start; the version is held and
// production keeps serving version 1.
func TestUnpullableImageIsHeld(t *testing.T) {
	needRealNode(t)
	res := register(t,
		mlflowserver.Op{"op": "register", "model": "unpullable", "seed": 1, "alias": "champion"},
		mlflowserver.Op{"op": "register", "model": "unpullable", "seed": 2},
	)
	md := newMD(t, testenv.Namespace(t, k8s, "e2e"), "unpullable", v1alpha1.ModelReference{Name: "unpullable", Alias: "champion"})
	waitReady(t, md, res[0].Version, "v1 Ready")
	good := md.Status.Serving.Image

	// The operator builds and pushes version 2 for a ModelDeployment whose
	// pods can never be scheduled: the node never pulls that image.
	builder := newMD(t, testenv.Namespace(t, k8s, "e2e"), "builder", v1alpha1.ModelReference{Name: "unpullable", Version: res[1].Version},
		func(b *v1alpha1.ModelDeployment) {
			b.Spec.Image.Repository = md.Spec.Image.Repository
			b.Spec.Serving.NodeSelector = map[string]string{"e2e.mlflow-operator.io/nowhere": "true"}
		})
	var image string
	testenv.Eventually(t, 3*time.Minute, "version 2 built", func() error {
		b, err := getMD(builder)
		if err != nil {
			return err
		}
		if b.Status.Target == nil || b.Status.Target.Image == "" {
			return fmt.Errorf("target %+v", b.Status.Target)
		}
		image = b.Status.Target.Image
		return nil
	})
	deleteModelLayer(t, image)

	register(t, mlflowserver.Op{"op": "set_alias", "model": "unpullable", "alias": "champion", "version": res[1].Version})
	heldWhileProductionServes(t, md, res[1].Version, v1alpha1.ReasonCandidateFailed, good)
	m, _ := getMD(md)
	if msg := m.Status.FailedVersions[0].Message; !strings.Contains(msg, "ImagePull") && !strings.Contains(msg, "ErrImagePull") {
		t.Errorf("the failure does not say the image cannot be pulled: %s", msg)
	}
}

// deleteModelLayer deletes an image's model layer (its last) from the
// registry: the manifest and config stay, so the image still looks present,
// but nothing can pull it any more. It returns the manifest's digest.
func deleteModelLayer(t *testing.T, image string) string {
	t.Helper()
	ctx := context.Background()
	ref, err := name.ParseReference(image, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	img, err := remote.Image(ref, remote.WithContext(ctx))
	if err != nil {
		t.Fatal(err)
	}
	manifest, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	digest, err := layers[len(layers)-1].Digest()
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodDelete,
		fmt.Sprintf("http://%s/v2/%s/blobs/%s", reg.Host, ref.Context().RepositoryStr(), digest), nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("deleting the layer: HTTP %d", resp.StatusCode)
	}
	return manifest.String()
}

// TestUnpullableVersionRollsBack: version 2 served before, so coming back
// to it skips the candidate (PreviouslyServed). Meanwhile its image lost a
// layer in the registry (a retention policy, a mistaken clean-up) and the
// node no longer has it (a new node would not either): its production pods
// cannot pull it. The operator rolls back to version 1, whose pods never
// stopped answering: a client through the Service sees no failed request.
func TestUnpullableVersionRollsBack(t *testing.T) {
	needRealNode(t)
	ctx := context.Background()
	res := register(t,
		mlflowserver.Op{"op": "register", "model": "vanishing", "seed": 1, "alias": "champion"},
		mlflowserver.Op{"op": "register", "model": "vanishing", "seed": 2},
	)
	v1, v2 := res[0].Version, res[1].Version
	md := newMD(t, testenv.Namespace(t, k8s, "e2e"), "vanishing", v1alpha1.ModelReference{Name: "vanishing", Alias: "champion"})
	waitReady(t, md, v1, "v1 Ready")
	good := md.Status.Serving.Image
	moveAlias := func(v string) {
		register(t, mlflowserver.Op{"op": "set_alias", "model": "vanishing", "alias": "champion", "version": v})
	}
	moveAlias(v2)
	waitReady(t, md, v2, "v2 Ready")
	gone := md.Status.Serving.Image
	moveAlias(v1)
	waitReady(t, md, v1, "back on v1")

	// No container may hold version 2's layers when the node forgets it.
	testenv.Eventually(t, 2*time.Minute, "version 2's pods gone", func() error {
		pods := &corev1.PodList{}
		if err := k8s.List(ctx, pods, client.InNamespace(md.Namespace)); err != nil {
			return err
		}
		for _, p := range pods.Items {
			if runsImage(&p, gone) {
				return fmt.Errorf("pod %s still runs version 2", p.Name)
			}
		}
		return nil
	})
	manifest := deleteModelLayer(t, gone)
	if err := st.Cluster.ForgetNodeImage(ctx, manifest); err != nil {
		t.Fatal(err)
	}

	serviceClient := startLoad(t, md)
	moveAlias(v2)
	testenv.Eventually(t, 6*time.Minute, "rolled back to v1", func() error {
		m, err := getMD(md)
		if err != nil {
			return err
		}
		if !meta.IsStatusConditionTrue(m.Status.Conditions, v1alpha1.ConditionRolledBack) {
			return fmt.Errorf("not RolledBack: %+v", m.Status.Conditions)
		}
		if len(m.Status.FailedVersions) == 0 || m.Status.FailedVersions[0].Version != v2 {
			return fmt.Errorf("failedVersions %+v", m.Status.FailedVersions)
		}
		if m.Status.Serving == nil || m.Status.Serving.Image != good {
			return fmt.Errorf("serving %+v", m.Status.Serving)
		}
		return nil
	})
	time.Sleep(5 * time.Second)
	serviceClient.finish(t, "promotion of an unpullable version and its rollback")
	m, _ := getMD(md)
	if f := m.Status.FailedVersions[0]; f.Reason != v1alpha1.ReasonPodsFailing || !strings.Contains(f.Message, "ImagePull") {
		t.Errorf("the failure does not say production could not pull the image: %s %s", f.Reason, f.Message)
	}
	if err := servesEverywhere(m); err != nil {
		t.Errorf("production after the rollback: %v", err)
	}
	if img := productionImage(t, md); img != good {
		t.Errorf("production runs %s, want version 1 (%s)", img, good)
	}
}

// runsImage tells whether one of p's containers runs image.
func runsImage(p *corev1.Pod, image string) bool {
	for _, c := range p.Spec.Containers {
		if c.Image == image {
			return true
		}
	}
	return false
}
