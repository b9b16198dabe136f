package v1alpha1

import (
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// RolloutStrategy is how a verified version replaces the serving one.
// +kubebuilder:validation:Enum=RollingUpdate;BlueGreen;Canary
type RolloutStrategy string

const (
	// StrategyRollingUpdate verifies a one-replica candidate, then replaces
	// the production pods a maxSurge at a time.
	StrategyRollingUpdate RolloutStrategy = "RollingUpdate"
	// StrategyBlueGreen starts and verifies the new version's whole set
	// beside production, switches the Service to it at once and keeps the
	// old set for scaleDownDelay.
	StrategyBlueGreen RolloutStrategy = "BlueGreen"
	// StrategyCanary starts and verifies a small set of the new version
	// beside production, gives it a growing share of the Service's pods
	// step by step, each step held for a pause and optionally analysed, and
	// switches the Service to it after the last step; a failed step puts
	// the Service back on production at once.
	StrategyCanary RolloutStrategy = "Canary"
)

// BlueGreenSpec tunes the BlueGreen strategy.
type BlueGreenSpec struct {
	// ScaleDownDelay is how long the old version's set keeps running after
	// the Service switched away from it: while it runs, going back to that
	// version is a switch of the Service (instant); after it, the set is
	// deleted and going back starts its pods again. From 0s (delete at
	// once; the pods still drain for their preStop time) to 24h.
	// +optional
	// +kubebuilder:default="30s"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="self.matches('^([0-9]{1,5}(\\\\.[0-9]{1,9})?(ns|us|ms|s|m|h)){1,3}$')",message="must be a duration such as 30s, 5m or 1h30m (at most 3 parts of at most 5 digits)"
	// +kubebuilder:validation:XValidation:rule="!self.matches('^([0-9]{1,5}(\\\\.[0-9]{1,9})?(ns|us|ms|s|m|h)){1,3}$') || duration(self) <= duration('24h')",message="must be at most 24h"
	ScaleDownDelay *metav1.Duration `json:"scaleDownDelay,omitempty"`
}

// Slot names a Deployment that can hold production. The empty slot is the
// Deployment named like the ModelDeployment (where RollingUpdate has always
// run production); BlueGreen alternates between blue and green.
// +kubebuilder:validation:Enum=blue;green
type Slot string

const (
	SlotBlue  Slot = "blue"
	SlotGreen Slot = "green"
)

// Other is the slot BlueGreen starts a new version's set in when s serves:
// green after blue, blue otherwise.
func (s Slot) Other() Slot {
	if s == SlotBlue {
		return SlotGreen
	}
	return SlotBlue
}

// BlueGreen tells whether new versions start in the slot beside
// production and reach it by a switch of the Service: with BlueGreen, and
// with Canary, whose canary set is that slot's Deployment.
func (s *ModelDeploymentSpec) BlueGreen() bool {
	return s.Rollout.Strategy == StrategyBlueGreen || s.Rollout.Strategy == StrategyCanary
}

// Canary tells whether new versions roll out in canary steps.
func (s *ModelDeploymentSpec) Canary() bool { return s.Rollout.Strategy == StrategyCanary }

// ScaleDownDelay is how long BlueGreen and Canary keep the old set after a
// switch: 30s when unset, clamped to the CRD's bounds.
func (s *ModelDeploymentSpec) ScaleDownDelay() time.Duration {
	var d *metav1.Duration
	switch {
	case s.Canary() && s.Rollout.Canary != nil:
		d = s.Rollout.Canary.ScaleDownDelay
	case !s.Canary() && s.Rollout.BlueGreen != nil:
		d = s.Rollout.BlueGreen.ScaleDownDelay
	}
	if d == nil {
		return DefaultScaleDownDelay
	}
	return min(max(d.Duration, 0), MaxScaleDownDelay)
}
