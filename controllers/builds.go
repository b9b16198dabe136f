package controllers

import (
	"context"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"github.com/google/go-containerregistry/pkg/authn"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"

	v1alpha1 "github.com/mlflow-operator/mlflow-operator/api/v1alpha1"
	"github.com/mlflow-operator/mlflow-operator/internal/imagebuild"
	"github.com/mlflow-operator/mlflow-operator/internal/mlflow"
	"github.com/mlflow-operator/mlflow-operator/internal/resources"
)

// Reasons of the image and dependency conditions.
const (
	ReasonDependenciesSatisfied    = "Satisfied"
	ReasonDependenciesNotSatisfied = "NotSatisfied"
	ReasonDependencyCheckSkipped   = "Skipped"
	// ReasonDependenciesRefused: ImageReady's reason when dependencyPolicy
	// Enforce refused to build.
	ReasonDependenciesRefused = "DependenciesNotSatisfied"
)

// Builds runs image builds in a bounded pool of workers, off the reconcile
// workers: Image answers at once (building, built, or failed) and a finished
// build makes its ModelDeployment reconcile. A build is cancelled when its
// ModelDeployment moves to another version. Failures are retried with
// backoff. All it keeps in memory can be lost: after a restart the registry
// lookup finds what was pushed, and nothing is built twice.
type Builds struct {
	// Reader reads Secrets (uncached).
	Reader client.Reader
	// MLflow gives the registry client of a ModelDeployment.
	MLflow *MLflowResolver
	// Builder builds and pushes.
	Builder *imagebuild.Builder
	// Workers bounds concurrent builds; 2 when zero.
	Workers int
	// TempDir holds downloads; os.TempDir() when empty.
	TempDir string
	// Done receives a ModelDeployment whose build finished.
	Done chan<- event.GenericEvent
	// Keychain is the operator's own registry credentials (cloud
	// keychains); authn.DefaultKeychain when nil.
	Keychain authn.Keychain
	Log      logr.Logger
	// Now is the clock; time.Now when nil.
	Now func() time.Time

	once      sync.Once
	slots     chan struct{}
	mu        sync.Mutex
	jobs      map[types.UID]*buildJob
	lastPrune time.Time
}

type buildJob struct {
	version  string
	spec     string // what else decides the image: base, repository, tag, port
	cancel   context.CancelFunc
	running  bool
	phase    string
	result   *imagebuild.Result
	deps     *DependencyStatus
	err      error
	failures int
	retryAt  time.Time
	// used is when a reconcile last asked; idle jobs are forgotten.
	used time.Time
}

// DependencyStatus is the result of the dependency check.
type DependencyStatus struct {
	Satisfied bool
	Reason    string
	Message   string
}

func (b *Builds) now() time.Time {
	if b.Now != nil {
		return b.Now()
	}
	return time.Now()
}

// Image implements ImageProvider.
func (b *Builds) Image(ctx context.Context, md *v1alpha1.ModelDeployment, v ModelVersion) (ImageResult, error) {
	b.once.Do(func() {
		n := b.Workers
		if n <= 0 {
			n = 2
		}
		b.slots = make(chan struct{}, n)
		b.jobs = map[types.UID]*buildJob{}
	})
	spec := buildSpec(md)
	b.mu.Lock()
	defer b.mu.Unlock()
	b.prune()
	job := b.jobs[md.UID]
	if job != nil && (job.version != v.Version || job.spec != spec) {
		// The target moved: the old build is of no use.
		if job.cancel != nil {
			job.cancel()
		}
		job = nil
	}
	if job == nil {
		job = &buildJob{version: v.Version, spec: spec}
		b.jobs[md.UID] = job
	}
	job.used = b.now()
	switch {
	case job.running:
		return ImageResult{Message: job.phase, Dependencies: job.deps}, nil
	case job.result != nil:
		return ImageResult{Image: job.result.Image, Dependencies: job.deps, Message: describe(job.result)}, nil
	case job.err != nil && b.now().Before(job.retryAt):
		return ImageResult{Dependencies: job.deps, RetryAt: job.retryAt}, job.err
	}
	b.start(md.DeepCopy(), v, job)
	return ImageResult{Message: job.phase}, nil
}

// prune forgets, every 10 minutes, the jobs no reconcile asked about for an
// hour (their ModelDeployments were deleted or serve what they built); b.mu
// is held.
func (b *Builds) prune() {
	now := b.now()
	if now.Sub(b.lastPrune) < 10*time.Minute {
		return
	}
	b.lastPrune = now
	for uid, job := range b.jobs {
		if !job.running && now.Sub(job.used) > time.Hour {
			delete(b.jobs, uid)
		}
	}
}

// Forget drops what is known about a ModelDeployment (it was deleted).
func (b *Builds) Forget(uid types.UID) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if job := b.jobs[uid]; job != nil {
		if job.cancel != nil {
			job.cancel()
		}
		delete(b.jobs, uid)
	}
}

func describe(r *imagebuild.Result) string {
	if r.Reused {
		return "reused " + r.Image
	}
	return "pushed " + r.Image
}

// start runs the build of job in the background; b.mu is held.
func (b *Builds) start(md *v1alpha1.ModelDeployment, v ModelVersion, job *buildJob) {
	ctx, cancel := context.WithCancel(context.Background())
	job.cancel, job.running, job.phase, job.err = cancel, true, "waiting for a build worker", nil
	log := b.Log.WithValues("modelDeployment", client.ObjectKeyFromObject(md).String(), "modelVersion", v.Version)
	go func() {
		defer cancel()
		res, deps, err := b.build(ctx, md, v, job, log)
		b.mu.Lock()
		if b.jobs[md.UID] != job {
			// Superseded while it ran.
			b.mu.Unlock()
			return
		}
		job.running, job.deps = false, deps
		if err != nil {
			job.failures++
			job.err = err
			job.retryAt = b.now().Add(backoff(job.failures))
			log.Info("Image build failed", "error", err.Error(), "retryAt", job.retryAt)
		} else {
			job.result, job.failures = res, 0
			log.Info("Image ready", "image", res.Image, "reused", res.Reused)
		}
		b.mu.Unlock()
		if b.Done != nil {
			select {
			case b.Done <- event.GenericEvent{Object: md}:
			case <-time.After(10 * time.Second):
			}
		}
	}()
}

// backoff after n failures: 10s, 20s, 40s ... up to 10 minutes.
func backoff(n int) time.Duration {
	d := 10 * time.Second << min(n-1, 6)
	return min(d, 10*time.Minute)
}

func (b *Builds) setPhase(job *buildJob, phase string) {
	b.mu.Lock()
	job.phase = phase
	b.mu.Unlock()
}

// build does one build: look the tag up, else download, check, build, push.
func (b *Builds) build(ctx context.Context, md *v1alpha1.ModelDeployment, v ModelVersion, job *buildJob, log logr.Logger) (*imagebuild.Result, *DependencyStatus, error) {
	select {
	case b.slots <- struct{}{}:
		defer func() { <-b.slots }()
	case <-ctx.Done():
		return nil, nil, ctx.Err()
	}
	b.setPhase(job, "looking up the registry")
	mc, err := b.MLflow.ClientFor(ctx, md)
	if err != nil {
		return nil, nil, err
	}
	mv, err := mc.GetModelVersion(ctx, md.Spec.Model.Name, v.Version)
	if err != nil {
		return nil, nil, asReasoned(err)
	}
	req, err := b.request(ctx, md, mc, mv)
	if err != nil {
		return nil, nil, err
	}
	if res, ok, err := b.Builder.Lookup(ctx, req); err != nil {
		return nil, nil, buildError(err)
	} else if ok {
		return res, &DependencyStatus{Satisfied: true, Reason: ReasonDependencyCheckSkipped,
			Message: "the image was built and checked before; reused " + res.Image}, nil
	}

	b.setPhase(job, "downloading the model from MLflow")
	dir, err := os.MkdirTemp(b.TempDir, "model-")
	if err != nil {
		return nil, nil, err
	}
	defer os.RemoveAll(dir)
	manifest, err := mc.DownloadVersion(ctx, md.Spec.Model.Name, v.Version, dir)
	if err != nil {
		return nil, nil, asReasoned(err)
	}
	req.ModelDir = dir
	req.Model.Digest = manifest.Digest()

	deps, err := b.checkDependencies(ctx, md, req, dir)
	if err != nil {
		return nil, deps, err
	}
	b.setPhase(job, fmt.Sprintf("building and pushing (%d files)", len(manifest.Files)))
	start := time.Now()
	res, err := b.Builder.Build(ctx, req)
	if err != nil {
		return nil, deps, buildError(err)
	}
	log.V(1).Info("Built", "image", res.Image, "seconds", time.Since(start).Seconds())
	return res, deps, nil
}

// checkDependencies compares the model's requirements with the base image's
// Python packages, as spec.image.dependencyPolicy asks.
func (b *Builds) checkDependencies(ctx context.Context, md *v1alpha1.ModelDeployment, req imagebuild.Request, dir string) (*DependencyStatus, error) {
	policy := md.Spec.DependencyPolicyOrDefault()
	if policy == v1alpha1.DependencyPolicyIgnore {
		return &DependencyStatus{Satisfied: true, Reason: ReasonDependencyCheckSkipped, Message: "dependencyPolicy is Ignore"}, nil
	}
	modelEnv, err := imagebuild.ReadModelEnvironment(dir)
	if err != nil {
		return &DependencyStatus{Reason: ReasonDependenciesNotSatisfied, Message: err.Error()}, nil
	}
	base, err := b.Builder.BaseImage(ctx, req)
	if err != nil {
		return nil, buildError(err)
	}
	installed, err := imagebuild.InspectImage(base)
	if err != nil {
		return nil, buildError(err)
	}
	report := imagebuild.CheckDependencies(modelEnv, installed)
	st := &DependencyStatus{Satisfied: report.Satisfied(), Reason: ReasonDependenciesSatisfied, Message: report.Summary()}
	if !st.Satisfied {
		st.Reason = ReasonDependenciesNotSatisfied
		if policy == v1alpha1.DependencyPolicyEnforce {
			return st, &terminalError{reason: ReasonDependenciesRefused,
				err: fmt.Errorf("the base image does not satisfy the model (dependencyPolicy Enforce): %s", report.Summary())}
		}
	}
	return st, nil
}

// request is the build request of a ModelDeployment's model version.
func (b *Builds) request(ctx context.Context, md *v1alpha1.ModelDeployment, mc *mlflow.Client, mv *mlflow.ModelVersion) (imagebuild.Request, error) {
	pull, err := b.keychain(ctx, md.Namespace, md.Spec.Image.BaseImagePullSecretRef)
	if err != nil {
		return imagebuild.Request{}, err
	}
	push, err := b.keychain(ctx, md.Namespace, md.Spec.Image.PushSecretRef)
	if err != nil {
		return imagebuild.Request{}, err
	}
	created := time.UnixMilli(mv.CreationTimestamp).UTC()
	return imagebuild.Request{
		BaseImage:  md.Spec.Image.BaseImage,
		Repository: md.Spec.Image.Repository,
		Tag:        Tag(md.Spec.TagTemplate(), md.Spec.Model.Name, mv.Version),
		Port:       md.Spec.ServingPort(),
		UID:        int(resources.ServingUID),
		GID:        int(resources.ServingUID),
		Insecure:   md.Spec.Image.InsecureRegistry,
		Model: imagebuild.Model{
			Name: md.Spec.Model.Name, Version: mv.Version, RunID: mv.RunID, Source: mv.Source,
			TrackingURI: mc.TrackingURI(), Created: created,
		},
		PullKeychain: pull,
		PushKeychain: push,
	}, nil
}

// keychain is the Secret's credentials, then the operator's own.
func (b *Builds) keychain(ctx context.Context, namespace string, ref *corev1.LocalObjectReference) (authn.Keychain, error) {
	own := b.Keychain
	if own == nil {
		own = authn.DefaultKeychain
	}
	if ref == nil || ref.Name == "" {
		return own, nil
	}
	s := &corev1.Secret{}
	if err := b.Reader.Get(ctx, client.ObjectKey{Namespace: namespace, Name: ref.Name}, s); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, &resolveError{reason: ReasonSecretNotFound, err: fmt.Errorf("secret %q not found in namespace %s", ref.Name, namespace)}
		}
		return nil, err
	}
	data, ok := s.Data[corev1.DockerConfigJsonKey]
	if !ok {
		return nil, &resolveError{reason: ReasonSecretNotFound, err: fmt.Errorf("secret %q has no %s key (want type %s)", ref.Name, corev1.DockerConfigJsonKey, corev1.SecretTypeDockerConfigJson)}
	}
	kc, err := imagebuild.NewDockerConfigKeychain(data)
	if err != nil {
		return nil, &resolveError{reason: ReasonSecretNotFound, err: fmt.Errorf("secret %q: %w", ref.Name, err)}
	}
	return authn.NewMultiKeychain(kc, own), nil
}

// buildSpec is what, besides the version, decides the image.
func buildSpec(md *v1alpha1.ModelDeployment) string {
	i := md.Spec.Image
	return strings.Join([]string{i.BaseImage, i.Repository, md.Spec.TagTemplate(), fmt.Sprint(md.Spec.ServingPort()), fmt.Sprint(i.InsecureRegistry),
		string(md.Spec.DependencyPolicyOrDefault())}, "\x00")
}

var tagUnsafe = regexp.MustCompile(`[^a-z0-9_.-]+`)

// Tag forms an image tag from a template: {name} is the model name made
// tag-safe (lower-case, other characters '-'), {version} the version. Tags
// are at most 128 characters and start with a letter or digit.
func Tag(template, model, version string) string {
	safeName := strings.Trim(tagUnsafe.ReplaceAllString(strings.ToLower(model), "-"), "-.")
	t := strings.NewReplacer("{name}", safeName, "{version}", version).Replace(template)
	t = strings.TrimLeft(t, "-.")
	if len(t) > 128 {
		t = t[:128]
	}
	if t == "" {
		t = "v" + version
	}
	return t
}

// terminalError is a failure retrying will not fix (the spec must change).
type terminalError struct {
	reason string
	err    error
}

func (e *terminalError) Error() string  { return e.err.Error() }
func (e *terminalError) Unwrap() error  { return e.err }
func (e *terminalError) Reason() string { return e.reason }
func (e *terminalError) Terminal() bool { return true }

// buildError gives a registry or archive error its condition reason.
func buildError(err error) error {
	var re ReasonedError
	if errors.As(err, &re) {
		return err
	}
	kind := imagebuild.KindOf(err)
	if kind == imagebuild.KindInvalid {
		return &terminalError{reason: kind.Reason(), err: err}
	}
	return &resolveError{reason: kind.Reason(), err: err}
}
