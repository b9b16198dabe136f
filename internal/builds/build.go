package builds

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	corev1 "k8s.io/api/core/v1"

	v1alpha1 "github.com/mlflow-operator/mlflow-operator/api/v1alpha1"
	"github.com/mlflow-operator/mlflow-operator/internal/failure"
	"github.com/mlflow-operator/mlflow-operator/internal/imagebuild"
	"github.com/mlflow-operator/mlflow-operator/internal/mlflow"
	"github.com/mlflow-operator/mlflow-operator/internal/pydeps"
	"github.com/mlflow-operator/mlflow-operator/internal/resolver"
	"github.com/mlflow-operator/mlflow-operator/internal/resources"
)

// build does one build: look the tag up, else download, check, build, push.
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
	if res, ok, err := p.Builder.Lookup(ctx, req); err != nil {
		return nil, err
	} else if ok {
		return &Result{Image: res.Image, Reused: true, Message: "reused " + res.Image, Dependencies: &Dependencies{
			Skipped: true, Satisfied: true, Message: "the image was built and checked before; reused " + res.Image}}, nil
	}

	p.setPhase(j, "downloading the model from MLflow")
	dir, err := os.MkdirTemp(p.TempDir, "model-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	manifest, err := mc.DownloadVersion(ctx, md.Spec.Model.Name, v.Version, dir)
	if err != nil {
		return nil, err
	}
	req.ModelDir = dir
	req.Model.Digest = manifest.Digest()

	deps, err := p.checkDependencies(ctx, md, req, dir)
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
	out := &Result{Image: res.Image, Reused: res.Reused, Message: "pushed " + res.Image, Dependencies: deps}
	if res.Reused {
		out.Message = "reused " + res.Image
	}
	return out, nil
}

// checkDependencies compares the model's requirements with the base image's
// Python packages, as spec.image.dependencyPolicy asks.
func (p *Pool) checkDependencies(ctx context.Context, md *v1alpha1.ModelDeployment, req imagebuild.Request, dir string) (*Dependencies, error) {
	policy := md.Spec.DependencyPolicyOrDefault()
	if policy == v1alpha1.DependencyPolicyIgnore {
		return &Dependencies{Skipped: true, Satisfied: true, Message: "dependencyPolicy is Ignore"}, nil
	}
	modelEnv, err := pydeps.ReadModelEnvironment(dir)
	if err != nil {
		return &Dependencies{Message: err.Error()}, nil
	}
	base, err := p.Builder.BaseImage(ctx, req)
	if err != nil {
		return nil, err
	}
	installed, err := pydeps.InspectImage(base)
	if err != nil {
		return nil, failure.New(failure.Other, failure.Registry, "inspect the base image", err)
	}
	report := pydeps.Check(modelEnv, installed)
	deps := &Dependencies{Satisfied: report.Satisfied(), Message: report.Summary()}
	if !deps.Satisfied && policy == v1alpha1.DependencyPolicyEnforce {
		return deps, failure.Errorf(failure.Refused, failure.Dependencies,
			"the base image does not satisfy the model (dependencyPolicy Enforce): %s", report.Summary())
	}
	return deps, nil
}

// request is the build request of a ModelDeployment's model version.
func (p *Pool) request(ctx context.Context, md *v1alpha1.ModelDeployment, mc *mlflow.Client, mv *mlflow.ModelVersion) (imagebuild.Request, error) {
	pull, err := p.keychain(ctx, md.Namespace, md.Spec.Image.BaseImagePullSecretRef)
	if err != nil {
		return imagebuild.Request{}, err
	}
	push, err := p.keychain(ctx, md.Namespace, md.Spec.Image.PushSecretRef)
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
func (p *Pool) keychain(ctx context.Context, namespace string, ref *corev1.LocalObjectReference) (authn.Keychain, error) {
	own := p.Keychain
	if own == nil {
		own = authn.DefaultKeychain
	}
	if ref == nil || ref.Name == "" {
		return own, nil
	}
	data, err := resolver.ReadSecret(ctx, p.Reader, namespace, ref.Name)
	if err != nil {
		return nil, err
	}
	config, ok := data[corev1.DockerConfigJsonKey]
	if !ok {
		return nil, failure.Errorf(failure.NotFound, failure.Secret, "secret %q has no %s key (want type %s)",
			ref.Name, corev1.DockerConfigJsonKey, corev1.SecretTypeDockerConfigJson)
	}
	kc, err := imagebuild.NewDockerConfigKeychain(config)
	if err != nil {
		return nil, failure.New(failure.NotFound, failure.Secret, fmt.Sprintf("secret %q", ref.Name), err)
	}
	return authn.NewMultiKeychain(kc, own), nil
}

// buildSpec is what, besides the version, decides the image.
func buildSpec(md *v1alpha1.ModelDeployment) string {
	i := md.Spec.Image
	return strings.Join([]string{i.BaseImage, i.Repository, md.Spec.TagTemplate(), fmt.Sprint(md.Spec.ServingPort()), fmt.Sprint(i.InsecureRegistry),
		string(md.Spec.DependencyPolicyOrDefault())}, "\x00")
}
