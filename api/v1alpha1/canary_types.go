package v1alpha1

import (
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// CanarySpec tunes the Canary strategy.
type CanarySpec struct {
	// Steps are the shares of traffic the new version gets before it takes
	// all of it, in order. Traffic is shared by replica ratio behind the
	// one Service: a step of weight w runs ceil(N*w/(100-w)) canary pods
	// beside the N production pods (at most N, so a weight above 50 acts as
	// 50 and status.canary.weight says the share reached). After the last
	// step the canary set grows to production's size and the Service
	// switches to it. At most 10 steps; 20% then 50% for a minute each when
	// unset.
	// +optional
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=10
	// +listType=atomic
	Steps []CanaryStep `json:"steps,omitempty"`

	// Analysis checks every step at the end of its pause; a step that fails
	// it aborts the rollout: the Service goes back to production's pods
	// alone at once and the version is marked failed. Without it, a step
	// passes when its pods stay Ready and do not fail for the pause.
	// +optional
	Analysis *CanaryAnalysis `json:"analysis,omitempty"`

	// ScaleDownDelay is how long the old version's set keeps running after
	// the Service switched away from it, as for BlueGreen: while it runs,
	// going back to that version is a switch of the Service. From 0s to
	// 24h.
	// +optional
	// +kubebuilder:default="30s"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="self.matches('^([0-9]{1,5}(\\\\.[0-9]{1,9})?(ns|us|ms|s|m|h)){1,3}$')",message="must be a duration such as 30s, 5m or 1h30m (at most 3 parts of at most 5 digits)"
	// +kubebuilder:validation:XValidation:rule="!self.matches('^([0-9]{1,5}(\\\\.[0-9]{1,9})?(ns|us|ms|s|m|h)){1,3}$') || duration(self) <= duration('24h')",message="must be at most 24h"
	ScaleDownDelay *metav1.Duration `json:"scaleDownDelay,omitempty"`
}

// CanaryStep is one share of traffic and how long it holds.
type CanaryStep struct {
	// Weight is the share of the Service's pods the new version gets in
	// this step, in percent (1 to 99).
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=99
	Weight int32 `json:"weight"`

	// Pause is how long the step holds once all its pods are Ready, before
	// its analysis and the next step. From 0s to 24h.
	// +optional
	// +kubebuilder:default="1m"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="self.matches('^([0-9]{1,5}(\\\\.[0-9]{1,9})?(ns|us|ms|s|m|h)){1,3}$')",message="must be a duration such as 30s, 5m or 1h30m (at most 3 parts of at most 5 digits)"
	// +kubebuilder:validation:XValidation:rule="!self.matches('^([0-9]{1,5}(\\\\.[0-9]{1,9})?(ns|us|ms|s|m|h)){1,3}$') || duration(self) <= duration('24h')",message="must be at most 24h"
	Pause *metav1.Duration `json:"pause,omitempty"`
}

// CanaryAnalysis is how a canary step is judged: by the operator's own
// requests, by a Prometheus query, or both (both must pass).
// +kubebuilder:validation:XValidation:rule="has(self.probe) || has(self.prometheus)",message="set probe, prometheus or both"
type CanaryAnalysis struct {
	// Probe sends requests of the model's input example (or
	// spec.rollout.smokeTest.request) to the canary pods and counts the
	// answers.
	// +optional
	Probe *ProbeAnalysis `json:"probe,omitempty"`

	// Prometheus runs a PromQL query against the Prometheus server the
	// operator's administrator configured (--analysis-prometheus-url; a
	// ModelDeployment cannot name a server) and compares its value with
	// bounds.
	// +optional
	Prometheus *PrometheusAnalysis `json:"prometheus,omitempty"`
}

// ProbeAnalysis is the operator's own traffic to the canary pods.
type ProbeAnalysis struct {
	// Requests is how many requests are sent, spread over the canary pods.
	// +optional
	// +kubebuilder:default=10
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100
	Requests int32 `json:"requests,omitempty"`

	// MinSuccessPercent is the share of requests that must be answered
	// with a success for the step to pass.
	// +optional
	// +kubebuilder:default=100
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	MinSuccessPercent int32 `json:"minSuccessPercent,omitempty"`
}

// PrometheusAnalysis is a PromQL query whose value must lie within bounds.
// +kubebuilder:validation:XValidation:rule="has(self.min) || has(self.max)",message="set min, max or both: a query without bounds checks nothing"
// +kubebuilder:validation:XValidation:rule="!has(self.min) || !has(self.max) || !self.min.matches('^[-+]?[0-9]+(\\\\.[0-9]+)?([eE][-+]?[0-9]+)?$') || !self.max.matches('^[-+]?[0-9]+(\\\\.[0-9]+)?([eE][-+]?[0-9]+)?$') || double(self.min) <= double(self.max)",message="min must not be greater than max: no value could pass"
type PrometheusAnalysis struct {
	// Query is a PromQL expression whose result is one number: a scalar or
	// a vector of one sample (aggregate with sum() or max()). {{namespace}},
	// {{name}}, {{version}} and {{role}} are replaced by the
	// ModelDeployment's namespace and name, the new version and the role
	// label of the canary pods. Its value appears in status and events.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=2048
	Query string `json:"query"`

	// Min is the lowest value that passes, a decimal number such as 0.99.
	// +optional
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:Pattern=`^[-+]?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?$`
	Min string `json:"min,omitempty"`

	// Max is the highest value that passes, a decimal number such as 0.5.
	// +optional
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:Pattern=`^[-+]?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?$`
	Max string `json:"max,omitempty"`
}

// CanaryStatus is where a Canary rollout stands.
type CanaryStatus struct {
	// The version whose canary set takes traffic.
	ModelVersionRef `json:",inline"`

	// Step is the index of the step in spec.rollout.canary.steps; one past
	// the last while the canary set grows to production's size before the
	// switch.
	Step int32 `json:"step"`

	// Weight is the share of the Service's pods in the canary set at this
	// step, in percent.
	Weight int32 `json:"weight"`

	// Replicas is the number of canary pods at this step.
	Replicas int32 `json:"replicas"`

	// StepStarted is when the step began.
	// +optional
	StepStarted *metav1.Time `json:"stepStarted,omitempty"`

	// Reached is when every pod of the step was Ready; the pause counts
	// from then.
	// +optional
	Reached *metav1.Time `json:"reached,omitempty"`

	// Analysis is the last analysis' outcome.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	Analysis string `json:"analysis,omitempty"`
}

// DefaultCanarySteps are the steps of a Canary rollout whose spec gives
// none.
func DefaultCanarySteps() []CanaryStep {
	minute := &metav1.Duration{Duration: time.Minute}
	return []CanaryStep{{Weight: 20, Pause: minute}, {Weight: 50, Pause: minute.DeepCopy()}}
}

// CanarySteps are the steps of a Canary rollout.
func (s *ModelDeploymentSpec) CanarySteps() []CanaryStep {
	if s.Rollout.Canary == nil || len(s.Rollout.Canary.Steps) == 0 {
		return DefaultCanarySteps()
	}
	return s.Rollout.Canary.Steps
}

// StepPause is how long a step holds once Ready: 1m when unset, clamped to
// the CRD's bounds.
func (c CanaryStep) StepPause() time.Duration {
	if c.Pause == nil {
		return time.Minute
	}
	return min(max(c.Pause.Duration, 0), 24*time.Hour)
}

// CanaryAnalysis is the analysis of every canary step; nil without one.
func (s *ModelDeploymentSpec) CanaryAnalysis() *CanaryAnalysis {
	if s.Rollout.Canary == nil {
		return nil
	}
	return s.Rollout.Canary.Analysis
}
