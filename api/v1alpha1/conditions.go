package v1alpha1

// This file is the one home of the words the operator writes into status and
// events: condition types, condition and event reasons, event actions and
// history outcomes. Nothing else in the code base spells them.

// Condition types. Ready, Reconciling and Stalled follow the kstatus
// conventions (Ready always present; Reconciling and Stalled only while true,
// never both), so kubectl wait, Flux and Argo CD read them. The others are the
// steps' own, positive conditions.
const (
	// ConditionReady is True when the followed version serves with all its
	// replicas available.
	ConditionReady = "Ready"
	// ConditionReconciling is True while the operator is moving towards the
	// desired state (resolving, building, rolling out).
	ConditionReconciling = "Reconciling"
	// ConditionStalled is True when the operator cannot make progress without a
	// change from a person (an invalid spec, a failed version).
	ConditionStalled = "Stalled"

	// ConditionModelResolved is True when the registry answered which version
	// the model reference means.
	ConditionModelResolved = "ModelResolved"
	// ConditionImageReady is True when the target version's image is in the
	// registry.
	ConditionImageReady = "ImageReady"
	// ConditionDependenciesSatisfied is True when the base image holds the
	// Python packages the model needs.
	ConditionDependenciesSatisfied = "DependenciesSatisfied"
	// ConditionCandidateVerified is True when a one-replica candidate of the
	// target image answered the smoke test.
	ConditionCandidateVerified = "CandidateVerified"
	// ConditionRolledOut is True when the production Deployment runs the
	// target image on all its replicas.
	ConditionRolledOut = "RolledOut"
	// ConditionRolledBack is True when a failed rollout was rolled back to the
	// last good version.
	ConditionRolledBack = "RolledBack"
	// ConditionRequestMetrics is True when the serving pods have the
	// request-metrics sidecar spec.serving.requestMetrics asks for; present
	// only while it asks for it.
	ConditionRequestMetrics = "RequestMetrics"
)

// Reason is the CamelCase word that says why a condition has its status, or
// why an event was recorded. Events use the same words as conditions.
type Reason string

// Summary reasons (Ready, Reconciling, Stalled).
const (
	// ReasonSucceeded: the followed version serves with all replicas available.
	ReasonSucceeded Reason = "Succeeded"
	// ReasonProgressing: one version serves while the target is on its way.
	ReasonProgressing Reason = "Progressing"
	// ReasonSuspended: spec.suspend is set; nothing is polled, built or changed.
	ReasonSuspended Reason = "Suspended"
	// ReasonAwaitingApproval: a verified version waits for a person's
	// approval (spec.rollout.approval: Manual) while the last one keeps
	// serving; Ready is False, with neither Reconciling nor Stalled (the
	// shipped Argo CD health check says Suspended).
	ReasonAwaitingApproval Reason = "AwaitingApproval"
	// ReasonInvalidSpec: the operator cannot read the object (a value the
	// API server let through but the operator cannot decode, e.g. from an
	// older CRD); nothing else of it is reconciled until the spec changes.
	ReasonInvalidSpec Reason = "InvalidSpec"
)

// ModelResolved reasons.
const (
	ReasonResolved           Reason = "Resolved"
	ReasonModelNotFound      Reason = "ModelNotFound"
	ReasonAliasNotFound      Reason = "AliasNotFound"
	ReasonStageEmpty         Reason = "StageEmpty"
	ReasonVersionNotFound    Reason = "VersionNotFound"
	ReasonVersionNotReady    Reason = "VersionNotReady"
	ReasonMLflowUnreachable  Reason = "MLflowUnreachable"
	ReasonMLflowUnauthorized Reason = "MLflowUnauthorized"
	ReasonMLflowError        Reason = "MLflowError"
	// ReasonSecretNotFound: a Secret the spec names is missing or lacks its
	// key (MLflow credentials, CA, registry credentials).
	ReasonSecretNotFound Reason = "SecretNotFound"
	// ReasonResolverMissing: the operator was built without a registry client.
	ReasonResolverMissing Reason = "ResolverMissing"
)

// ImageReady reasons.
const (
	ReasonBuilding Reason = "Building"
	// ReasonPushed: this operator built the image and pushed it.
	ReasonPushed Reason = "Pushed"
	// ReasonReused: the image was in the registry already, checked to hold
	// this model version on this base image; nothing was pushed.
	ReasonReused Reason = "Reused"
	// ReasonImageAvailable: the image is known (from an earlier pass or
	// operator) but not whether this operator pushed it.
	ReasonImageAvailable       Reason = "Available"
	ReasonBuildFailed          Reason = "BuildFailed"
	ReasonBuildInvalid         Reason = "BuildInvalid"
	ReasonRegistryUnauthorized Reason = "RegistryUnauthorized"
	ReasonRegistryUnreachable  Reason = "RegistryUnreachable"
	ReasonImageNotFound        Reason = "ImageNotFound"
	// ReasonDependenciesRefused: dependencyPolicy Enforce refused to build.
	ReasonDependenciesRefused Reason = "DependenciesNotSatisfied"
	// ReasonBuilderMissing: the operator was built without an image builder.
	ReasonBuilderMissing Reason = "BuilderMissing"
)

// DependenciesSatisfied reasons.
const (
	ReasonDependenciesSatisfied    Reason = "Satisfied"
	ReasonDependenciesNotSatisfied Reason = "NotSatisfied"
	ReasonDependencyCheckSkipped   Reason = "Skipped"
)

// CandidateVerified, RolledOut and RolledBack reasons: the rollout decision's.
const (
	ReasonWaitingForImage   Reason = "WaitingForImage"
	ReasonCandidateStarting Reason = "CandidateStarting"
	ReasonCandidateFailed   Reason = "CandidateFailed"
	ReasonCandidateNotReady Reason = "CandidateNotReady"
	ReasonSmokeTestFailed   Reason = "SmokeTestFailed"
	// ReasonVerified: the candidate answered the smoke test request.
	ReasonVerified Reason = "Verified"
	// ReasonReadinessOnly: the candidate became Ready but no request was
	// sent (the smoke test is disabled, or the model has no input example
	// and spec.rollout.smokeTest.request is empty).
	ReasonReadinessOnly Reason = "ReadinessOnly"
	// ReasonNoSmokeTestRequest: smokeTest.required is set and there is no
	// request to send; the version is not promoted.
	ReasonNoSmokeTestRequest Reason = "NoSmokeTestRequest"
	// ReasonPreviouslyServed: the image served every replica before (its
	// rollout succeeded); it is promoted without a new candidate.
	ReasonPreviouslyServed  Reason = "PreviouslyServed"
	ReasonRollingOut        Reason = "RollingOut"
	ReasonRolloutComplete   Reason = "RolloutComplete"
	ReasonProgressDeadline  Reason = "ProgressDeadlineExceeded"
	ReasonPodsFailing       Reason = "PodsFailing"
	ReasonVersionFailed     Reason = "VersionFailed"
	ReasonCandidateLeftOver Reason = "CandidateLeftOver"
	// ReasonAborted: the abort annotation rejected a version that waited
	// for approval; it is held as a failed version, production untouched.
	ReasonAborted Reason = "Aborted"
	// ReasonCanaryStep: a Canary rollout's new version takes a share of
	// the Service's pods (status.canary says which step).
	ReasonCanaryStep Reason = "CanaryStep"
	// ReasonCanaryNotReady: a canary step's pods were not all Ready within
	// the progress deadline; the rollout was aborted.
	ReasonCanaryNotReady Reason = "CanaryNotReady"
	// ReasonAnalysisFailed: a canary step failed its analysis; the rollout
	// was aborted, the Service back on production alone.
	ReasonAnalysisFailed Reason = "AnalysisFailed"
	// ReasonApplyFailed: the API server refused an owned object (an
	// admission policy, a quota, a webhook, an invalid field).
	ReasonApplyFailed Reason = "ApplyFailed"
	// ReasonOwnershipConflict: an object the ModelDeployment would own (its
	// Service, its candidate...) exists and is controlled by something
	// else; the operator changes nothing until it is renamed or deleted.
	ReasonOwnershipConflict Reason = "OwnershipConflict"
	// ReasonKubernetesAPIError: a request to the Kubernetes API the
	// reconcile needs failed (a read, a delete, a status write); retried.
	ReasonKubernetesAPIError Reason = "KubernetesAPIError"
)

// RequestMetrics reasons.
const (
	// ReasonSidecarAdded: the pod template has the request-metrics sidecar.
	ReasonSidecarAdded Reason = "SidecarAdded"
	// ReasonSidecarImageMissing: the operator has no request-metrics image
	// (--request-metrics-image, MLFLOW_OPERATOR_IMAGE); the model serves
	// without the sidecar rather than not at all.
	ReasonSidecarImageMissing Reason = "SidecarImageMissing"
)

// Event-only reasons: transitions that have no condition of their own.
const (
	// ReasonPromoted: a verified candidate's version goes to production.
	ReasonPromoted Reason = "Promoted"
	// ReasonRolledBack: production went back to the last good version.
	ReasonRolledBack Reason = "RolledBack"
	// ReasonRetry: the retry annotation cleared a version's failure.
	ReasonRetry Reason = "Retry"
	// ReasonApproved: the approve annotation named the waiting version; it
	// is promoted.
	ReasonApproved Reason = "Approved"
)

// EventAction is what the operator was doing when it recorded an event (the
// events.k8s.io action field).
type EventAction string

const (
	ActionResolve  EventAction = "Resolve"
	ActionBuild    EventAction = "Build"
	ActionVerify   EventAction = "Verify"
	ActionPromote  EventAction = "Promote"
	ActionRollout  EventAction = "Rollout"
	ActionRollback EventAction = "Rollback"
	ActionRetry    EventAction = "Retry"
	ActionSuspend  EventAction = "Suspend"
	// ActionApprove: the approval gate held, or let through, a version.
	ActionApprove EventAction = "Approve"
	// ActionCanary: a Canary rollout moved to a step, or a step was
	// analysed.
	ActionCanary EventAction = "Canary"
	// ActionReconcile: a step of the reconcile failed and is retried.
	ActionReconcile EventAction = "Reconcile"
)

// HistoryOutcome is how a rollout attempt in status.history ended.
// +kubebuilder:validation:Enum=InProgress;Succeeded;Failed;RolledBack
type HistoryOutcome string

const (
	OutcomeInProgress HistoryOutcome = "InProgress"
	OutcomeSucceeded  HistoryOutcome = "Succeeded"
	OutcomeFailed     HistoryOutcome = "Failed"
	OutcomeRolledBack HistoryOutcome = "RolledBack"
)
