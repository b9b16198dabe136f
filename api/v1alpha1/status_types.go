package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The parts of ModelDeploymentStatus.

// ModelVersionRef is one model version and the image built from it.
type ModelVersionRef struct {
	// Version is the MLflow model version.
	// +optional
	Version string `json:"version,omitempty"`

	// RunID is the MLflow run that produced the version.
	// +optional
	RunID string `json:"runID,omitempty"`

	// Source is the version's artifact source in MLflow, e.g. models:/m-....
	// +optional
	Source string `json:"source,omitempty"`

	// Image is the built image, by digest (repository@sha256:...).
	// +optional
	Image string `json:"image,omitempty"`
}

// ServingVersionStatus is the version production serves.
type ServingVersionStatus struct {
	ModelVersionRef `json:",inline"`

	// Since is when this version became the one serving.
	// +optional
	Since *metav1.Time `json:"since,omitempty"`
}

// ApprovalRequest is a verified version held for a person's approval.
type ApprovalRequest struct {
	ModelVersionRef `json:",inline"`

	// Since is when the version began to wait.
	// +optional
	Since *metav1.Time `json:"since,omitempty"`

	// Verification is how the version was verified: Verified (its
	// candidate answered the smoke test), ReadinessOnly (its candidate
	// became Ready; no request was sent) or PreviouslyServed (it rolled
	// out on every replica before; no candidate).
	// +optional
	Verification Reason `json:"verification,omitempty"`
}

// FailedVersion is a model version that failed verification or rollout and
// is not deployed again until a new version, a spec change or a retry
// annotation moves on.
type FailedVersion struct {
	// Version is the MLflow model version.
	Version string `json:"version"`

	// Image is the image that failed, by digest.
	// +optional
	Image string `json:"image,omitempty"`

	// Reason is the CamelCase reason of the failure.
	Reason Reason `json:"reason"`

	// Message tells what happened.
	// +optional
	Message string `json:"message,omitempty"`

	// Time of the failure.
	Time metav1.Time `json:"time"`

	// ObservedGeneration is the spec generation the version failed with; a
	// changed spec gives the version another chance.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
}

// HistoryEntry is one rollout attempt.
type HistoryEntry struct {
	// Version is the MLflow model version.
	Version string `json:"version"`

	// Image is the image rolled out, by digest.
	// +optional
	Image string `json:"image,omitempty"`

	// Start of the attempt.
	Start metav1.Time `json:"start"`

	// End of the attempt; empty while it runs.
	// +optional
	End *metav1.Time `json:"end,omitempty"`

	// Outcome of the attempt: InProgress, Succeeded, Failed or RolledBack.
	Outcome HistoryOutcome `json:"outcome"`

	// Reason of the outcome.
	// +optional
	Reason Reason `json:"reason,omitempty"`
}
