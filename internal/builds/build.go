package builds

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/lru"

	v1alpha1 "github.com/mlflow-operator/mlflow-operator/api/v1alpha1"
	"github.com/mlflow-operator/mlflow-operator/internal/failure"
	"github.com/mlflow-operator/mlflow-operator/internal/imagebuild"
	"github.com/mlflow-operator/mlflow-operator/internal/mlflow"
	"github.com/mlflow-operator/mlflow-operator/internal/pydeps"
	"github.com/mlflow-operator/mlflow-operator/internal/registryauth"
	"github.com/mlflow-operator/mlflow-operator/internal/resolver"
	"github.com/mlflow-operator/mlflow-operator/internal/resources"
)

// build does one build: look the tag up, else download, check, build, push.
// A reused image gets the same dependency verdict a fresh build would: the
// model's requirements are read again and checked against the base image.
func (p *Pool) build(ctx context.Context, j *job) (*Result, error) {
	md, v := j.md, j.version
	p.setPhase(j, "looking up the registry")
	mc, err := p.MLflow.ClientFor(ctx, md)
	if err != nil {
		return nil, err
	}
	mv, err := mc.GetModelVersion(ctx, md.Spec.Model.Name, v.Version)
	if err != nil {
		return nil, err
	}
	req, err := p.request(ctx, md, mc, mv)
	if err != nil {
		return nil, err
	}
	p.setPhase(j, "waiting for another build of "+req.Repository+":"+req.Tag)
	unlock, err := p.tags.lock(ctx, req.Repository+":"+req.Tag)
	if err != nil {
		return nil, err
	}
	defer unlock()

	p.setPhase(j, "looking up the registry")
	if res, ok, err := p.Builder.Lookup(ctx, req); err != nil {
		return nil, err
	} else if ok && p.pushedHere(req, res) {
		p.setPhase(j, "checking the reused image's dependencies")
		deps, err := p.checkDependencies(ctx, md, req, func() (*pydeps.ModelEnvironment, error) {
			return readModelEnvironment(ctx, mc, md.Spec.Model.Name, v.Version, p.work)
		})
		if err != nil {
			return &Result{Dependencies: deps}, err
		}
		return &Result{Image: res.Image, Reused: true, Message: "reused " + res.Image, Dependencies: deps}, nil
	}

	p.setPhase(j, "downloading the model from MLflow")
	dir, err := os.MkdirTemp(p.work, "model-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	manifest, err := mc.DownloadVersion(ctx, md.Spec.Model.Name, v.Version, dir)
	if err != nil {
		return nil, err
	}
	req.ModelDir = dir
	req.TempDir = p.work
	req.Model.Digest = manifest.Digest()

	deps, err := p.checkDependencies(ctx, md, req, func() (*pydeps.ModelEnvironment, error) {
		return pydeps.ReadModelEnvironment(dir)
	})
	if err != nil {
		return &Result{Dependencies: deps}, err
	}
	p.setPhase(j, fmt.Sprintf("building and pushing (%d files)", len(manifest.Files)))
	start := time.Now()
	res, err := p.Builder.Build(ctx, req)
	if err != nil {
		return &Result{Dependencies: deps}, err
	}
	p.Log.V(1).Info("Built", "modelDeployment", j.key.String(), "image", res.Image, "seconds", time.Since(start).Seconds())
	p.record(req, res)
	out := &Result{Image: res.Image, Reused: res.Reused, Message: "pushed " + res.Image, Dependencies: deps, PushedBytes: res.PushedBytes}
	if res.Reused {
		out.Message = "reused " + res.Image
	}
	return out, nil
}

// checkDependencies compares the model's requirements (from readEnv) with
// the base image's Python packages, as spec.image.dependencyPolicy asks.
func (p *Pool) checkDependencies(ctx context.Context, md *v1alpha1.ModelDeployment, req imagebuild.Request, readEnv func() (*pydeps.ModelEnvironment, error)) (*Dependencies, error) {
	policy := md.Spec.DependencyPolicyOrDefault()
	if policy == v1alpha1.DependencyPolicyIgnore {
		return &Dependencies{Skipped: true, Satisfied: true, Message: "dependencyPolicy is Ignore"}, nil
	}
	modelEnv, err := readEnv()
	if err != nil {
		return &Dependencies{Message: err.Error()}, nil
	}
	installed, err := p.installed(ctx, req)
	if err != nil {
		return nil, err
	}
	report := pydeps.Check(modelEnv, installed)
	deps := &Dependencies{Satisfied: report.Satisfied(), Message: report.Summary()}
	if !deps.Satisfied && policy == v1alpha1.DependencyPolicyEnforce {
		return deps, failure.Errorf(failure.Refused, failure.Dependencies,
			"the base image does not satisfy the model (dependencyPolicy Enforce): %s", report.Summary())
	}
	return deps, nil
}

// maxScans bounds the cache of base image scans.
const maxScans = 64

// installed is what the base image of req holds, scanned once per base
// image digest: reading every layer of a large base takes seconds.
func (p *Pool) installed(ctx context.Context, req imagebuild.Request) (*pydeps.Installed, error) {
	base, err := p.Builder.BaseImage(ctx, req)
	if err != nil {
		return nil, err
	}
	digest, err := base.Digest()
	if err != nil {
		return nil, failure.New(failure.Other, failure.Registry, "read the base image's digest", err)
	}
	p.mu.Lock()
	if p.scans == nil {
		p.scans = lru.New(maxScans)
	}
	cached, ok := p.scans.Get(digest.String())
	p.mu.Unlock()
	if ok {
		return cached.(*pydeps.Installed), nil
	}
	in, err := pydeps.InspectImage(base)
	if err != nil {
		return nil, failure.New(failure.Other, failure.Registry, "inspect the base image", err)
	}
	p.mu.Lock()
	p.scans.Add(digest.String(), in)
	p.mu.Unlock()
	return in, nil
}

// modelEnvironmentFiles are what the dependency check reads of a model.
var modelEnvironmentFiles = []string{"requirements.txt", "python_env.yaml"}

// readModelEnvironment reads a model version's requirements from MLflow
// without downloading the model: the two small files the check needs.
func readModelEnvironment(ctx context.Context, mc *mlflow.Client, model, version, tempDir string) (*pydeps.ModelEnvironment, error) {
	dir, err := os.MkdirTemp(tempDir, "requirements-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	for _, name := range modelEnvironmentFiles {
		data, err := mc.ReadArtifact(ctx, model, version, name, 1<<20)
		if failure.IsNotFound(err) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			return nil, err
		}
	}
	return pydeps.ReadModelEnvironment(dir)
}

// request is the build request of a ModelDeployment's model version.
func (p *Pool) request(ctx context.Context, md *v1alpha1.ModelDeployment, mc *mlflow.Client, mv *mlflow.ModelVersion) (imagebuild.Request, error) {
	baseRepo := md.Spec.Image.BaseImage
	if ref, err := name.ParseReference(baseRepo, name.WeakValidation); err == nil {
		baseRepo = ref.Context().Name()
	}
	pull, err := p.keychain(ctx, md.Namespace, md.Spec.Image.BaseImagePullSecretRef, baseRepo)
	if err != nil {
		return imagebuild.Request{}, err
	}
	push, err := p.keychain(ctx, md.Namespace, md.Spec.Image.PushSecretRef, md.Spec.Image.Repository)
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

// keychain is what a build of namespace authenticates with to repository:
// the Secret the spec names and nothing else (read as the kubelet reads an
// image pull Secret; it answers anonymous for registries it does not list:
// the operator's own identity is never a fallback), or, without a Secret,
// the operator's own identity (Docker config and cloud identities) where an
// administrator granted it (OwnCredentials), else anonymous. The Secret is
// read from the ModelDeployment's namespace only.
func (p *Pool) keychain(ctx context.Context, namespace string, ref *corev1.LocalObjectReference, repository string) (authn.Keychain, error) {
	if ref == nil || ref.Name == "" {
		if p.OwnCredentials != nil && p.OwnCredentials(namespace, repository) {
			if p.Keychain != nil {
				return p.Keychain, nil
			}
			return authn.DefaultKeychain, nil
		}
		return anonymous, nil
	}
	data, err := resolver.ReadSecret(ctx, p.Reader, namespace, ref.Name)
	if err != nil {
		return nil, err
	}
	kc, err := registryauth.FromSecret(data)
	switch {
	case errors.Is(err, registryauth.ErrNoDockerConfig):
		return nil, failure.Errorf(failure.NotFound, failure.Secret, "secret %q has %s", ref.Name, err)
	case err != nil:
		return nil, failure.New(failure.NotFound, failure.Secret, fmt.Sprintf("secret %q", ref.Name), err)
	}
	return kc, nil
}

// anonymous answers anonymous for every registry.
var anonymous = authn.NewMultiKeychain()

// maxBuilt bounds the record of the images this operator pushed.
const maxBuilt = 4096

// provenance is what an image this operator pushed holds.
type provenance struct {
	digest, baseDigest                  string
	trackingURI, model, version, source string
}

func provenanceOf(req imagebuild.Request, res *imagebuild.Result) provenance {
	return provenance{digest: res.Digest, baseDigest: res.BaseDigest, trackingURI: req.Model.TrackingURI,
		model: req.Model.Name, version: req.Model.Version, source: req.Model.Source}
}

// record remembers that this operator pushed (or rebuilt and found) res
// for req.
func (p *Pool) record(req imagebuild.Request, res *imagebuild.Result) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.built.Add(req.Repository+":"+req.Tag, provenanceOf(req, res))
}

// pushedHere tells whether the image the tag holds (found by its labels,
// which anyone who can push there can write) is one this operator pushed
// for the same model version from the same MLflow server on the same base.
// Only then is it reused without a download; otherwise the model is
// downloaded and the image rebuilt: builds are reproducible, so a genuine
// image is rebuilt to the same digest, and a planted one is replaced.
func (p *Pool) pushedHere(req imagebuild.Request, res *imagebuild.Result) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	known, ok := p.built.Get(req.Repository + ":" + req.Tag)
	return ok && known.(provenance) == provenanceOf(req, res)
}

// buildSpec is what, besides the version, decides the image.
func buildSpec(md *v1alpha1.ModelDeployment) string {
	i := md.Spec.Image
	return strings.Join([]string{i.BaseImage, i.Repository, md.Spec.TagTemplate(), fmt.Sprint(md.Spec.ServingPort()), fmt.Sprint(i.InsecureRegistry),
		string(md.Spec.DependencyPolicyOrDefault())}, "\x00")
}
