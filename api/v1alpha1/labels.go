package v1alpha1

// Annotations the operator reads.
const (
	// AnnotationRetry, set to a model version, asks the operator to deploy
	// that version again although it failed before.
	AnnotationRetry = "serving.mlflow-operator.io/retry-version"

	// AnnotationApprove, set to the version status.awaitingApproval names,
	// promotes it (spec.rollout.approval: Manual). The value is the version,
	// optionally followed by '@' and anything (a time, a name): a value acts
	// once (status.lastApproval), and a new suffix approves the same
	// version again should it wait again. A value naming another version
	// does nothing, so a stale approval never promotes a later version.
	AnnotationApprove = "serving.mlflow-operator.io/approve"
	// AnnotationAbort, set like AnnotationApprove, rejects the waiting
	// version: it is recorded in status.failedVersions (reason Aborted), its
	// candidate deleted, production left as it is.
	AnnotationAbort = "serving.mlflow-operator.io/abort"

	// AnnotationReconcileRequestedAt is Flux's reconcile request (set by
	// the flux CLI on Flux's objects, or by anyone with kubectl annotate):
	// each new value makes the operator drop the answer it cached about the
	// model, ask MLflow again and reconcile now. The value handled is
	// recorded in status.lastHandledReconcileAt.
	AnnotationReconcileRequestedAt = "reconcile.fluxcd.io/requestedAt"

	// MaxHandledValue bounds the annotation values recorded in status
	// (lastApproval, lastAbort, lastHandledReconcileAt): the first 256
	// bytes of a value are recorded and compared, so a longer value is
	// handled once, as its first 256 bytes.
	MaxHandledValue = 256
)

// Annotations the operator puts on the serving pods.
const (
	// AnnotationModelName is the registered MLflow model a pod serves, on
	// pods with the request-metrics sidecar: an annotation, as a model name
	// may be longer than a label value, or hold characters one cannot.
	// Prometheus relabels it into the model label of the request metrics.
	AnnotationModelName = "serving.mlflow-operator.io/model-name"
)

// Labels the operator puts on the objects it owns.
const (
	// LabelName is the ModelDeployment's name.
	LabelName = "serving.mlflow-operator.io/modeldeployment"
	// LabelRole tells the pods of the Deployment named like the
	// ModelDeployment ("production") from a candidate's ("candidate") and
	// from those of BlueGreen's two sets ("blue", "green"); the Service
	// selects the role of status.activeSlot.
	LabelRole = "serving.mlflow-operator.io/role"
	// LabelModelVersion is the model version a pod serves.
	LabelModelVersion = "serving.mlflow-operator.io/model-version"
	// LabelRequestMetrics is "true" on pods with the request-metrics
	// sidecar: what a PodMonitor or a scrape config selects.
	LabelRequestMetrics = "serving.mlflow-operator.io/request-metrics"

	RoleProduction = "production"
	RoleCandidate  = "candidate"
)
