package controllers

import (
	"context"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/mlflow-operator/mlflow-operator/api/v1alpha1"
	"github.com/mlflow-operator/mlflow-operator/internal/resources"
	"github.com/mlflow-operator/mlflow-operator/internal/rollout"
)

// BlueGreen (spec.rollout.strategy) runs the new version's whole set in
// the slot beside production as its candidate: the preview. The decisions
// are rollout.Decide's, as for RollingUpdate; what differs is carried out
// here: the preview is a production Deployment of the other slot with as
// many pods as production has, promoting it moves status.activeSlot (the
// Service, PodDisruptionBudget and HorizontalPodAutoscaler follow in the
// same pass, no pod changes), and the old set stays for the scale-down
// delay so that going back to its version is another switch.

// blueGreenInput fills in the BlueGreen part of a rollout decision. The
// old set's time runs from when the promotion completed (status.serving's
// since); until then it has none.
func blueGreenInput(md *v1alpha1.ModelDeployment, in *rollout.Input) {
	if !md.Spec.BlueGreen() {
		return
	}
	in.BlueGreen, in.ScaleDownDelay = true, md.Spec.ScaleDownDelay()
	if sv := md.Status.Serving; sv != nil && sv.Since != nil && md.Status.Promoting == nil && sv.Image == in.Target.Image {
		in.ScaleDownAt = sv.Since.Add(in.ScaleDownDelay)
	}
}

// previewReplicas is how many pods the preview starts with: as many as
// production wants now (the HorizontalPodAutoscaler's choice), within
// minReplicas and maxReplicas, so that the switch does not shrink the
// capacity behind the Service.
func previewReplicas(md *v1alpha1.ModelDeployment, production *appsv1.Deployment) int32 {
	n := md.Spec.MinReplicas()
	if production != nil {
		n = max(n, ptr.Deref(production.Spec.Replicas, n))
	}
	return min(n, md.Spec.MaxReplicas())
}

// createPreview applies the preview set of the target version. An older
// set in its slot (the one kept after the last switch) is deleted first: a
// fresh Deployment starts all its pods at once, where changing the old one
// would replace them a surge at a time.
func (r *ModelDeploymentReconciler) createPreview(ctx context.Context, s *scope, target v1alpha1.ModelVersionRef) error {
	md, w := s.md, s.w
	if w.candidate != nil && (templateImage(w.candidate) != target.Image || !w.candidate.DeletionTimestamp.IsZero()) {
		return r.deleteCandidate(ctx, w)
	}
	replicas := previewReplicas(md, w.production)
	if md.Spec.Canary() && w.production != nil && !servedBefore(md, target.Image) {
		// The canary set starts with its first step's pods; it grows
		// step by step (canary.go). A version that served before switches
		// back at once and needs the whole set.
		replicas = canaryReplicas(md, w.production, 0)
	}
	dep := resources.PreviewDeployment(md, r.workload(md, target.Image, target.Version), replicas)
	if replicas < previewReplicas(md, w.production) {
		metav1.SetMetaDataAnnotation(&dep.ObjectMeta, annotationCanarySet, "true")
	}
	if err := r.checkOwnership(ctx, md, dep); err != nil {
		return err
	}
	// The replicas go under their own field manager, as for production:
	// after the switch the HorizontalPodAutoscaler owns them, and the
	// production apply (which leaves them out) must not reset them.
	dep.Spec.Replicas = nil
	if _, err := apply(ctx, r.Client, dep, FieldOwner); err != nil {
		return err
	}
	return r.scaleSet(ctx, client.ObjectKeyFromObject(dep), w.candidate, replicas)
}

// annotationCanarySet marks a set a Canary rollout started (with its first
// step's pods, not production's).
const annotationCanarySet = "serving.mlflow-operator.io/canary-set"

// dropCanarySet keeps BlueGreen from switching to a set a Canary rollout
// started, of a step's size, when the strategy changed to BlueGreen before
// it was promoted: the set is deleted and the preview starts again whole,
// as any verification under way for another strategy does.
func (r *ModelDeploymentReconciler) dropCanarySet(ctx context.Context, s *scope, in *rollout.Input) error {
	w := s.w
	if !in.BlueGreen || in.Canary != nil || w.candidate == nil || w.candidate.Annotations[annotationCanarySet] == "" ||
		in.Candidate.ServedBefore || in.ProductionImage == in.Target.Image {
		return nil
	}
	if err := r.deleteCandidate(ctx, w); err != nil {
		return err
	}
	w.candidate, w.candidatePods, in.Candidate = nil, nil, rollout.Candidate{}
	return nil
}

// switchSlots makes the candidate's slot the active one: the Service,
// PodDisruptionBudget and HorizontalPodAutoscaler applied later in the
// pass select its pods. The caller persists the status first.
func switchSlots(s *scope) {
	s.md.Status.ActiveSlot = resources.PreviewSlot(s.md)
	s.w.swap()
}

// switchBack tells whether a BlueGreen rollback can be a switch: the set
// beside production (in.Candidate, as the decision read it) runs the last
// good image, every pod of it available.
func switchBack(in rollout.Input) bool {
	c := in.Candidate
	return in.BlueGreen && !in.LastGood.Empty() && c.Exists && c.Image == in.LastGood.Image && c.Ready && !c.Failed
}
