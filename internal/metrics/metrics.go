// Package metrics defines the operator's Prometheus metrics and registers
// them in controller-runtime's registry (sigs.k8s.io/controller-runtime/pkg/metrics.Registry),
// which the manager serves on its metrics endpoint next to controller-runtime's
// own. It is the one package that knows Prometheus: the adapters that record
// (internal/builds, internal/resolver, internal/webhook, the controllers)
// call the functions below with values of a fixed vocabulary, so no label
// can take unbounded values. Only the three per-object gauges
// (ModelDeployment info, Ready, Stalled) carry an object's namespace and
// name, and Forget removes them when the object goes.
//
// docs/operations.md lists every metric; test/monitoring checks the
// exposition with `promtool check metrics` and that the shipped alerts and
// dashboard name only metrics defined here.
package metrics

import (
	"maps"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	crmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/mlflow-operator/mlflow-operator/internal/failure"
)

// Namespace prefixes every metric name.
const Namespace = "mlflow_operator"

// Build results: how a build of a model version's image ended.
const (
	BuildPushed   = "pushed"   // built and pushed
	BuildReused   = "reused"   // the registry held it already: nothing pushed (image reuse)
	BuildFailed   = "failed"   // failed; retried with backoff
	BuildCanceled = "canceled" // superseded, its object deleted, or the operator stopping
)

// Webhook delivery results.
const (
	DeliveryAccepted     = "accepted"      // verified; the ModelDeployments following the model reconcile
	DeliveryUnknownModel = "unknown_model" // verified, but no ModelDeployment follows the model
	DeliveryRelayed      = "relayed"       // verified by a standby and handed to the leader
	DeliveryIgnored      = "ignored"       // verified; an event that cannot change a resolution
	DeliveryBadSignature = "bad_signature" // the signature does not match the secret
	DeliveryStale        = "stale"         // the timestamp is outside the accepted window
	DeliveryReplayed     = "replayed"      // a delivery id already received
	DeliveryBusy         = "busy"          // too many deliveries in the replay window; the sender retries
	DeliveryInvalid      = "invalid"       // not a POST, headers missing, body too large or not a payload
	DeliveryError        = "error"         // verified, but listing or relaying failed; the sender retries
)

// Resolution sources.
const (
	SourceMLflow = "mlflow" // the registry was asked
	SourceCache  = "cache"  // an answer shared from another ModelDeployment's request
	SourceConfig = "config" // the connection could not be set up (a credentials Secret, a CA): nothing was asked
)

// Rollout outcomes: how a rollout attempt (a history entry) ended.
const (
	RolloutSucceeded  = "succeeded"   // the version serves on every replica
	RolloutFailed     = "failed"      // the candidate or the rollout failed; production was not changed or stayed
	RolloutRolledBack = "rolled_back" // production went back to the last good version
)

// Promotion triggers: how the operator learnt of the registry change.
const (
	TriggerWebhook = "webhook"
	TriggerPoll    = "poll"
)

var (
	builds = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Name: "builds_total",
		Help: "Image builds finished, by result: pushed, reused (the registry held the image: image reuse), failed, canceled.",
	}, []string{"result"})
	buildSeconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: Namespace, Name: "build_duration_seconds",
		Help:    "Time an image build took once a worker started it (registry lookup, download, dependency check, build, push), by result.",
		Buckets: []float64{1, 5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600},
	}, []string{"result"})
	pushedBytes = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: Namespace, Name: "build_pushed_bytes_total",
		Help: "Bytes of request bodies sent to image registries by pushes (layers and manifests; blobs the registry held already are not sent).",
	})
	resolutions = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Name: "resolutions_total",
		Help: "Answers to which version a model reference means, by result (resolved or the failure's kind) and source (mlflow: the registry was asked; cache: a shared answer; config: the credentials or CA could not be read).",
	}, []string{"result", "source"})
	mlflowRequests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Name: "mlflow_requests_total",
		Help: "HTTP requests to MLflow tracking servers and artifact hosts (every try), by operation and code (the HTTP status, or error when no answer came).",
	}, []string{"operation", "code"})
	mlflowSeconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: Namespace, Name: "mlflow_request_duration_seconds",
		Help:    "Time from sending an HTTP request to MLflow to its answer's headers (or its failure), by operation.",
		Buckets: []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30},
	}, []string{"operation"})
	deliveries = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Name: "webhook_deliveries_total",
		Help: "MLflow webhook deliveries received by this replica, by result.",
	}, []string{"result"})
	rollouts = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Name: "rollouts_total",
		Help: "Rollout attempts ended, by outcome: succeeded, failed (candidate or rollout failed; the version is held), rolled_back.",
	}, []string{"outcome"})
	rollbacks = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Name: "rollbacks_total",
		Help: "Rollbacks of production to the last good version, by reason.",
	}, []string{"reason"})
	held = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Name: "versions_held_total",
		Help: "Model versions recorded as failed (status.failedVersions): not deployed again until a new version, a spec change or the retry annotation; by reason.",
	}, []string{"reason"})
	promotionSeconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: Namespace, Name: "promotion_duration_seconds",
		Help:    "Time from a model registry change (the webhook's timestamp, or when polling first saw it) to the ModelDeployment being Ready with that version, by trigger.",
		Buckets: []float64{5, 10, 15, 30, 60, 120, 180, 300, 600, 900, 1200, 1800, 3600},
	}, []string{"trigger"})
	info = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: Namespace, Name: "modeldeployment_info",
		Help: "1 per ModelDeployment: the registered model it follows, the version serving and its image digest (empty while nothing serves).",
	}, []string{"namespace", "name", "model", "version", "image_digest"})
	ready = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: Namespace, Name: "modeldeployment_ready",
		Help: "1 when the ModelDeployment's Ready condition is True, else 0.",
	}, []string{"namespace", "name"})
	eventsDropped = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Name: "events_dropped_total",
		Help: "Kubernetes Events the operator recorded but did not write, by reason: queue_full (the API server fell behind), refused (the API server refused or did not answer the write).",
	}, []string{"reason"})
	stalled = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: Namespace, Name: "modeldeployment_stalled",
		Help: "1 when the ModelDeployment's Stalled condition is True (it cannot progress without a change), else 0.",
	}, []string{"namespace", "name"})
)

// collectors is every metric of the package, registered once.
var collectors = []prometheus.Collector{builds, buildSeconds, pushedBytes, resolutions, mlflowRequests, mlflowSeconds,
	deliveries, rollouts, rollbacks, held, promotionSeconds, info, ready, stalled, eventsDropped}

// RollbackReasons and HeldReasons are the reasons a rollback or a held
// version is recorded with (the condition reasons internal/rollout decides).
var (
	RollbackReasons = []string{"ProgressDeadlineExceeded", "PodsFailing", "VersionFailed"}
	HeldReasons     = []string{"CandidateFailed", "CandidateNotReady", "SmokeTestFailed", "NoSmokeTestRequest",
		"ProgressDeadlineExceeded", "PodsFailing", "VersionFailed"}
)

func init() {
	crmetrics.Registry.MustRegister(collectors...)
	// The series the alerts take increase() of exist from the start, at
	// zero, for every value their labels are known to take. Prometheus does
	// not assume that a series it first sees at 1 started from 0: without
	// this, the first rollback after the operator (re)started would show no
	// increase, and alert no one.
	for _, r := range []string{BuildPushed, BuildReused, BuildFailed, BuildCanceled} {
		builds.WithLabelValues(r)
	}
	for _, r := range []string{EventQueueFull, EventRefused} {
		eventsDropped.WithLabelValues(r)
	}
	for _, o := range []string{RolloutSucceeded, RolloutFailed, RolloutRolledBack} {
		rollouts.WithLabelValues(o)
	}
	for _, r := range RollbackReasons {
		rollbacks.WithLabelValues(r)
	}
	for _, r := range HeldReasons {
		held.WithLabelValues(r)
	}
	resolutions.WithLabelValues("unreachable", SourceMLflow)
	for _, t := range []string{TriggerWebhook, TriggerPoll} {
		promotionSeconds.WithLabelValues(t)
	}
}

// BuildFinished records a build's result, how long it ran and the bytes
// its push sent.
func BuildFinished(result string, d time.Duration, bytesPushed int64) {
	builds.WithLabelValues(result).Inc()
	buildSeconds.WithLabelValues(result).Observe(d.Seconds())
	if bytesPushed > 0 {
		pushedBytes.Add(float64(bytesPushed))
	}
}

// Resolved records an answer to a resolution: err nil is "resolved", else
// the failure's kind.
func Resolved(err error, source string) {
	resolutions.WithLabelValues(Result(err), source).Inc()
}

// Result is the result label of an error: "resolved" for nil, else the
// failure kind in snake case (not_found, not_ready, unauthorized,
// unreachable, invalid, refused), "error" for anything else.
func Result(err error) string {
	if err == nil {
		return "resolved"
	}
	f, ok := failure.As(err)
	if !ok {
		return "error"
	}
	switch f.Kind {
	case failure.NotFound:
		return "not_found"
	case failure.NotReady:
		return "not_ready"
	case failure.Unauthorized:
		return "unauthorized"
	case failure.Unreachable:
		return "unreachable"
	case failure.Invalid:
		return "invalid"
	case failure.Refused:
		return "refused"
	}
	return "error"
}

// MLflowRequest records one HTTP request to MLflow: status 0 means no
// answer came. Its signature is the MLflow client's request observer's.
func MLflowRequest(operation string, status int, d time.Duration) {
	code := "error"
	if status > 0 {
		code = strconv.Itoa(status)
	}
	mlflowRequests.WithLabelValues(operation, code).Inc()
	mlflowSeconds.WithLabelValues(operation).Observe(d.Seconds())
}

// Delivery records a webhook delivery's result.
func Delivery(result string) { deliveries.WithLabelValues(result).Inc() }

// RolloutEnded records how a rollout attempt ended.
func RolloutEnded(outcome string) { rollouts.WithLabelValues(outcome).Inc() }

// RolledBack records a rollback and its reason (a condition reason).
func RolledBack(reason string) { rollbacks.WithLabelValues(reason).Inc() }

// VersionHeld records a version recorded as failed and its reason (a
// condition reason).
func VersionHeld(reason string) { held.WithLabelValues(reason).Inc() }

// Why a Kubernetes Event was not written (EventDropped).
const (
	EventQueueFull = "queue_full"
	EventRefused   = "refused"
)

// EventDropped counts an Event recorded but not written.
func EventDropped(reason string) { eventsDropped.WithLabelValues(reason).Inc() }

// Promoted records the time from a registry change to Ready.
func Promoted(trigger string, d time.Duration) {
	promotionSeconds.WithLabelValues(trigger).Observe(d.Seconds())
}

// State is what the per-object gauges show of one ModelDeployment.
type State struct {
	Namespace, Name string
	// Model is the registered model followed; Version and ImageDigest what
	// serves (empty while nothing does).
	Model, Version, ImageDigest string
	Ready, Stalled              bool
}

// infoLabels is the info series each object has now, so that a change
// replaces it: the new series is set before the old one goes, and a scrape
// never sees the object without one.
var (
	infoMu     sync.Mutex
	infoLabels = map[[2]string]prometheus.Labels{}
)

// Observe sets a ModelDeployment's info, Ready and Stalled series; the info
// series of what served before goes.
func Observe(s State) {
	key := [2]string{s.Namespace, s.Name}
	obj := prometheus.Labels{"namespace": s.Namespace, "name": s.Name}
	current := prometheus.Labels{"namespace": s.Namespace, "name": s.Name, "model": s.Model, "version": s.Version, "image_digest": s.ImageDigest}
	infoMu.Lock()
	info.With(current).Set(1)
	if old, ok := infoLabels[key]; ok && !maps.Equal(old, current) {
		info.Delete(old)
	}
	infoLabels[key] = current
	ready.With(obj).Set(b2f(s.Ready))
	stalled.With(obj).Set(b2f(s.Stalled))
	infoMu.Unlock()
}

// Forget removes every series of a ModelDeployment (it was deleted, or the
// operator stopped reconciling it).
func Forget(namespace, name string) {
	obj := prometheus.Labels{"namespace": namespace, "name": name}
	infoMu.Lock()
	delete(infoLabels, [2]string{namespace, name})
	info.DeletePartialMatch(obj)
	ready.Delete(obj)
	stalled.Delete(obj)
	infoMu.Unlock()
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
