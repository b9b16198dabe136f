package v1alpha1

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
