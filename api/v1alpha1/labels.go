package v1alpha1

// Annotations the operator reads.
const (
	// AnnotationRetry, set to a model version, asks the operator to deploy
	// that version again although it failed before.
	AnnotationRetry = "serving.mlflow-operator.io/retry-version"
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
	// LabelRole tells the production pods ("production") from a candidate's
	// ("candidate").
	LabelRole = "serving.mlflow-operator.io/role"
	// LabelModelVersion is the model version a pod serves.
	LabelModelVersion = "serving.mlflow-operator.io/model-version"
	// LabelRequestMetrics is "true" on pods with the request-metrics
	// sidecar: what a PodMonitor or a scrape config selects.
	LabelRequestMetrics = "serving.mlflow-operator.io/request-metrics"

	RoleProduction = "production"
	RoleCandidate  = "candidate"
)
