// Package builds runs image builds off the reconcile workers: a bounded pool
// of workers (a manager Runnable whose work stops with the manager) that
// downloads a model version from MLflow, checks its Python dependencies
// against the base image, builds the image and pushes it. Image answers at
// once (building, built, or failed) and a finished build makes its
// ModelDeployment reconcile. All the pool keeps in memory can be lost: after
// a restart the registry lookup finds what was pushed, and nothing is built
// twice.
package builds

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"github.com/google/go-containerregistry/pkg/authn"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/clock"
	"k8s.io/utils/lru"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"

	v1alpha1 "github.com/mlflow-operator/mlflow-operator/api/v1alpha1"
	"github.com/mlflow-operator/mlflow-operator/internal/failure"
	"github.com/mlflow-operator/mlflow-operator/internal/imagebuild"
	"github.com/mlflow-operator/mlflow-operator/internal/metrics"
	"github.com/mlflow-operator/mlflow-operator/internal/resolver"
)

// Result is the state of the image of one model version.
type Result struct {
	// Image is the pushed image by digest (repository@sha256:...), empty
	// while it is being built.
	Image string
	// Reused: the image was in the registry already; nothing was pushed.
	Reused bool
	// Message says, for a person, what is happening (e.g. "building").
	Message string
	// Dependencies is the dependency check's verdict, when one ran.
	Dependencies *Dependencies
	// RetryAt is when a failed build is tried again.
	RetryAt time.Time
	// Deferred: the last build failed before this operator process started
	// (the status says how); it is tried again at RetryAt.
	Deferred bool
	// PushedBytes is what the build's push sent to the registry (0 when
	// the image was reused).
	PushedBytes int64
}

// Dependencies is the verdict of the dependency check.
type Dependencies struct {
	// Skipped: no check ran (dependencyPolicy Ignore, or the image was
	// reused). Satisfied is then true.
	Skipped   bool
	Satisfied bool
	Message   string
}

// Pool runs builds in a bounded pool of workers. A build is cancelled when
// its ModelDeployment moves to another version or is forgotten, and every
// build stops when the context given to Start ends. Failures are retried
// with exponential backoff (10 s doubling up to 10 minutes).
type Pool struct {
	// Reader reads Secrets (uncached).
	Reader client.Reader
	// MLflow gives the MLflow client of a ModelDeployment.
	MLflow *resolver.Resolver
	// Builder builds and pushes.
	Builder *imagebuild.Builder
	// Workers bounds concurrent builds; 2 when zero.
	Workers int
	// PerNamespace bounds the concurrent builds of one namespace, so that
	// one tenant's slow builds cannot hold every worker; half the workers
	// (at least one) when zero.
	PerNamespace int
	// Timeout bounds one build, queueing excluded; 30 minutes when zero.
	Timeout time.Duration
	// OwnCredentials tells whether builds of a namespace may use the
	// operator's own registry identity (Keychain) for a repository: an
	// administrator's grant. Nil grants nothing: a build uses the
	// credentials of the Secrets its spec names, or none.
	OwnCredentials func(namespace, repository string) bool
	// TempDir holds this process's work folder (downloads, layer files;
	// see workDir); os.TempDir() when empty.
	TempDir string
	// Done receives a ModelDeployment whose build finished.
	Done chan<- event.GenericEvent
	// Keychain is the operator's own registry identity
	// (registryauth.OperatorKeychain: its Docker config, then the cloud
	// identities turned on), used only where OwnCredentials grants it;
	// authn.DefaultKeychain when nil.
	Keychain authn.Keychain
	Log      logr.Logger
	// Clock; the real one when nil.
	Clock clock.PassiveClock

	// run does one build; (*Pool).build when nil (tests replace it).
	run func(ctx context.Context, j *job) (*Result, error)

	once      sync.Once
	mu        sync.Mutex
	jobs      map[types.NamespacedName]*job
	queue     []*job
	wake      chan struct{}
	failures  workqueue.TypedRateLimiter[types.NamespacedName]
	lastPrune time.Time
	tags      tagLocks
	scans     *lru.Cache     // base image digest -> *pydeps.Installed
	running   map[string]int // namespace -> running builds
	built     *lru.Cache     // repository:tag -> provenance of what this operator pushed or verified
	shared    *lru.Cache     // shareKey -> sharedResult (shared.go)
	work      string         // this process's work folder, set by Start
}

// job is one ModelDeployment's build of one version.
type job struct {
	key     types.NamespacedName
	md      *v1alpha1.ModelDeployment
	version resolver.ModelVersion
	spec    string // what else decides the image: base, repository, tag, port
	share   string // shareKey: the builds that are this same build

	// Guarded by Pool.mu.
	cancel  context.CancelFunc
	running bool
	queued  bool
	gone    bool // superseded or forgotten: its outcome is dropped
	phase   string
	result  *Result
	deps    *Dependencies // the last dependency verdict, also of a failed build
	err     error
	// deferred: a failure before this process started holds the first
	// build back until retryAt.
	deferred bool
	retryAt  time.Time
	used     time.Time // when a reconcile last asked; idle jobs are forgotten
}

func (p *Pool) init() {
	p.once.Do(func() {
		p.jobs = map[types.NamespacedName]*job{}
		p.running = map[string]int{}
		p.built = lru.New(maxBuilt)
		p.wake = make(chan struct{}, 1)
		p.failures = workqueue.NewTypedItemExponentialFailureRateLimiter[types.NamespacedName](10*time.Second, 10*time.Minute)
		if p.run == nil {
			p.run = p.build
		}
	})
}

func (p *Pool) now() time.Time {
	if p.Clock == nil {
		return time.Now()
	}
	return p.Clock.Now()
}

// Image answers the image of version v of md without blocking: the pushed
// image, "building" (and a build is queued when there is none), or the last
// build's error until its retry time.
func (p *Pool) Image(_ context.Context, md *v1alpha1.ModelDeployment, v resolver.ModelVersion) (Result, error) {
	p.init()
	key := types.NamespacedName{Namespace: md.Namespace, Name: md.Name}
	spec := buildSpec(md)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.prune()
	j := p.jobs[key]
	if j != nil && (j.version.Version != v.Version || j.spec != spec || j.md.UID != md.UID) {
		// The target moved (or the object was recreated): the old build is
		// of no use.
		p.dropLocked(j)
		p.failures.Forget(key)
		j = nil
	}
	if j == nil {
		j = &job{key: key, md: md.DeepCopy(), version: v, spec: spec, share: shareKey(md, v)}
		p.jobs[key] = j
		p.resumeBackoff(j, md)
	}
	j.used = p.now()
	switch {
	case j.deferred && p.now().Before(j.retryAt):
		return Result{Deferred: true, RetryAt: j.retryAt}, nil
	case j.running || j.queued:
		return Result{Message: j.phase, Dependencies: j.deps}, nil
	case j.result != nil:
		return *j.result, nil
	case j.err != nil && p.now().Before(j.retryAt):
		return Result{RetryAt: j.retryAt, Dependencies: j.deps}, j.err
	}
	if r := p.sharedLocked(j.share); r != nil {
		j.result = r
		metrics.BuildFinished(metrics.BuildReused, 0, 0)
		return *r, nil
	}
	j.md = md.DeepCopy()
	j.deferred = false
	p.enqueueLocked(j)
	return Result{Message: j.phase, Dependencies: j.deps}, nil
}

// resumeBackoff carries a build's backoff over an operator restart: when
// the object's status says the image of this version has been failing
// since T (ImageReady False, not Building), the first build waits as long
// again as it has been failing (10 s to 10 minutes), as the doubling
// backoff would have.
func (p *Pool) resumeBackoff(j *job, md *v1alpha1.ModelDeployment) {
	c := meta.FindStatusCondition(md.Status.Conditions, v1alpha1.ConditionImageReady)
	if c == nil || c.Status != metav1.ConditionFalse || c.Reason == string(v1alpha1.ReasonBuilding) ||
		md.Status.Target == nil || md.Status.Target.Version != j.version.Version || !strings.Contains(c.Message, "version "+j.version.Version+":") {
		return
	}
	failing := p.now().Sub(c.LastTransitionTime.Time)
	if failing < 0 {
		failing = 0
	}
	j.retryAt, j.deferred = p.now().Add(min(max(failing, 10*time.Second), 10*time.Minute)), true
}

// Forget drops what is known about a ModelDeployment and cancels its build
// (it was deleted).
func (p *Pool) Forget(key types.NamespacedName) {
	p.init()
	p.mu.Lock()
	defer p.mu.Unlock()
	if j := p.jobs[key]; j != nil {
		p.dropLocked(j)
	}
	p.failures.Forget(key)
}

// dropLocked cancels j and removes it; p.mu is held.
func (p *Pool) dropLocked(j *job) {
	j.gone = true
	if j.cancel != nil {
		j.cancel()
	}
	if j.queued {
		for i, q := range p.queue {
			if q == j {
				p.queue = append(p.queue[:i], p.queue[i+1:]...)
				break
			}
		}
		j.queued = false
	}
	if p.jobs[j.key] == j {
		delete(p.jobs, j.key)
	}
}

// enqueueLocked queues j for a worker; p.mu is held.
func (p *Pool) enqueueLocked(j *job) {
	j.queued, j.err, j.phase = true, nil, "waiting for a build worker"
	p.queue = append(p.queue, j)
	p.signal()
}

func (p *Pool) signal() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// prune forgets, every 10 minutes, the jobs no reconcile asked about for an
// hour (their ModelDeployments serve what they built, or were deleted while
// the operator was down); p.mu is held.
func (p *Pool) prune() {
	now := p.now()
	if now.Sub(p.lastPrune) < 10*time.Minute {
		return
	}
	p.lastPrune = now
	for key, j := range p.jobs {
		if !j.running && !j.queued && now.Sub(j.used) > time.Hour {
			delete(p.jobs, key)
			p.failures.Forget(key)
		}
	}
}

// Start sweeps the temp dir, makes this process's work folder in it, runs
// the workers until ctx ends, then cancels every build, waits for the
// workers to return and removes the folder (a manager Runnable).
func (p *Pool) Start(ctx context.Context) error {
	p.init()
	work, err := openWorkDir(p.TempDir, p.Log)
	if err != nil {
		return fmt.Errorf("the build folder in %s: %w", p.TempDir, err)
	}
	defer work.close()
	p.work = work.path
	n := p.workers()
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				j, jctx := p.next(ctx)
				if j == nil {
					return
				}
				p.finish(ctx, j, jctx)
			}
		}()
	}
	<-ctx.Done()
	p.mu.Lock()
	for _, j := range p.jobs {
		if j.cancel != nil {
			j.cancel()
		}
	}
	p.mu.Unlock()
	wg.Wait()
	return nil
}

// NeedLeaderElection: builds are started by reconciles, which run on the
// leader only.
func (p *Pool) NeedLeaderElection() bool { return true }

func (p *Pool) perNamespace() int {
	if p.PerNamespace > 0 {
		return p.PerNamespace
	}
	return max(1, p.workers()/2)
}

func (p *Pool) workers() int {
	if p.Workers > 0 {
		return p.Workers
	}
	return 2
}

func (p *Pool) timeout() time.Duration {
	if p.Timeout > 0 {
		return p.Timeout
	}
	return 30 * time.Minute
}

// next waits for a queued job it may start and marks it running, or
// returns nil when ctx ends. Jobs start in the order they were queued,
// except that a namespace with PerNamespace builds running waits: one
// tenant's slow or hostile builds cannot hold every worker.
func (p *Pool) next(ctx context.Context) (*job, context.Context) {
	for {
		p.mu.Lock()
		if ctx.Err() == nil {
			for i, j := range p.queue {
				if p.running[j.key.Namespace] >= p.perNamespace() {
					continue
				}
				p.queue = append(p.queue[:i], p.queue[i+1:]...)
				jctx, cancel := context.WithTimeout(ctx, p.timeout())
				j.queued, j.running, j.cancel = false, true, cancel
				p.running[j.key.Namespace]++
				if len(p.queue) > 0 {
					p.signal() // another worker may take the next one
				}
				p.mu.Unlock()
				return j, jctx
			}
		}
		p.mu.Unlock()
		select {
		case <-ctx.Done():
			return nil, nil
		case <-p.wake:
		}
	}
}

// finish runs j in jctx (cancelled when j is dropped or the pool stops)
// and records its outcome, unless it was dropped meanwhile.
func (p *Pool) finish(ctx context.Context, j *job, jctx context.Context) {
	log := p.Log.WithValues("modelDeployment", j.key.String(), "modelVersion", j.version.Version)
	start := time.Now()
	// Another object's build of the same build may have finished while
	// this one waited in the queue.
	p.mu.Lock()
	res := p.sharedLocked(j.share)
	p.mu.Unlock()
	var err error
	ran := res == nil
	if ran {
		res, err = p.run(jctx, j)
	}
	elapsed := time.Since(start)
	stopped := jctx.Err() == context.Canceled
	p.mu.Lock()
	j.cancel()
	j.running = false
	if p.running[j.key.Namespace]--; p.running[j.key.Namespace] <= 0 {
		delete(p.running, j.key.Namespace)
	}
	if len(p.queue) > 0 {
		p.signal() // a job of this namespace may have been waiting
	}
	if j.gone || stopped {
		// Superseded, forgotten, or the operator is stopping: nobody
		// waits for this outcome.
		p.mu.Unlock()
		metrics.BuildFinished(metrics.BuildCanceled, elapsed, pushedBytes(res))
		return
	}
	if res != nil {
		j.deps = res.Dependencies
	}
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) && jctx.Err() == context.DeadlineExceeded {
			err = failure.New(failure.Unreachable, failure.Build, fmt.Sprintf("the build did not finish within %s", p.timeout()), err)
		}
		j.err, j.result = err, nil
		j.retryAt = p.now().Add(p.failures.When(j.key))
		log.Info("Image build failed", "error", err.Error(), "retryAt", j.retryAt)
	} else {
		p.failures.Forget(j.key)
		j.result = res
		if ran {
			p.shareLocked(j.share, res)
		}
		log.Info("Image ready", "image", res.Image, "reused", res.Reused)
	}
	md := j.md
	p.mu.Unlock()
	result := metrics.BuildFailed
	switch {
	case err != nil:
	case res.Reused:
		result = metrics.BuildReused
	default:
		result = metrics.BuildPushed
	}
	metrics.BuildFinished(result, elapsed, pushedBytes(res))
	if p.Done != nil {
		t := time.NewTimer(10 * time.Second)
		defer t.Stop()
		select {
		case p.Done <- event.GenericEvent{Object: md}:
		case <-t.C:
		case <-ctx.Done():
		}
	}
}

// pushedBytes is what res says its push sent, 0 without a result.
func pushedBytes(res *Result) int64 {
	if res == nil {
		return 0
	}
	return res.PushedBytes
}

func (p *Pool) setPhase(j *job, phase string) {
	p.mu.Lock()
	j.phase = phase
	p.mu.Unlock()
}
