package imagebuild

// This file assembles the image: the three ways of adding the model layer to
// the base (single, streamed, index), the push they end with, and the config
// edits, labels and annotations they all make.

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/mlflow-operator/mlflow-operator/internal/failure"
)

// layerOptions shape the model layer of this build. The layer's media type
// follows the base's family: an OCI manifest with a Docker layer (or the
// reverse) is refused by some registries and runtimes.
func (bd *build) layerOptions() LayerOptions {
	mt := types.DockerLayer
	if bd.base.MediaType == types.OCIManifestSchema1 || bd.base.MediaType == types.OCIImageIndex {
		mt = types.OCILayer
	}
	dir := bd.req.TempDir
	if dir == "" {
		dir = bd.b.TempDir
	}
	return LayerOptions{ModTime: bd.req.Model.Created, Level: bd.b.Level, MediaType: mt, TempDir: dir}
}

// single adds a layer (a FileLayer) to a single-platform base.
func (bd *build) single(layer v1.Layer) (*Result, error) {
	base, err := bd.base.Image()
	if err != nil {
		return nil, classify("read base image", err)
	}
	img, err := addModel(base, layer, bd.req, bd.labels)
	if err != nil {
		return nil, err
	}
	return bd.push(img, 1)
}

// streamed adds the model to a single-platform base with a layer computed
// during the upload: one pass over the files, no layer file.
func (bd *build) streamed() (*Result, error) {
	base, err := bd.base.Image()
	if err != nil {
		return nil, classify("read base image", err)
	}
	// The config is edited before the layer is appended: a streamed layer's
	// diff ID is known only once it is uploaded, and the push uploads it
	// first.
	cfgd, err := configure(base, bd.req, bd.labels)
	if err != nil {
		return nil, err
	}
	layer, stop := streamModelLayer(bd.req.ModelDir, bd.layerOptions())
	// On success the upload has read the layer to its end and stop only
	// waits for the writer; on failure it unblocks it.
	defer stop()
	img, err := mutate.Append(cfgd, mutate.Addendum{Layer: layer, History: history(bd.req)})
	if err != nil {
		return nil, failure.New(failure.Other, failure.Build, "", err)
	}
	return bd.push(img, 1)
}

// index adds the layer to every platform image of a base index and builds an
// index of the results, with the base index's media type.
func (bd *build) index(ctx context.Context, layer v1.Layer) (*Result, error) {
	baseIdx, err := bd.base.ImageIndex()
	if err != nil {
		return nil, classify("read base index", err)
	}
	im, err := baseIdx.IndexManifest()
	if err != nil {
		return nil, classify("read base index", err)
	}
	var idx v1.ImageIndex = empty.Index
	idx = mutate.IndexMediaType(idx, bd.base.MediaType)
	n := 0
	for _, desc := range im.Manifests {
		if !desc.MediaType.IsImage() || desc.Platform == nil || desc.Platform.OS == "unknown" {
			// Attestations and the like describe the base, not this image.
			continue
		}
		// Each platform fetches its base image: stop between them when the
		// reconcile is over.
		if err := ctx.Err(); err != nil {
			return nil, failure.New(failure.Other, failure.Build, "", err)
		}
		base, err := baseIdx.Image(desc.Digest)
		if err != nil {
			return nil, classify("read base image for "+desc.Platform.String(), err)
		}
		img, err := addModel(base, layer, bd.req, bd.labels)
		if err != nil {
			return nil, err
		}
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: desc.Platform}})
		n++
	}
	if n == 0 {
		return nil, failure.New(failure.Invalid, failure.Build, "read base index", errors.New("the base index holds no platform image"))
	}
	if bd.base.MediaType == types.OCIImageIndex {
		idx = mutate.Annotations(idx, annotations(bd.labels)).(v1.ImageIndex)
	}
	return bd.push(idx, n)
}

// pushable is what a build pushes: a v1.Image or a v1.ImageIndex.
type pushable interface {
	remote.Taggable
	Digest() (v1.Hash, error)
}

// push writes t (an image or an index, remote.Push tells them apart) to the
// tag and answers it by digest: the tag may move, the digest does not.
func (bd *build) push(t pushable, platforms int) (*Result, error) {
	if err := remote.Push(bd.tag, t, bd.pushOpts...); err != nil {
		return nil, classify("push "+bd.tag.String(), err)
	}
	// After the push: a streamed layer's digest, hence the image's, is known
	// only once it has been uploaded.
	d, err := t.Digest()
	if err != nil {
		return nil, failure.New(failure.Other, failure.Build, "", err)
	}
	return &Result{
		Image: bd.repo.Digest(d.String()).String(), Digest: d.String(), BaseDigest: bd.baseDigest, Platforms: platforms,
		PushedBytes: bd.sent.Load(),
	}, nil
}

func history(req Request) v1.History {
	return v1.History{
		Created:   v1.Time{Time: req.Model.Created},
		CreatedBy: fmt.Sprintf("mlflow-operator: MLflow model %s version %s at %s", req.Model.Name, req.Model.Version, ModelPath),
		Comment:   sourceLabel(req.Model.Source),
	}
}

// addModel appends the model layer to base and edits a copy of its config:
// the serving command, MLFLOW_DISABLE_ENV_CREATION, the port, the user,
// labels and a history entry. Everything else of the base's config stays.
func addModel(base v1.Image, layer v1.Layer, req Request, labels map[string]string) (v1.Image, error) {
	img, err := mutate.Append(base, mutate.Addendum{Layer: layer, History: history(req)})
	if err != nil {
		return nil, failure.New(failure.Other, failure.Build, "", err)
	}
	return configure(img, req, labels)
}

// configure edits a copy of img's config for serving the model.
func configure(img v1.Image, req Request, labels map[string]string) (v1.Image, error) {
	created := v1.Time{Time: req.Model.Created}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, classify("read base config", err)
	}
	cf = cf.DeepCopy()
	cf.Created = created
	command := req.Command
	if len(command) == 0 {
		command = DefaultCommand(req.Port)
	}
	cf.Config.Entrypoint = command
	cf.Config.Cmd = nil
	cf.Config.Env = setEnv(cf.Config.Env, "MLFLOW_DISABLE_ENV_CREATION", "true")
	// The server runs as a user without a passwd entry on a read-only root:
	// MLflow cannot even import without a home folder, and /tmp is the one
	// writable place the pods have. A base that sets HOME keeps it.
	if !hasEnv(cf.Config.Env, "HOME") {
		cf.Config.Env = append(cf.Config.Env, "HOME=/tmp")
	}
	if cf.Config.ExposedPorts == nil {
		cf.Config.ExposedPorts = map[string]struct{}{}
	}
	cf.Config.ExposedPorts[fmt.Sprintf("%d/tcp", req.Port)] = struct{}{}
	cf.Config.User = fmt.Sprintf("%d:%d", req.UID, req.GID)
	if cf.Config.Labels == nil {
		cf.Config.Labels = map[string]string{}
	}
	for k, v := range labels {
		cf.Config.Labels[k] = v
	}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		return nil, failure.New(failure.Other, failure.Build, "", err)
	}
	if mt, err := img.MediaType(); err == nil && mt == types.OCIManifestSchema1 {
		// Docker schema 2 manifests have no annotations; OCI ones do.
		img = mutate.Annotations(img, annotations(labels)).(v1.Image)
	}
	return img, nil
}

// imageLabels are the labels of an image of model m built on the base
// baseName (as written in the request) whose digest is baseDigest. Empty
// values are left out.
func imageLabels(m Model, baseName, baseDigest string) map[string]string {
	l := map[string]string{
		LabelCreated:     m.Created.UTC().Format(time.RFC3339),
		LabelTitle:       m.Name,
		LabelRevision:    m.RunID,
		LabelBaseName:    baseName,
		LabelBaseDigest:  baseDigest,
		LabelModelName:   m.Name,
		LabelVersion:     m.Version,
		LabelRunID:       m.RunID,
		LabelModelSource: sourceLabel(m.Source),
		LabelModelDigest: m.Digest,
		LabelLayerFormat: layerFormat,
	}
	if tracking := trackingLabel(m.TrackingURI); tracking != "" {
		l[LabelTracking] = tracking
		l[LabelSource] = strings.TrimRight(tracking, "/") + "/#/models/" + m.Name + "/versions/" + m.Version
	}
	for k, v := range l {
		if v == "" {
			delete(l, k)
		}
	}
	return l
}

// Labels are read by anyone who can pull the image, and MLflow addresses
// may carry credentials ("http://user:token@mlflow"). The MLflow client
// redacts its tracking URI already; these do it again here, where the
// labels are written, whoever fills in the Model.

// trackingLabel is a tracking server's address fit for a label: without
// userinfo, query and fragment (a server's base address needs neither, and
// tokens hide there too). An address that does not parse as a URL with a
// host is left out: it cannot be cleaned.
func trackingLabel(uri string) string {
	if uri == "" {
		return ""
	}
	u, err := url.Parse(uri)
	if err != nil || u.Host == "" {
		return ""
	}
	u.User, u.RawQuery, u.ForceQuery, u.Fragment, u.RawFragment = nil, "", false, "", ""
	return u.String()
}

// sourceLabel is a model version's source URI (models:/m-..., runs:/...,
// s3://...) fit for a label: without userinfo. A source without userinfo is
// kept byte for byte, so that reusable compares it with what an earlier
// build wrote. One that does not parse, or whose userinfo url.Parse cannot
// see (an opaque "scheme:user@host"), is left out.
func sourceLabel(src string) string {
	u, err := url.Parse(src)
	switch {
	case err != nil || strings.Contains(u.Opaque, "@"):
		return ""
	case u.User == nil:
		return src
	}
	u.User = nil
	return u.String()
}

// annotations are the labels a manifest carries too (registries and tools
// read them without fetching the config).
func annotations(labels map[string]string) map[string]string {
	out := map[string]string{}
	for _, k := range []string{LabelCreated, LabelSource, LabelRevision, LabelTitle, LabelBaseName, LabelBaseDigest,
		LabelModelName, LabelVersion, LabelModelDigest} {
		if v, ok := labels[k]; ok {
			out[k] = v
		}
	}
	return out
}

func hasEnv(env []string, key string) bool {
	for _, e := range env {
		if strings.HasPrefix(e, key+"=") {
			return true
		}
	}
	return false
}

func setEnv(env []string, key, value string) []string {
	out := make([]string, 0, len(env)+1)
	for _, e := range env {
		if !strings.HasPrefix(e, key+"=") {
			out = append(out, e)
		}
	}
	return append(out, key+"="+value)
}
