package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// The parts of ModelDeploymentSpec.

// ModelReference names a registered MLflow model and which of its versions
// to follow. Exactly one of alias, stage or version is set.
//
// +kubebuilder:validation:XValidation:rule="(has(self.alias) ? 1 : 0) + (has(self.stage) ? 1 : 0) + (has(self.version) ? 1 : 0) == 1",message="set exactly one of alias, stage or version"
type ModelReference struct {
	// Name of the registered model in the MLflow model registry, e.g. "iris".
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=256
	Name string `json:"name"`

	// Alias to follow, e.g. "champion": the operator deploys whichever version
	// the alias points at and follows it when it moves. MLflow reserves
	// "latest" and "v<number>".
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=255
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9_-]+$`
	// +kubebuilder:validation:XValidation:rule="self.lowerAscii() != 'latest' && !self.matches('^[vV][0-9]+$')",message="'latest' and 'v<number>' are reserved by MLflow and cannot be aliases"
	Alias string `json:"alias,omitempty"`

	// Stage to follow: the newest READY version in that stage. Stages are
	// deprecated in MLflow since 2.9 but still work; prefer aliases. Stage
	// transitions send no MLflow webhook, so they are noticed by polling.
	// +optional
	// +kubebuilder:validation:Enum=Staging;Production
	Stage string `json:"stage,omitempty"`

	// Version pins one model version, e.g. "3".
	// +optional
	// +kubebuilder:validation:MaxLength=20
	// +kubebuilder:validation:Pattern=`^[1-9][0-9]*$`
	Version string `json:"version,omitempty"`
}

// MLflowConnection says how to reach the MLflow tracking server.
type MLflowConnection struct {
	// TrackingURI is the http(s) URL of the MLflow tracking server, e.g.
	// "http://mlflow.mlflow.svc:5000". Servers since MLflow 3.5 check the Host
	// header: start them with --allowed-hosts naming this host.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="self.startsWith('http://') || self.startsWith('https://')",message="must be an http:// or https:// URL"
	// +kubebuilder:validation:XValidation:rule="isURL(self)",message="must be a valid URL"
	TrackingURI string `json:"trackingURI"`

	// CredentialsSecretRef names a Secret in the ModelDeployment's namespace
	// holding MLflow credentials, under the keys the MLflow Python client reads
	// from the environment: MLFLOW_TRACKING_USERNAME and
	// MLFLOW_TRACKING_PASSWORD (HTTP basic; wins when both kinds are set), or
	// MLFLOW_TRACKING_TOKEN (bearer).
	// +optional
	CredentialsSecretRef *corev1.LocalObjectReference `json:"credentialsSecretRef,omitempty"`

	// CASecretRef names a Secret in the ModelDeployment's namespace whose key
	// ca.crt holds the PEM bundle that signs the tracking server's certificate.
	// +optional
	CASecretRef *corev1.LocalObjectReference `json:"caSecretRef,omitempty"`

	// InsecureSkipTLSVerify turns off verification of the tracking server's
	// certificate (MLFLOW_TRACKING_INSECURE_TLS). For test setups only.
	// +optional
	InsecureSkipTLSVerify bool `json:"insecureSkipTLSVerify,omitempty"`

	// PollInterval is how often the registry is asked which version the model
	// reference means now (jittered). Webhooks make changes visible sooner;
	// polling stays on because webhooks can be lost. From 5s to 24h.
	// +optional
	// +kubebuilder:default="1m"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="self.matches('^([0-9]{1,5}(\\\\.[0-9]{1,9})?(ns|us|ms|s|m|h)){1,3}$')",message="must be a duration such as 30s, 5m or 1h30m (at most 3 parts of at most 5 digits)"
	// +kubebuilder:validation:XValidation:rule="!self.matches('^([0-9]{1,5}(\\\\.[0-9]{1,9})?(ns|us|ms|s|m|h)){1,3}$') || (duration(self) >= duration('5s') && duration(self) <= duration('24h'))",message="must be at least 5s and at most 24h"
	PollInterval *metav1.Duration `json:"pollInterval,omitempty"`
}

// DependencyPolicy says what to do when the base image lacks a package the
// model needs.
// +kubebuilder:validation:Enum=Warn;Enforce;Ignore
type DependencyPolicy string

const (
	// DependencyPolicyWarn reports missing or mismatched packages in the
	// DependenciesSatisfied condition and builds anyway.
	DependencyPolicyWarn DependencyPolicy = "Warn"
	// DependencyPolicyEnforce refuses to build an image whose base image does
	// not satisfy the model's requirements.
	DependencyPolicyEnforce DependencyPolicy = "Enforce"
	// DependencyPolicyIgnore skips the dependency check.
	DependencyPolicyIgnore DependencyPolicy = "Ignore"
)

// ImageSpec says how the serving image is assembled and where it is pushed.
// The image is the base image plus one layer holding the model at
// /opt/ml/model; it is built without a Docker daemon and deployed by digest.
type ImageSpec struct {
	// Repository the built images are pushed to, without a tag or digest, e.g.
	// "myregistry.azurecr.io/models/iris".
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=255
	// +kubebuilder:validation:XValidation:rule="!self.contains('@')",message="must not contain a digest: give the repository only, the operator pushes by tag and deploys by digest"
	// +kubebuilder:validation:XValidation:rule="!self.substring(self.lastIndexOf('/') + 1).contains(':')",message="must not contain a tag: give the repository only, the tag comes from tagTemplate"
	// +kubebuilder:validation:XValidation:rule="self.matches('^[A-Za-z0-9.-]+(:[0-9]+)?/[a-z0-9]+([._-][a-z0-9]+)*(/[a-z0-9]+([._-][a-z0-9]+)*)*$')",message="must be a repository like registry.example.com/team/model (registry host, then lower-case path components)"
	Repository string `json:"repository"`

	// BaseImage is the serving image the model layer is added to. It must
	// contain Python, MLflow and the model's own dependencies (see
	// dependencyPolicy), e.g. "myregistry.azurecr.io/serving/sklearn:1.6".
	// A digest reference ("...@sha256:...") makes builds reproducible.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=512
	// +kubebuilder:validation:XValidation:rule="self.matches('^[A-Za-z0-9.-]+(:[0-9]+)?(/[a-z0-9]+([._-][a-z0-9]+)*)+(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(@sha256:[a-f0-9]{64})?$') || self.matches('^[a-z0-9]+([._-][a-z0-9]+)*(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(@sha256:[a-f0-9]{64})?$')",message="must be an image reference like registry.example.com/serving/base:tag or ...@sha256:<digest>"
	BaseImage string `json:"baseImage"`

	// BaseImagePullSecretRef names a Secret in the ModelDeployment's namespace,
	// of type kubernetes.io/dockerconfigjson (or kubernetes.io/dockercfg), used
	// to pull the base image. Its entries match registries as the kubelet's
	// imagePullSecrets do (host, host/path, *.wildcard host); a registry it
	// does not list is pulled anonymously. Without it the pull is anonymous,
	// unless the operator's administrator grants this namespace the
	// operator's own registry identity for the base image's repository
	// (--operator-registry-credentials): the operator's Docker config and,
	// where turned on (--registry-cloud-identity), its Azure workload or
	// managed identity for Azure Container Registry, or Google credentials
	// for gcr.io and Artifact Registry.
	// +optional
	BaseImagePullSecretRef *corev1.LocalObjectReference `json:"baseImagePullSecretRef,omitempty"`

	// PushSecretRef names a Secret in the ModelDeployment's namespace, of type
	// kubernetes.io/dockerconfigjson (or kubernetes.io/dockercfg), used to
	// push to repository, matched as for baseImagePullSecretRef. Without it
	// the push is anonymous, unless the administrator grants this namespace
	// the operator's own registry identity for repository (as for
	// baseImagePullSecretRef).
	// +optional
	PushSecretRef *corev1.LocalObjectReference `json:"pushSecretRef,omitempty"`

	// TagTemplate forms the tag each model version is pushed under.
	// {name} is the registered model name (lower-cased, characters a tag cannot
	// hold replaced by '-'), {version} the model version. Images are deployed
	// by digest; the tag makes them findable and lets a rebuild be skipped.
	// +optional
	// +kubebuilder:default="{name}-v{version}"
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=100
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9_.{}-]+$`
	// +kubebuilder:validation:XValidation:rule="self.contains('{version}')",message="must contain {version} so that every model version gets its own tag"
	TagTemplate string `json:"tagTemplate,omitempty"`

	// DependencyPolicy says what happens when the base image's Python
	// packages do not satisfy the model's requirements.txt: Warn (build, and
	// report it in the DependenciesSatisfied condition), Enforce (refuse to
	// build) or Ignore (skip the check).
	// +optional
	// +kubebuilder:default=Warn
	DependencyPolicy DependencyPolicy `json:"dependencyPolicy,omitempty"`

	// InsecureRegistry allows plain HTTP (and unverified TLS) to the base
	// image's and the push repository's registries. For local registries only.
	// +optional
	InsecureRegistry bool `json:"insecureRegistry,omitempty"`
}

// ServingSpec shapes the pods that serve the model.
// +kubebuilder:validation:XValidation:rule="!has(self.requestMetrics) || !has(self.requestMetrics.enabled) || !self.requestMetrics.enabled || !has(self.requestMetrics.port) || self.requestMetrics.port != (has(self.port) ? self.port : 8080)",message="requestMetrics.port must differ from port: the metrics endpoint and the model server listen in the same pod",fieldPath=".requestMetrics.port"
type ServingSpec struct {
	// Port the MLflow scoring server listens on inside the pod, and the
	// Service's port. 1024 or above: the pods run without privileges.
	// +optional
	// +kubebuilder:default=8080
	// +kubebuilder:validation:Minimum=1024
	// +kubebuilder:validation:Maximum=65535
	Port int32 `json:"port,omitempty"`

	// Resources of the serving container. When no CPU request is given the
	// operator requests 250m CPU and 512Mi memory with a 1Gi memory limit, so
	// that CPU autoscaling has a request to measure against.
	// +optional
	Resources corev1.ResourceRequirements `json:"resources,omitempty"`

	// Env adds environment variables to the serving container.
	// +optional
	// +listType=map
	// +listMapKey=name
	Env []corev1.EnvVar `json:"env,omitempty"`

	// Command replaces the image's entrypoint. Default: the command the image
	// build writes, `mlflow models serve -m /opt/ml/model -h 0.0.0.0 -p <port>
	// --env-manager local` under a small process 1 (run by the base's
	// python3) that passes SIGTERM on, so the server stops gracefully. A
	// command given here is process 1 itself and must handle SIGTERM.
	// +optional
	Command []string `json:"command,omitempty"`

	// Args replaces the image's arguments.
	// +optional
	Args []string `json:"args,omitempty"`

	// PodLabels are added to the serving pods. Keys under
	// serving.mlflow-operator.io/ and app.kubernetes.io/ are the operator's.
	// +optional
	// +kubebuilder:validation:XValidation:rule="self.all(k, !k.startsWith('serving.mlflow-operator.io/') && !k.startsWith('app.kubernetes.io/'))",message="keys under serving.mlflow-operator.io/ and app.kubernetes.io/ are set by the operator"
	PodLabels map[string]string `json:"podLabels,omitempty"`

	// PodAnnotations are added to the serving pods.
	// +optional
	PodAnnotations map[string]string `json:"podAnnotations,omitempty"`

	// NodeSelector constrains the serving pods to nodes with these labels.
	// +optional
	NodeSelector map[string]string `json:"nodeSelector,omitempty"`

	// Tolerations of the serving pods.
	// +optional
	// +listType=atomic
	Tolerations []corev1.Toleration `json:"tolerations,omitempty"`

	// Affinity of the serving pods. The operator always adds a topology
	// spread over nodes (preferred, so one node still serves).
	// +optional
	Affinity *corev1.Affinity `json:"affinity,omitempty"`

	// ImagePullSecrets the kubelet uses to pull the built image.
	// +optional
	// +listType=atomic
	ImagePullSecrets []corev1.LocalObjectReference `json:"imagePullSecrets,omitempty"`

	// ServiceAccountName of the serving pods. Default: the namespace's
	// default service account, with its token not mounted.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	ServiceAccountName string `json:"serviceAccountName,omitempty"`

	// PriorityClassName of the serving pods.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	PriorityClassName string `json:"priorityClassName,omitempty"`

	// RequestMetrics adds the request-metrics sidecar to the serving pods: a
	// small proxy in front of the model server that counts and times its
	// requests (rate, latency, errors) and serves them for Prometheus on a
	// port of its own. The model server itself has no metrics endpoint.
	// +optional
	RequestMetrics RequestMetricsSpec `json:"requestMetrics,omitempty"`
}

// RequestMetricsSpec configures the request-metrics sidecar. It runs the
// operator's own image (its flag --request-metrics-image); an operator
// without one serves the model without the sidecar and says so in the
// RequestMetrics condition.
type RequestMetricsSpec struct {
	// Enabled adds the sidecar. The Service then sends the model's traffic
	// through it (the pods roll out once when this changes, without
	// downtime); the model container's probes still ask the model itself.
	// +optional
	Enabled bool `json:"enabled,omitempty"`

	// Port of the metrics endpoint (/metrics, named "metrics" on the pod),
	// for Prometheus. Not the serving port: the model's clients cannot
	// reach it through the Service. 1024 or above.
	// +optional
	// +kubebuilder:default=9102
	// +kubebuilder:validation:Minimum=1024
	// +kubebuilder:validation:Maximum=65535
	Port int32 `json:"port,omitempty"`
}

// ScalingSpec configures the HorizontalPodAutoscaler (autoscaling/v2) of the
// serving Deployment.
// +kubebuilder:validation:XValidation:rule="!has(self.minReplicas) || !has(self.maxReplicas) || self.minReplicas <= self.maxReplicas",message="minReplicas must not be greater than maxReplicas"
type ScalingSpec struct {
	// MinReplicas is the fewest serving pods.
	// +optional
	// +kubebuilder:default=3
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1000
	MinReplicas *int32 `json:"minReplicas,omitempty"`

	// MaxReplicas is the most serving pods.
	// +optional
	// +kubebuilder:default=10
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1000
	MaxReplicas *int32 `json:"maxReplicas,omitempty"`

	// TargetCPUUtilization is the average CPU use, in percent of the request,
	// the autoscaler aims at.
	// +optional
	// +kubebuilder:default=70
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100
	TargetCPUUtilization *int32 `json:"targetCPUUtilization,omitempty"`

	// TargetMemoryUtilization, when set, adds a memory target in percent of the
	// request.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100
	TargetMemoryUtilization *int32 `json:"targetMemoryUtilization,omitempty"`
}

// DisruptionSpec configures the PodDisruptionBudget. Set at most one field.
// When neither is set the budget keeps 2 pods available, or allows one
// eviction at a time when minReplicas is 2 or less, so that a node drain is
// never blocked.
// +kubebuilder:validation:XValidation:rule="!(has(self.minAvailable) && has(self.maxUnavailable))",message="set at most one of minAvailable and maxUnavailable"
type DisruptionSpec struct {
	// MinAvailable pods during voluntary disruptions: a number, or a
	// percentage below 100%.
	// +optional
	// +kubebuilder:validation:XIntOrString
	// +kubebuilder:validation:XValidation:rule="type(self) == int ? self >= 0 : self.matches('^([0-9]|[1-9][0-9])%$')",message="must be a non-negative number or a percentage below 100% (100% would block every eviction)"
	MinAvailable *intstr.IntOrString `json:"minAvailable,omitempty"`

	// MaxUnavailable pods during voluntary disruptions: a number of at least 1,
	// or a percentage above 0%.
	// +optional
	// +kubebuilder:validation:XIntOrString
	// +kubebuilder:validation:XValidation:rule="type(self) == int ? self >= 1 : self.matches('^([1-9][0-9]?|100)%$')",message="must be at least 1 or a percentage from 1% to 100% (0 would block every eviction)"
	MaxUnavailable *intstr.IntOrString `json:"maxUnavailable,omitempty"`
}

// NetworkPolicySpec configures the NetworkPolicy in front of the serving pods.
type NetworkPolicySpec struct {
	// Enabled makes the operator own a NetworkPolicy that admits traffic to the
	// serving port only, from allowFrom.
	// +optional
	// +kubebuilder:default=true
	Enabled *bool `json:"enabled,omitempty"`

	// AllowFrom are the peers admitted to the serving port. Empty means the
	// pods of the ModelDeployment's own namespace.
	// +optional
	// +listType=atomic
	AllowFrom []networkingv1.NetworkPolicyPeer `json:"allowFrom,omitempty"`

	// MetricsFrom are the peers admitted to the request-metrics port (see
	// serving.requestMetrics), e.g. the Prometheus pods. Empty means every
	// pod of every namespace: the endpoint serves only request counts and
	// latencies by path and status code, no request content. Set it to
	// your Prometheus to admit nothing else.
	// +optional
	// +listType=atomic
	MetricsFrom []networkingv1.NetworkPolicyPeer `json:"metricsFrom,omitempty"`
}

// SmokeTestSpec configures the request a candidate must answer before it is
// promoted.
// +kubebuilder:validation:XValidation:rule="!(has(self.required) && self.required && has(self.enabled) && !self.enabled)",message="required needs the smoke test enabled"
type SmokeTestSpec struct {
	// Enabled runs the smoke test. Without it a candidate is promoted once its
	// pod is Ready (CandidateVerified then says ReadinessOnly).
	// +optional
	// +kubebuilder:default=true
	Enabled *bool `json:"enabled,omitempty"`

	// Required refuses to promote a version no request can be sent to: when
	// the model was logged without an input example and request is empty,
	// the version is marked failed (reason NoSmokeTestRequest) instead of
	// being promoted on its readiness alone.
	// +optional
	Required bool `json:"required,omitempty"`

	// Request is the JSON body POSTed to the candidate. Default: the model's
	// own serving_input_example.json.
	// +optional
	// +kubebuilder:validation:MaxLength=65536
	Request string `json:"request,omitempty"`

	// Path the request is POSTed to.
	// +optional
	// +kubebuilder:default="/invocations"
	// +kubebuilder:validation:Pattern=`^/[A-Za-z0-9/_.~-]*$`
	// +kubebuilder:validation:MaxLength=256
	Path string `json:"path,omitempty"`

	// Timeout of the smoke test request, from 1s to 5m.
	// +optional
	// +kubebuilder:default="30s"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="self.matches('^([0-9]{1,5}(\\\\.[0-9]{1,9})?(ns|us|ms|s|m|h)){1,3}$')",message="must be a duration such as 30s, 5m or 1h30m (at most 3 parts of at most 5 digits)"
	// +kubebuilder:validation:XValidation:rule="!self.matches('^([0-9]{1,5}(\\\\.[0-9]{1,9})?(ns|us|ms|s|m|h)){1,3}$') || (duration(self) >= duration('1s') && duration(self) <= duration('5m'))",message="must be at least 1s and at most 5m"
	Timeout *metav1.Duration `json:"timeout,omitempty"`
}

// RolloutSpec configures how a new version reaches production.
// +kubebuilder:validation:XValidation:rule="!has(self.blueGreen) || self.strategy == 'BlueGreen'",message="blueGreen is only read with strategy: BlueGreen; remove it or set the strategy"
// +kubebuilder:validation:XValidation:rule="!has(self.canary) || self.strategy == 'Canary'",message="canary is only read with strategy: Canary; remove it or set the strategy"
type RolloutSpec struct {
	// ProgressDeadline is how long a candidate may take to become Ready and a
	// rollout may go without progress before the version is marked failed.
	// From 10s to 24h.
	// +optional
	// +kubebuilder:default="10m"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="self.matches('^([0-9]{1,5}(\\\\.[0-9]{1,9})?(ns|us|ms|s|m|h)){1,3}$')",message="must be a duration such as 30s, 5m or 1h30m (at most 3 parts of at most 5 digits)"
	// +kubebuilder:validation:XValidation:rule="!self.matches('^([0-9]{1,5}(\\\\.[0-9]{1,9})?(ns|us|ms|s|m|h)){1,3}$') || (duration(self) >= duration('10s') && duration(self) <= duration('24h'))",message="must be at least 10s and at most 24h"
	ProgressDeadline *metav1.Duration `json:"progressDeadline,omitempty"`

	// SmokeTest is the request a one-replica candidate must answer before a
	// new version replaces the serving one.
	// +optional
	// +kubebuilder:default={}
	SmokeTest SmokeTestSpec `json:"smokeTest,omitempty"`

	// AutoRollback puts the last good version back when a rollout fails.
	// +optional
	// +kubebuilder:default=true
	AutoRollback *bool `json:"autoRollback,omitempty"`

	// Strategy is how a verified version replaces the serving one.
	// RollingUpdate: a one-replica candidate is verified, then the
	// production Deployment's pods are replaced a maxSurge at a time; a
	// rollback starts the old version's pods again. BlueGreen: the new
	// version's whole set starts beside production, unexposed, and is
	// verified there; the Service then switches to it at once, and the old
	// set is kept for blueGreen.scaleDownDelay, so that going back to it
	// (a rollback, or the model reference moved back) is a switch of the
	// Service, without starting a pod. BlueGreen runs twice the pods while
	// a new version is verified and for the delay after the switch (mind
	// the namespace's quota). Canary: a small set of the new version starts
	// beside production, unexposed, and is verified; it then takes a
	// growing share of the Service's pods in canary.steps, each held for
	// its pause and checked by canary.analysis, and the Service switches
	// to it after the last step, the old set kept as for BlueGreen; a
	// failed step or a failing canary pod puts the Service back on
	// production alone.
	// +optional
	// +kubebuilder:default=RollingUpdate
	Strategy RolloutStrategy `json:"strategy,omitempty"`

	// BlueGreen tunes the BlueGreen strategy; only with strategy BlueGreen.
	// +optional
	BlueGreen *BlueGreenSpec `json:"blueGreen,omitempty"`

	// Canary tunes the Canary strategy; only with strategy Canary.
	// +optional
	Canary *CanarySpec `json:"canary,omitempty"`

	// MaxSurge is how many pods of the new version the production
	// Deployment may start above the wanted count during a rollout (no pod
	// of the old one stops before a new one is Ready): a number of at least
	// 1, or a percentage from 1% to 100%. 25% replaces the pods a quarter at
	// a time; 100% starts the whole new set at once beside the old one, the
	// fastest rollout, for twice the pods for its duration (mind the
	// namespace's quota). RollingUpdate only: BlueGreen starts the whole
	// set.
	// +optional
	// +kubebuilder:default="25%"
	// +kubebuilder:validation:XIntOrString
	// +kubebuilder:validation:XValidation:rule="type(self) == int ? self >= 1 : self.matches('^([1-9][0-9]?|100)%$')",message="must be at least 1 or a percentage from 1% to 100% (0 would never start a new pod: the old ones stay until new ones are Ready)"
	MaxSurge *intstr.IntOrString `json:"maxSurge,omitempty"`

	// HistoryLimit is how many rollouts status.history keeps.
	// +optional
	// +kubebuilder:default=10
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100
	HistoryLimit *int32 `json:"historyLimit,omitempty"`

	// Approval says who promotes a verified version. Automatic: the
	// operator, as soon as its candidate passed verification. Manual: a
	// person; the verified version waits (status.awaitingApproval, Ready
	// False with reason AwaitingApproval), its candidate still running,
	// until the annotation serving.mlflow-operator.io/approve names it, or
	// serving.mlflow-operator.io/abort rejects it. The first version of a
	// ModelDeployment, with nothing in production yet, does not wait.
	// +optional
	// +kubebuilder:default=Automatic
	Approval ApprovalPolicy `json:"approval,omitempty"`
}

// ApprovalPolicy says who promotes a verified version.
// +kubebuilder:validation:Enum=Automatic;Manual
type ApprovalPolicy string

const (
	// ApprovalAutomatic promotes a version as soon as it is verified.
	ApprovalAutomatic ApprovalPolicy = "Automatic"
	// ApprovalManual holds a verified version until a person approves or
	// aborts it with an annotation.
	ApprovalManual ApprovalPolicy = "Manual"
)
