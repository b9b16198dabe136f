package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ModelDeploymentSpec is the desired state: which model version to follow and
// how to serve it.
// +kubebuilder:validation:XValidation:rule="!has(self.disruption) || !has(self.disruption.minAvailable) || type(self.disruption.minAvailable) != int || !has(self.scaling) || !has(self.scaling.minReplicas) || self.disruption.minAvailable < self.scaling.minReplicas",message="must be lower than spec.scaling.minReplicas, or the PodDisruptionBudget blocks every eviction",fieldPath=".disruption.minAvailable"
type ModelDeploymentSpec struct {
	// Model is the registered MLflow model and the version of it to follow.
	// +required
	Model ModelReference `json:"model"`

	// MLflow is the tracking server holding the model registry.
	// +required
	MLflow MLflowConnection `json:"mlflow"`

	// Image says how the serving image is built and where it is pushed.
	// +required
	Image ImageSpec `json:"image"`

	// Serving shapes the serving pods.
	// +optional
	// +kubebuilder:default={}
	Serving ServingSpec `json:"serving,omitempty"`

	// Scaling configures the HorizontalPodAutoscaler.
	// +optional
	// +kubebuilder:default={}
	Scaling ScalingSpec `json:"scaling,omitempty"`

	// Disruption configures the PodDisruptionBudget. Default: keep 2 pods
	// available, or allow one eviction at a time when minReplicas is 2 or
	// less, so that a node drain is never blocked.
	// +optional
	Disruption DisruptionSpec `json:"disruption,omitempty"`

	// NetworkPolicy configures the NetworkPolicy in front of the serving pods.
	// +optional
	// +kubebuilder:default={}
	NetworkPolicy NetworkPolicySpec `json:"networkPolicy,omitempty"`

	// Rollout configures verification, promotion and rollback.
	// +optional
	// +kubebuilder:default={}
	Rollout RolloutSpec `json:"rollout,omitempty"`

	// Suspend stops reconciliation: the registry is not polled, nothing is
	// built, and the serving objects are left as they are.
	// +optional
	Suspend bool `json:"suspend,omitempty"`
}

// ModelDeploymentStatus is the observed state.
type ModelDeploymentStatus struct {
	// ObservedGeneration is the generation of the spec the status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// Conditions: Ready (always present), Reconciling and Stalled (present
	// only while true) and the steps' ModelResolved, ImageReady,
	// CandidateVerified, RolledOut and RolledBack.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// Target is the version the model reference means now, and its image once
	// built.
	// +optional
	Target *ModelVersionRef `json:"target,omitempty"`

	// Serving is the version the production Deployment runs.
	// +optional
	Serving *ServingVersionStatus `json:"serving,omitempty"`

	// Promoting is the version the production Deployment is rolling out to,
	// after its candidate was verified, since when.
	// +optional
	Promoting *ServingVersionStatus `json:"promoting,omitempty"`

	// ActiveSlot names the Deployment that serves production: empty for the
	// Deployment named like the ModelDeployment, blue or green for
	// <name>-blue or <name>-green. BlueGreen moves it at each switch; the
	// Service, the PodDisruptionBudget and the HorizontalPodAutoscaler
	// follow it.
	// +optional
	ActiveSlot Slot `json:"activeSlot,omitempty"`

	// Canary is where a Canary rollout stands while the new version's set
	// takes a share of the Service's pods: the Service then selects both
	// sets. Absent otherwise.
	// +optional
	Canary *CanaryStatus `json:"canary,omitempty"`

	// LastGood is the last version that rolled out completely; rollbacks
	// return to it.
	// +optional
	LastGood *ModelVersionRef `json:"lastGood,omitempty"`

	// FailedVersions are versions that will not be deployed again by polling.
	// +optional
	// +listType=atomic
	FailedVersions []FailedVersion `json:"failedVersions,omitempty"`

	// History of rollouts, newest first, at most spec.rollout.historyLimit.
	// +optional
	// +listType=atomic
	History []HistoryEntry `json:"history,omitempty"`

	// Endpoint is the in-cluster URL of the model's scoring server.
	// +optional
	Endpoint string `json:"endpoint,omitempty"`

	// Replicas of the production Deployment.
	// +optional
	Replicas int32 `json:"replicas,omitempty"`

	// ReadyReplicas of the production Deployment.
	// +optional
	ReadyReplicas int32 `json:"readyReplicas,omitempty"`

	// LastPolled is when the registry was last asked about the model, as of
	// the last status change: the status is written only when something in
	// it changes, so while nothing does this time stays (an idle operator
	// writes nothing). The ModelResolved condition tells whether the
	// registry answers.
	// +optional
	LastPolled *metav1.Time `json:"lastPolled,omitempty"`

	// LastRetry is the value of the retry annotation last acted upon, so
	// that one annotation retries a failed version once.
	// +optional
	LastRetry string `json:"lastRetry,omitempty"`

	// AwaitingApproval is the verified version that waits for a person's
	// approval before promotion (spec.rollout.approval: Manual), since
	// when; status.serving keeps serving and the candidate keeps running
	// meanwhile.
	// +optional
	AwaitingApproval *ApprovalRequest `json:"awaitingApproval,omitempty"`

	// LastApproval is the value of the approve annotation last acted upon
	// (its first 256 bytes), so that one value promotes once.
	// +optional
	// +kubebuilder:validation:MaxLength=256
	LastApproval string `json:"lastApproval,omitempty"`

	// LastAbort is the value of the abort annotation last acted upon (its
	// first 256 bytes), so that one value rejects once.
	// +optional
	// +kubebuilder:validation:MaxLength=256
	LastAbort string `json:"lastAbort,omitempty"`

	// LastHandledReconcileAt is the value of the Flux reconcile request
	// annotation reconcile.fluxcd.io/requestedAt last handled (its first
	// 256 bytes): each new value makes the operator ask MLflow again at
	// once, dropping the answer it had cached for the model.
	// +optional
	// +kubebuilder:validation:MaxLength=256
	LastHandledReconcileAt string `json:"lastHandledReconcileAt,omitempty"`
}

// ModelDeployment serves a registered MLflow model on Kubernetes: it follows an
// alias, a stage or a pinned version, builds an image of the chosen version,
// verifies it and rolls it out with automatic rollback.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=md;mdep,categories=all
// +kubebuilder:printcolumn:name="Model",type=string,JSONPath=`.spec.model.name`
// +kubebuilder:printcolumn:name="Target",type=string,JSONPath=`.status.target.version`
// +kubebuilder:printcolumn:name="Serving",type=string,JSONPath=`.status.serving.version`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:printcolumn:name="Image",type=string,priority=1,JSONPath=`.status.serving.image`
// +kubebuilder:printcolumn:name="Endpoint",type=string,priority=1,JSONPath=`.status.endpoint`
// +kubebuilder:printcolumn:name="Slot",type=string,priority=1,JSONPath=`.status.activeSlot`
// +kubebuilder:printcolumn:name="Canary",type=integer,priority=1,JSONPath=`.status.canary.weight`,description="Share of the Service's pods, in percent, a Canary rollout's new version has now"
// +kubebuilder:validation:XValidation:rule="self.metadata.name.size() <= 63 && self.metadata.name.matches('^[a-z]([-a-z0-9]*[a-z0-9])?$')",message="metadata.name must be at most 63 characters of lower-case letters, digits and '-', starting with a letter and ending with a letter or digit: it names the model's Service and labels every serving pod"
type ModelDeployment struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec is the desired state.
	// +required
	Spec ModelDeploymentSpec `json:"spec"`

	// Status is the observed state.
	// +optional
	Status ModelDeploymentStatus `json:"status,omitempty"`
}

// ModelDeploymentList is a list of ModelDeployments.
//
// +kubebuilder:object:root=true
type ModelDeploymentList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []ModelDeployment `json:"items"`
}

func init() {
	SchemeBuilder.Register(&ModelDeployment{}, &ModelDeploymentList{})
}
