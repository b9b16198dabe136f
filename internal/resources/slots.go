package resources

import (
	appsv1 "k8s.io/api/apps/v1"

	v1alpha1 "github.com/mlflow-operator/mlflow-operator/api/v1alpha1"
)

// The Deployments that can hold a ModelDeployment's production: the one
// named like it (the empty slot, where RollingUpdate has always run
// production) and BlueGreen's <name>-blue and <name>-green. Each labels its
// pods with a role of its own, so that no Service, PodDisruptionBudget or
// Deployment selector of one matches the pods of another; the Service
// selects the role of status.activeSlot.

// SlotName is the name of the Deployment of slot.
func SlotName(md *v1alpha1.ModelDeployment, slot v1alpha1.Slot) string {
	if slot == "" {
		return md.Name
	}
	return md.Name + "-" + string(slot)
}

// SlotRole is the role label value of the pods of slot.
func SlotRole(slot v1alpha1.Slot) string {
	if slot == "" {
		return v1alpha1.RoleProduction
	}
	return string(slot)
}

// SlotSelectorLabels select the pods of slot's Deployment. They never
// change for the life of that Deployment, as a Deployment's selector is
// immutable.
func SlotSelectorLabels(md *v1alpha1.ModelDeployment, slot v1alpha1.Slot) map[string]string {
	return map[string]string{
		v1alpha1.LabelName: md.Name,
		v1alpha1.LabelRole: SlotRole(slot),
	}
}

// SelectorLabels select the production pods of a ModelDeployment: those of
// its active slot (never a candidate's, nor BlueGreen's other set).
func SelectorLabels(md *v1alpha1.ModelDeployment) map[string]string {
	return SlotSelectorLabels(md, md.Status.ActiveSlot)
}

// ServiceSelectorLabels are the Service's selector: the production pods,
// and while a Canary rollout's set takes traffic (status.canary) the pods
// of both slots: every pod labelled with the ModelDeployment's name. The
// reconciler gives the canary traffic only when no other serving
// Deployment (a RollingUpdate candidate) is left.
func ServiceSelectorLabels(md *v1alpha1.ModelDeployment) map[string]string {
	if md.Status.Canary != nil {
		return map[string]string{v1alpha1.LabelName: md.Name}
	}
	return SelectorLabels(md)
}

// ProductionName is the name of the Deployment serving production now.
func ProductionName(md *v1alpha1.ModelDeployment) string {
	return SlotName(md, md.Status.ActiveSlot)
}

// PreviewSlot is the slot BlueGreen starts a new version's set in.
func PreviewSlot(md *v1alpha1.ModelDeployment) v1alpha1.Slot {
	return md.Status.ActiveSlot.Other()
}

// ServingDeploymentNames are the names of every Deployment a
// ModelDeployment may run pods in: its three slots and its candidate.
func ServingDeploymentNames(md *v1alpha1.ModelDeployment) []string {
	return []string{SlotName(md, ""), SlotName(md, v1alpha1.SlotBlue), SlotName(md, v1alpha1.SlotGreen), CandidateName(md)}
}

// PreviewDeployment is BlueGreen's set of w in the slot beside production:
// the production Deployment of that slot, as it will serve once the Service
// switches to it (so the switch changes no pod), with replicas pods. The
// caller applies replicas under a field manager of its own: after the
// switch the HorizontalPodAutoscaler owns them.
func PreviewDeployment(md *v1alpha1.ModelDeployment, w Workload, replicas int32) *appsv1.Deployment {
	d := SlotDeployment(md, PreviewSlot(md), w)
	d.Spec.Replicas = &replicas
	return d
}
