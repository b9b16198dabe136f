// Package controllers holds the ModelDeployment reconciler and its wiring: a
// short skeleton (this file) that runs an ordered list of steps, one file per
// step, and Setup. The adapters it drives (MLflow resolution, image builds,
// webhooks, smoke tests) live under internal/; docs/development.md draws the
// flow and the package rules.
package controllers

import (
	"context"
	"fmt"
	"time"

	"github.com/go-logr/logr"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	v1alpha1 "github.com/mlflow-operator/mlflow-operator/api/v1alpha1"
	"github.com/mlflow-operator/mlflow-operator/internal/metrics"
	"github.com/mlflow-operator/mlflow-operator/internal/rollout"
	"github.com/mlflow-operator/mlflow-operator/internal/smoketest"
	"github.com/mlflow-operator/mlflow-operator/internal/status"
	"github.com/mlflow-operator/mlflow-operator/internal/text"
)

// ModelDeploymentReconciler reconciles ModelDeployments.
type ModelDeploymentReconciler struct {
	client.Client
	// Cache reads the ModelDeployment at the start of a reconcile (the
	// manager's cache, which holds them unstructured; SetupWithManager sets
	// it). APIReader reads it from the API server itself while the cached
	// copy may lag behind this operator's own last status write (see
	// freshness); the client when nil.
	Cache     client.Reader
	APIReader client.Reader
	fresh     *freshness
	Recorder  events.EventRecorder

	// Resolver asks the model registry which version to serve. Nil means this
	// build has no registry client: ModelResolved then says so.
	Resolver Resolver
	// Images gives the image of a model version. Nil means this build has no
	// image builder: ImageReady then says so.
	Images ImageProvider

	// OperatorPeer, when set, is added to every NetworkPolicy's allowed
	// peers: the operator's own pods, which smoke-test candidates.
	OperatorPeer *networkingv1.NetworkPolicyPeer

	// RequestMetricsImage is the image of the request-metrics sidecar
	// (requestmetrics.go). Empty: no sidecar, whatever the spec asks.
	RequestMetricsImage string

	// Examples gives a model version's smoke test request; SmokeTester sends
	// it (smoketest.HTTP when nil).
	Examples    ExampleSource
	SmokeTester SmokeTester

	// Triggers, when set, makes the ModelDeployments sent on it reconcile
	// now (MLflow webhooks, finished builds).
	Triggers <-chan event.GenericEvent

	// Prometheus answers the PromQL queries of canary analyses: the
	// server the administrator configured (--analysis-prometheus-url);
	// nil when none is, and a query then fails its step.
	Prometheus MetricsQuerier

	// Notifier, when set, hears every event recorded on a ModelDeployment
	// (notifications to Slack, Teams, webhooks).
	Notifier Notifier

	// Clock; the real one when nil.
	Clock clock.PassiveClock
	// MaxConcurrentReconciles; 1 when zero.
	MaxConcurrentReconciles int

	// smokes runs smoke tests away from the reconcile workers
	// (SetupWithManager makes it).
	smokes *smoketest.Runner[rollout.Smoke]
	// analyses runs canary step analyses the same way.
	analyses *smoketest.Runner[rollout.Analysis]

	// changes are the registry changes on their way to Ready, for the
	// promotion latency metric (SetupWithManager makes it; nil measures
	// nothing).
	changes *registryChanges
}

// scope is what one reconcile knows: the object, the clock, and what each
// step found for the steps after it.
type scope struct {
	md  *v1alpha1.ModelDeployment
	now time.Time
	log logr.Logger

	// w is the production and candidate Deployments and their pods, read
	// once per pass (readWorkloads); applyServingObjects replaces the
	// production Deployment with the API server's answer to its apply.
	w *workloads

	// image is what the production Deployment runs: the version being
	// promoted, else the one serving.
	image   string
	version string

	// served: observeServing saw status.serving's version run on every
	// replica of the production Deployment. Ready may be True only then.
	served bool

	// problem is the first step failure; waiting the first step still under
	// way. Together they make the summary conditions.
	problem *status.Outcome
	waiting *status.Outcome
	// paused: nothing failed or under way, a person's decision is awaited
	// (a version waiting for approval); it counts after problem and waiting.
	paused *status.Outcome
	// requeueAfter is the shortest wait any step asked for.
	requeueAfter time.Duration
	// commits are the metrics recorded once this pass's status is written.
	commits []func()
	// base is the object as last read or written, for the status patch.
	base *v1alpha1.ModelDeployment
}

func (s *scope) fail(o status.Outcome) {
	if s.problem == nil {
		o.Failing = !o.Stalled
		s.problem = &o
	}
}

func (s *scope) wait(reason v1alpha1.Reason, message string) {
	if s.waiting == nil {
		s.waiting = &status.Outcome{Reason: reason, Message: message}
	}
}

func (s *scope) pause(reason v1alpha1.Reason, message string) {
	if s.paused == nil {
		s.paused = &status.Outcome{Paused: true, Reason: reason, Message: message}
	}
}

func (s *scope) requeue(d time.Duration) {
	if d > 0 && (s.requeueAfter == 0 || d < s.requeueAfter) {
		s.requeueAfter = d
	}
}

// reconcileTimeout bounds one reconcile.
const reconcileTimeout = 6 * time.Minute

// stepFunc is one step of the reconcile. It records what it found in the
// scope; next=false ends the reconcile after it (nothing more can be done
// now). An error is transient: the reconcile is retried with backoff.
type stepFunc func(ctx context.Context, s *scope) (next bool, err error)

// +kubebuilder:rbac:groups=serving.mlflow-operator.io,resources=modeldeployments,verbs=get;list;watch
// +kubebuilder:rbac:groups=serving.mlflow-operator.io,resources=modeldeployments/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=serving.mlflow-operator.io,resources=modeldeployments/finalizers,verbs=update
// +kubebuilder:rbac:groups=apps,resources=deployments,verbs=get;list;watch;create;patch;delete
// +kubebuilder:rbac:groups="",resources=services,verbs=get;list;watch;create;patch;delete
// +kubebuilder:rbac:groups=autoscaling,resources=horizontalpodautoscalers,verbs=get;list;watch;create;patch;delete
// +kubebuilder:rbac:groups=policy,resources=poddisruptionbudgets,verbs=get;list;watch;create;patch;delete
// +kubebuilder:rbac:groups=networking.k8s.io,resources=networkpolicies,verbs=get;list;watch;create;patch;delete
// +kubebuilder:rbac:groups="",resources=pods,verbs=get;list;watch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get

// Reconcile moves one ModelDeployment towards its spec: resolve the version,
// get its image, read the workloads, decide and act on the rollout, apply
// the serving objects, observe them. The status is patched once, at the end,
// whatever happened.
func (r *ModelDeploymentReconciler) Reconcile(ctx context.Context, req ctrl.Request) (result ctrl.Result, err error) {
	md, undecodable, decodeErr, err := r.readModelDeployment(ctx, req.NamespacedName)
	if err != nil {
		if apierrors.IsNotFound(err) {
			r.forget(req.NamespacedName)
			r.forgetSeries(req.NamespacedName)
		}
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if undecodable != nil {
		r.forget(req.NamespacedName)
		if err := r.reportUndecodable(ctx, undecodable, decodeErr); err != nil {
			return ctrl.Result{}, err
		}
		observeUndecodable(undecodable)
		return ctrl.Result{}, nil
	}
	if !md.DeletionTimestamp.IsZero() {
		// The owned objects carry controller owner references: the garbage
		// collector removes them. A build of the object stops now, and its
		// metrics go.
		r.forget(req.NamespacedName)
		r.forgetSeries(req.NamespacedName)
		return ctrl.Result{}, nil
	}
	log := ctrl.LoggerFrom(ctx).WithValues("modelDeployment", klog.KObj(md))
	if md.Spec.Suspend {
		return ctrl.Result{}, r.suspended(ctx, md, log)
	}

	s := &scope{md: md, now: r.now(), log: log, base: md.DeepCopy()}
	defer func() {
		r.summarize(s)
		// Optimistic lock: a status written by a reconcile that read an
		// older object is refused, and the reconcile runs again. Nothing is
		// sent when nothing changed (lastPolled alone is no change: it is
		// written with the next real one), so an idle operator writes
		// nothing.
		var perr error
		if statusChanged(&s.base.Status, &md.Status) {
			if perr = r.Status().Patch(ctx, md, client.MergeFromWithOptions(s.base, client.MergeFromWithOptimisticLock{})); perr == nil && r.fresh != nil {
				r.fresh.wrote(req.NamespacedName, md.ResourceVersion)
			}
		}
		switch {
		case perr == nil:
			s.committed()
			observeObject(md)
		case !apierrors.IsNotFound(perr) && err == nil:
			err = perr
		}
		if err == nil {
			result = ctrl.Result{RequeueAfter: s.requeueAfter}
		}
	}()

	// The reconcile flow of docs/development.md.
	for _, step := range []stepFunc{
		r.reconcileRequested,  // a new reconcile.fluxcd.io/requestedAt: drop the cached MLflow answer
		r.reconcileVersion,    // MLflow: which version the reference means now
		r.reconcileImage,      // that version's image: reuse, or build and push
		r.readWorkloads,       // the production and candidate Deployments and pods, once
		r.reconcileRollout,    // candidate, smoke test, promotion, completion, rollback
		r.applyServingObjects, // Deployment, Service, HPA, PDB, NetworkPolicy
		r.removeStrays,        // Deployments a change of strategy left behind
		r.observeServing,      // replicas, RolledOut, what is on its way
	} {
		next, err := step(ctx, s)
		if err != nil {
			r.stepFailed(s, err)
			return ctrl.Result{}, err
		}
		if !next {
			break
		}
	}
	return ctrl.Result{}, nil
}

// suspended records in status that reconciliation is suspended: nothing is
// polled, built or changed until spec.suspend is unset.
func (r *ModelDeploymentReconciler) suspended(ctx context.Context, md *v1alpha1.ModelDeployment, log logr.Logger) error {
	base := md.DeepCopy()
	msg := "reconciliation is suspended (spec.suspend): MLflow is not polled, nothing is built, and the serving objects are left as they are"
	if sv := md.Status.Serving; sv != nil && sv.Version != "" {
		msg += fmt.Sprintf("; version %s was serving when last observed", sv.Version)
	}
	// A build under way stops: nothing is built while suspended.
	r.forget(types.NamespacedName{Namespace: md.Namespace, Name: md.Name})
	ready := meta.FindStatusCondition(md.Status.Conditions, v1alpha1.ConditionReady)
	if ready == nil || ready.Reason != string(v1alpha1.ReasonSuspended) {
		r.event(md, corev1.EventTypeNormal, v1alpha1.ReasonSuspended, v1alpha1.ActionSuspend, msg)
		log.Info("Suspended: nothing reconciled until spec.suspend is unset")
	}
	// status.observedGeneration stays: a spec change made while suspended
	// is not handled until reconciliation resumes.
	status.SetSuspended(&md.Status.Conditions, md.Generation, msg)
	if !statusChanged(&base.Status, &md.Status) {
		observeObject(md)
		return nil
	}
	if err := r.Status().Patch(ctx, md, client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{})); err != nil {
		return client.IgnoreNotFound(err)
	}
	if r.fresh != nil {
		r.fresh.wrote(types.NamespacedName{Namespace: md.Namespace, Name: md.Name}, md.ResourceVersion)
	}
	observeObject(md)
	return nil
}

// forget stops the work the operator holds in memory for a deleted object.
func (r *ModelDeploymentReconciler) forget(key types.NamespacedName) {
	if r.Images != nil {
		r.Images.Forget(key)
	}
	if r.analyses != nil {
		r.analyses.Forget(key.Namespace, key.Name)
	}
	if r.smokes != nil {
		r.smokes.Forget(key.Namespace, key.Name)
	}
}

// forgetSeries removes a deleted object's metrics and what was kept for
// them.
func (r *ModelDeploymentReconciler) forgetSeries(key types.NamespacedName) {
	metrics.Forget(key.Namespace, key.Name)
	r.changes.drop(key)
}

// persist writes the status now, before a step changes the cluster on its
// strength (a promotion, a rollback): an operator stopped right after finds
// the decision recorded, not just its effect.
func (r *ModelDeploymentReconciler) persist(ctx context.Context, s *scope) error {
	if err := r.Status().Patch(ctx, s.md, client.MergeFromWithOptions(s.base, client.MergeFromWithOptimisticLock{})); err != nil {
		return fmt.Errorf("failed to record the rollout decision: %w", err)
	}
	s.base = s.md.DeepCopy()
	s.committed()
	return nil
}

// stepFailed records a step's error in the summary, Ready=False with the
// reason and message of what failed (the reconcile is retried with backoff),
// and an event when that is news.
func (r *ModelDeploymentReconciler) stepFailed(s *scope, err error) {
	reason, terminal := reasonOf(err, v1alpha1.ReasonKubernetesAPIError)
	msg := text.Shorten(err.Error(), maxMessage)
	s.fail(status.Outcome{Stalled: terminal, Reason: reason, Message: msg})
	if ready := meta.FindStatusCondition(s.base.Status.Conditions, v1alpha1.ConditionReady); ready == nil || ready.Reason != string(reason) {
		r.event(s.md, corev1.EventTypeWarning, reason, v1alpha1.ActionReconcile, msg)
	}
	s.log.Info("Reconcile step failed; retrying", "reason", reason, "error", msg)
}

// maxMessage bounds a message written into a condition or an event.
const maxMessage = 1024

// summarize writes the kstatus summary conditions from what the steps found
// and marks the generation handled. Ready is True only when a step saw the
// version in status.serving run on every replica; anything short of that is
// a failure, a wait, or (when no step said why) an unknown.
func (r *ModelDeploymentReconciler) summarize(s *scope) {
	md := s.md
	var o status.Outcome
	switch {
	case s.problem != nil:
		o = *s.problem
	case s.waiting != nil:
		o = *s.waiting
	case s.paused != nil:
		o = *s.paused
	case s.served:
		o = status.Outcome{Ready: true, Reason: v1alpha1.ReasonSucceeded,
			Message: "version " + s.version + " serves with all replicas available"}
	default:
		o = status.Outcome{Reason: v1alpha1.ReasonProgressing, Message: "no version is known to serve yet"}
	}
	status.SetSummary(&md.Status.Conditions, md.Generation, o)
	md.Status.ObservedGeneration = md.Generation
	// A version waiting for a person is no promotion latency of the
	// operator's: its registry change is not measured.
	r.measurePromotion(s, o.Ready, o.Stalled || o.Paused)
}

func (r *ModelDeploymentReconciler) now() time.Time {
	if r.Clock == nil {
		return time.Now()
	}
	return r.Clock.Now()
}

// setCondition sets a step's condition at the object's generation and tells
// whether its status or reason changed (a transition worth an event).
func setCondition(md *v1alpha1.ModelDeployment, t string, st metav1.ConditionStatus, reason v1alpha1.Reason, msg string) bool {
	return status.SetCondition(&md.Status.Conditions, md.Generation, t, st, reason, msg)
}

// event records an event when the reconciler has a recorder, and hands it
// to the notifier.
func (r *ModelDeploymentReconciler) event(md *v1alpha1.ModelDeployment, eventType string, reason v1alpha1.Reason, action v1alpha1.EventAction, note string) {
	note = text.Shorten(note, maxMessage)
	if r.Recorder != nil {
		r.Recorder.Eventf(md, nil, eventType, string(reason), string(action), "%s", note)
	}
	if r.Notifier != nil {
		r.Notifier.Notify(md, eventType, reason, action, note)
	}
}

// podToModelDeployment maps a serving pod to its ModelDeployment.
func podToModelDeployment(_ context.Context, o client.Object) []reconcile.Request {
	name := o.GetLabels()[v1alpha1.LabelName]
	if name == "" {
		return nil
	}
	return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: o.GetNamespace(), Name: name}}}
}

// SetupWithManager registers the reconciler: it watches ModelDeployments (spec
// and annotation changes, not its own status writes) and every object it owns,
// so that drift is corrected as soon as it happens.
func (r *ModelDeploymentReconciler) SetupWithManager(mgr ctrl.Manager) error {
	if r.changes == nil {
		r.changes = &registryChanges{}
	}
	if r.Cache == nil {
		r.Cache = mgr.GetCache()
	}
	if r.fresh == nil {
		r.fresh = &freshness{}
	}
	b := ctrl.NewControllerManagedBy(mgr)
	if r.smokes == nil {
		// A finished smoke test or canary analysis reconciles its object
		// again. The buffer drops nothing in practice; a lost trigger
		// costs the pass's safety requeue.
		done := make(chan event.GenericEvent, 1024)
		again := func(namespace, name string) {
			select {
			case done <- event.GenericEvent{Object: &metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name}}}:
			default:
			}
		}
		r.smokes = &smoketest.Runner[rollout.Smoke]{Done: again}
		r.analyses = &smoketest.Runner[rollout.Analysis]{Done: again}
		b = b.WatchesRawSource(source.Channel(done, &handler.EnqueueRequestForObject{}))
	}
	if r.Triggers != nil {
		b = b.WatchesRawSource(source.Channel(r.Triggers, &handler.EnqueueRequestForObject{}))
	}
	return b.
		// Unstructured: one object the operator cannot decode must not keep
		// the cache from syncing (undecodable.go).
		For(modelDeploymentObject(), builder.WithPredicates(modelDeploymentChanged)).
		// The Deployments' status drives the rollout: every change counts.
		Owns(&appsv1.Deployment{}).
		Owns(&corev1.Service{}).
		// Their status is the HPA's and the disruption controller's
		// business (predicates.go).
		Owns(&autoscalingv2.HorizontalPodAutoscaler{}, builder.WithPredicates(specOrMetadataChanged)).
		Owns(&policyv1.PodDisruptionBudget{}, builder.WithPredicates(specOrMetadataChanged)).
		Owns(&networkingv1.NetworkPolicy{}, builder.WithPredicates(specOrMetadataChanged)).
		// Pods belong to ReplicaSets; their label names the ModelDeployment.
		Watches(&corev1.Pod{}, handler.EnqueueRequestsFromMapFunc(podToModelDeployment), builder.WithPredicates(podChanged)).
		WithOptions(controller.Options{
			MaxConcurrentReconciles: max(r.MaxConcurrentReconciles, 1),
			// No reconcile holds a worker longer than this, whatever a
			// tenant's MLflow server does (resolution is at most
			// resolveTimeout; smoke tests run away from the workers).
			ReconciliationTimeout: reconcileTimeout,
		}).
		Named("modeldeployment").
		Complete(r)
}
