package v1alpha1

import (
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// Defaults. The API server applies them from the CRD's schema; the getters
// below apply them again so that code given an object that never passed
// through the API server (a unit test, an old stored object) behaves the same.
const (
	DefaultPort                 int32 = 8080
	DefaultRequestMetricsPort   int32 = 9102
	DefaultMinReplicas          int32 = 3
	DefaultMaxReplicas          int32 = 10
	DefaultTargetCPUUtilization int32 = 70
	DefaultMinAvailable         int32 = 2
	DefaultHistoryLimit         int32 = 10
	DefaultPollInterval               = time.Minute
	DefaultProgressDeadline           = 10 * time.Minute
	DefaultSmokeTestTimeout           = 30 * time.Second
	DefaultSmokeTestPath              = "/invocations"
	DefaultMaxSurge                   = "25%"
	DefaultScaleDownDelay             = 30 * time.Second
	MaxScaleDownDelay                 = 24 * time.Hour
	// The bounds the CRD enforces; the getters clamp to them too, for an
	// object stored before the bounds existed.
	MinPollInterval     = 5 * time.Second
	MaxPollInterval     = 24 * time.Hour
	MaxProgressDeadline = 24 * time.Hour
	MaxSmokeTestTimeout = 5 * time.Minute
	DefaultTagTemplate  = "{name}-v{version}"
)

func int32Or(p *int32, def int32) int32 {
	if p == nil {
		return def
	}
	return *p
}

func boolOr(p *bool, def bool) bool {
	if p == nil {
		return def
	}
	return *p
}

func durationOr(d *metav1.Duration, def time.Duration) time.Duration {
	if d == nil || d.Duration <= 0 {
		return def
	}
	return d.Duration
}

// ServingPort is the port of the scoring server.
func (s *ModelDeploymentSpec) ServingPort() int32 {
	if s.Serving.Port == 0 {
		return DefaultPort
	}
	return s.Serving.Port
}

// RequestMetricsEnabled tells whether the serving pods get the
// request-metrics sidecar.
func (s *ModelDeploymentSpec) RequestMetricsEnabled() bool {
	return s.Serving.RequestMetrics.Enabled
}

// RequestMetricsPort is the port of the sidecar's metrics endpoint.
func (s *ModelDeploymentSpec) RequestMetricsPort() int32 {
	if s.Serving.RequestMetrics.Port == 0 {
		return DefaultRequestMetricsPort
	}
	return s.Serving.RequestMetrics.Port
}

// RequestMetricsTrafficPort is the port the sidecar takes the model's
// traffic on: 9101, or the next port above it that is neither the serving
// port nor the metrics port. Chosen, not configured: nobody calls it by
// number (the Service and the NetworkPolicy name it), and so no spec can
// make it collide.
func (s *ModelDeploymentSpec) RequestMetricsTrafficPort() int32 {
	p := int32(9101)
	for p == s.ServingPort() || p == s.RequestMetricsPort() {
		p++
	}
	return p
}

// MinReplicas is the fewest serving pods.
func (s *ModelDeploymentSpec) MinReplicas() int32 {
	return int32Or(s.Scaling.MinReplicas, DefaultMinReplicas)
}

// MaxReplicas is the most serving pods, never below MinReplicas.
func (s *ModelDeploymentSpec) MaxReplicas() int32 {
	return max(int32Or(s.Scaling.MaxReplicas, DefaultMaxReplicas), s.MinReplicas())
}

// TargetCPUUtilization is the autoscaler's CPU target in percent.
func (s *ModelDeploymentSpec) TargetCPUUtilization() int32 {
	return int32Or(s.Scaling.TargetCPUUtilization, DefaultTargetCPUUtilization)
}

// NetworkPolicyEnabled tells whether the operator owns a NetworkPolicy.
func (s *ModelDeploymentSpec) NetworkPolicyEnabled() bool {
	return boolOr(s.NetworkPolicy.Enabled, true)
}

// PollInterval is how often the registry is polled.
func (s *ModelDeploymentSpec) PollInterval() time.Duration {
	return min(max(durationOr(s.MLflow.PollInterval, DefaultPollInterval), MinPollInterval), MaxPollInterval)
}

// ProgressDeadline bounds a candidate's start and a rollout without progress.
func (s *ModelDeploymentSpec) ProgressDeadline() time.Duration {
	return min(durationOr(s.Rollout.ProgressDeadline, DefaultProgressDeadline), MaxProgressDeadline)
}

// SmokeTestEnabled tells whether a candidate must answer a request.
func (s *ModelDeploymentSpec) SmokeTestEnabled() bool {
	return boolOr(s.Rollout.SmokeTest.Enabled, true)
}

// SmokeTestTimeout bounds the smoke test request.
func (s *ModelDeploymentSpec) SmokeTestTimeout() time.Duration {
	return min(durationOr(s.Rollout.SmokeTest.Timeout, DefaultSmokeTestTimeout), MaxSmokeTestTimeout)
}

// SmokeTestPath is where the smoke test request goes.
func (s *ModelDeploymentSpec) SmokeTestPath() string {
	if s.Rollout.SmokeTest.Path == "" {
		return DefaultSmokeTestPath
	}
	return s.Rollout.SmokeTest.Path
}

// AutoRollback tells whether a failed rollout returns to the last good version.
func (s *ModelDeploymentSpec) AutoRollback() bool {
	return boolOr(s.Rollout.AutoRollback, true)
}

// MaxSurge is the production Deployment's maxSurge: 25% when unset.
func (s *ModelDeploymentSpec) MaxSurge() intstr.IntOrString {
	if s.Rollout.MaxSurge == nil {
		return intstr.FromString(DefaultMaxSurge)
	}
	return *s.Rollout.MaxSurge
}

// ApprovalRequired tells whether a verified version waits for a person
// before promotion.
func (s *ModelDeploymentSpec) ApprovalRequired() bool {
	return s.Rollout.Approval == ApprovalManual
}

// HistoryLimit is how many rollouts status.history keeps.
func (s *ModelDeploymentSpec) HistoryLimit() int32 {
	return int32Or(s.Rollout.HistoryLimit, DefaultHistoryLimit)
}

// TagTemplate forms the tag of a built image.
func (s *ModelDeploymentSpec) TagTemplate() string {
	if s.Image.TagTemplate == "" {
		return DefaultTagTemplate
	}
	return s.Image.TagTemplate
}

// DependencyPolicy of the image build.
func (s *ModelDeploymentSpec) DependencyPolicyOrDefault() DependencyPolicy {
	if s.Image.DependencyPolicy == "" {
		return DependencyPolicyWarn
	}
	return s.Image.DependencyPolicy
}

// Following describes what the model reference follows, e.g. "@champion",
// "stage Production" or "version 3".
func (m ModelReference) Following() string {
	switch {
	case m.Alias != "":
		return "@" + m.Alias
	case m.Stage != "":
		return "stage " + m.Stage
	default:
		return "version " + m.Version
	}
}
