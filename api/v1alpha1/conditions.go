package v1alpha1

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
)

// Condition reasons. Events use the same PascalCase words.
const (
	ReasonSucceeded   = "Succeeded"
	ReasonProgressing = "Progressing"
	ReasonSuspended   = "Suspended"

	// Resolution.
	ReasonResolving          = "Resolving"
	ReasonResolved           = "Resolved"
	ReasonModelNotFound      = "ModelNotFound"
	ReasonAliasNotFound      = "AliasNotFound"
	ReasonStageEmpty         = "StageEmpty"
	ReasonVersionNotFound    = "VersionNotFound"
	ReasonVersionNotReady    = "VersionNotReady"
	ReasonMLflowUnreachable  = "MLflowUnreachable"
	ReasonMLflowUnauthorized = "MLflowUnauthorized"
	ReasonMLflowError        = "MLflowError"
	ReasonResolverMissing    = "ResolverMissing"

	// Image.
	ReasonBuilding       = "Building"
	ReasonPushed         = "Pushed"
	ReasonBuildFailed    = "BuildFailed"
	ReasonBuilderMissing = "BuilderMissing"

	// Workload.
	ReasonApplyFailed        = "ApplyFailed"
	ReasonRollingOut         = "RollingOut"
	ReasonRolloutComplete    = "RolloutComplete"
	ReasonDeploymentNotReady = "DeploymentNotReady"
	ReasonProgressDeadline   = "ProgressDeadlineExceeded"
	ReasonWaitingForImage    = "WaitingForImage"
	ReasonInvalidSpec        = "InvalidSpec"
)

// Annotations the operator reads.
const (
	// AnnotationRetry, set to a model version, asks the operator to deploy
	// that version again although it failed before.
	AnnotationRetry = "serving.mlflow-operator.io/retry-version"
)

// Labels the operator puts on the objects it owns.
const (
	// LabelName is the ModelDeployment's name.
	LabelName = "serving.mlflow-operator.io/modeldeployment"
	// LabelRole tells the production pods ("production") from a candidate's
	// ("candidate").
	LabelRole = "serving.mlflow-operator.io/role"
	// LabelModelVersion is the model version a pod serves.
	LabelModelVersion = "serving.mlflow-operator.io/model-version"

	RoleProduction = "production"
	RoleCandidate  = "candidate"
)
