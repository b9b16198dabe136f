// Package imagebuild turns a downloaded MLflow model directory into a serving
// image without a Docker daemon: the base image plus one reproducible layer
// holding the model at /opt/ml/model, with the serving command, labels and
// history in its config, pushed to a registry and addressed by digest. It
// knows nothing of Kubernetes.
package imagebuild

import (
	"context"
	"errors"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/mlflow-operator/mlflow-operator/internal/failure"
)

// Labels the operator writes into the image config (and, as annotations, the
// manifest). The org.opencontainers.image.* keys are the OCI's.
const (
	LabelCreated     = "org.opencontainers.image.created"
	LabelSource      = "org.opencontainers.image.source"
	LabelRevision    = "org.opencontainers.image.revision"
	LabelTitle       = "org.opencontainers.image.title"
	LabelBaseName    = "org.opencontainers.image.base.name"
	LabelBaseDigest  = "org.opencontainers.image.base.digest"
	LabelModelName   = "serving.mlflow-operator.io/model-name"
	LabelVersion     = "serving.mlflow-operator.io/model-version"
	LabelRunID       = "serving.mlflow-operator.io/run-id"
	LabelModelSource = "serving.mlflow-operator.io/model-source"
	LabelModelDigest = "serving.mlflow-operator.io/model-digest"
	LabelTracking    = "serving.mlflow-operator.io/tracking-uri"
	// LabelLayerFormat says how the model layer was written (layerFormat).
	LabelLayerFormat = "serving.mlflow-operator.io/layer-format"
)

// layerFormat is the model layer's format, in LabelLayerFormat. An image
// without it (written before) has the model owned by the serving user and
// writable, and links checked as written only: it is not reused, so that
// the next build of its version replaces it. Change it whenever the layer
// changes in a way a reused image must not miss.
const layerFormat = "2" // owned by root, read-only, links resolved

// Model describes the model version the image carries.
type Model struct {
	Name, Version, RunID string
	// Source is the version's MLflow source URI (models:/m-..., runs:/...).
	Source string
	// TrackingURI is the MLflow server it came from.
	TrackingURI string
	// Created is when the version was registered: the image's creation
	// time, so that a rebuild gives the same digest.
	Created time.Time
	// Digest is a digest of the model files (see mlflow.Manifest.Digest).
	Digest string
}

// Request is one image to build.
type Request struct {
	// ModelDir holds the downloaded model files.
	ModelDir string
	// TempDir holds the layer file; Builder.TempDir when empty.
	TempDir string
	Model   Model
	// BaseImage is the serving image to add the model to (tag or digest).
	BaseImage string
	// Repository and Tag say where the image is pushed.
	Repository, Tag string
	// Port the scoring server listens on.
	Port int32
	// Command replaces the default serving command when set.
	Command []string
	// UID and GID run the server: the image config's User. They do not own
	// the model files, which belong to root and are read-only (see
	// NewModelLayer), so that the server cannot change the model it serves.
	UID, GID int
	// Insecure allows plain HTTP and unverified TLS to the registries.
	Insecure bool
	// PullKeychain authenticates to the base image's registry, PushKeychain
	// to the repository's; authn.DefaultKeychain when nil.
	PullKeychain, PushKeychain authn.Keychain
	// TrustLabels lets Build reuse the image the tag holds when its labels
	// name this model version, model digest and base. Labels are written by
	// whoever pushed the image; where that is not known to be this operator
	// (a tenant may plant an image under another's tag), leave it off: the
	// image is built and pushed, which reproduces a genuine one's digest.
	TrustLabels bool
}

// Result is a pushed (or reused) image.
type Result struct {
	// Image is repository@sha256:..., what the workload deploys.
	Image string
	// Digest of the image (or index).
	Digest string
	// BaseDigest is the digest of the base image the layer went onto.
	BaseDigest string
	// Reused: the tag already held this model on this base; nothing was
	// built or pushed.
	Reused bool
	// Platforms built (1 for a single image).
	Platforms int
	// PushedBytes is what the push sent to the registry: request bodies,
	// layers and manifests, without the blobs the registry held already.
	PushedBytes int64
}

// Builder builds and pushes model images.
type Builder struct {
	// Transport carries registry requests; when nil, a copy of
	// remote.DefaultTransport with bounded dial, TLS handshake and answer
	// times (see registryTimeouts). A Transport given here is used as it is.
	Transport http.RoundTripper
	// TempDir holds layer files; os.TempDir() when empty.
	TempDir string
	// Level of gzip compression; gzip.BestSpeed when zero.
	Level int
	// Jobs is how many blobs are uploaded at once; 4 when zero.
	Jobs int
	// LayerFile makes single-platform builds write the layer to a file
	// first (FileLayer) instead of streaming it: tar and gzip computed while
	// uploading with go-containerregistry's streaming layer, which
	// `make bench-build` measured 40% faster for a 1 GiB model. Indexes
	// always use the file: every platform's image re-reads the layer. A
	// streamed upload that fails is retried by the build's own backoff.
	LayerFile bool

	// timeouts of the default transport; defaultRegistryTimeouts when zero.
	// Tests shorten them.
	timeouts registryTimeouts
}

// Lookup answers the image the tag already holds when it carries req's model
// version (and, when req.Model.Digest is set, the same files, else the same
// MLflow source) built on the current base image: then nothing needs
// downloading or building. ModelDir is not read.
func (b *Builder) Lookup(ctx context.Context, req Request) (*Result, bool, error) {
	bd, err := b.start(ctx, req)
	if err != nil {
		return nil, false, err
	}
	if err := bd.fetchBase(); err != nil {
		return nil, false, err
	}
	res, ok := bd.reusable()
	return res, ok, nil
}

// BaseImage fetches the base image (for an index, its linux/amd64 image, or
// its first), for inspection.
func (b *Builder) BaseImage(ctx context.Context, req Request) (v1.Image, error) {
	bd, err := b.start(ctx, req)
	if err != nil {
		return nil, err
	}
	if err := bd.fetchBase(); err != nil {
		return nil, err
	}
	desc := bd.base
	if !desc.MediaType.IsIndex() {
		img, err := desc.Image()
		if err != nil {
			return nil, classify("read base image", err)
		}
		return img, nil
	}
	idx, err := desc.ImageIndex()
	if err != nil {
		return nil, classify("read base index", err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, classify("read base index", err)
	}
	var pick *v1.Descriptor
	for i, d := range im.Manifests {
		if d.Platform != nil && d.Platform.OS == "linux" && d.Platform.Architecture == "amd64" {
			pick = &im.Manifests[i]
			break
		}
		if pick == nil && d.MediaType.IsImage() {
			pick = &im.Manifests[i]
		}
	}
	if pick == nil {
		return nil, failure.New(failure.Invalid, failure.Build, "read base index", errors.New("the base index holds no image"))
	}
	img, err := idx.Image(pick.Digest)
	if err != nil {
		return nil, classify("read base image", err)
	}
	return img, nil
}

// Build builds the image of req and pushes it, or, with req.TrustLabels,
// reuses the image the tag already holds when it carries the same model
// version, model digest and base digest.
func (b *Builder) Build(ctx context.Context, req Request) (*Result, error) {
	if req.Tag == "" || req.Repository == "" || req.BaseImage == "" || req.ModelDir == "" {
		return nil, failure.Errorf(failure.Other, failure.Build, "a build needs a model directory, a base image, a repository and a tag")
	}
	bd, err := b.start(ctx, req)
	if err != nil {
		return nil, err
	}
	// Before any request to a registry: an unsafe model fails the same way
	// whether or not the registries answer.
	if err := ValidateModelDir(req.ModelDir); err != nil {
		return nil, modelFilesError("check the model files", err)
	}
	if err := bd.fetchBase(); err != nil {
		return nil, err
	}
	if res, ok := bd.reusable(); ok && req.TrustLabels {
		return res, nil
	}
	// A streamed layer can be read once; every platform of an index reads
	// the layer again, so indexes always go through the file.
	if !b.LayerFile && !bd.base.MediaType.IsIndex() {
		return bd.streamed()
	}
	layer, err := NewModelLayer(req.ModelDir, bd.layerOptions())
	if err != nil {
		return nil, modelFilesError("archive the model", err)
	}
	defer layer.Close()
	if bd.base.MediaType.IsIndex() {
		return bd.index(ctx, layer)
	}
	return bd.single(layer)
}

// modelFilesError is the failure of step op on the model files. An unsafe
// entry already is an Invalid failure (the version's files will not
// change); anything else, a full disk or a file changing under the walk, is
// Other: a retry, with a new download, may pass where calling it Invalid
// would stop the deployment for good.
func modelFilesError(op string, err error) error {
	if e, ok := failure.As(err); ok {
		return failure.New(e.Kind, e.Subject, op, err)
	}
	return failure.New(failure.Other, failure.Build, op, err)
}

// build is one request on its way to an image: what Lookup, BaseImage and
// the three ways of building (single, streamed, index) share, worked out
// once so that none of them takes it as a list of parameters.
type build struct {
	b   *Builder
	req Request

	baseRef  name.Reference
	repo     name.Repository
	tag      name.Tag
	pullOpts []remote.Option // to the base image's registry
	pushOpts []remote.Option // to the repository's
	// sent counts the bytes pushOpts' requests send.
	sent *atomic.Int64

	// Set by fetchBase.
	base       *remote.Descriptor
	baseDigest string
	labels     map[string]string
}

// start parses req's references and prepares the registry options; it does
// not touch the network, so that a bad reference fails before anything else.
func (b *Builder) start(ctx context.Context, req Request) (*build, error) {
	nameOpts := []name.Option{name.StrictValidation}
	if req.Insecure {
		nameOpts = []name.Option{name.Insecure}
	}
	baseRef, err := name.ParseReference(req.BaseImage, nameOpts...)
	if err != nil {
		return nil, failure.New(failure.Invalid, failure.Build, "parse base image", err)
	}
	repo, err := name.NewRepository(req.Repository, nameOpts...)
	if err != nil {
		return nil, failure.New(failure.Invalid, failure.Build, "parse repository", err)
	}
	tag, err := name.NewTag(repo.String()+":"+req.Tag, nameOpts...)
	if err != nil {
		return nil, failure.New(failure.Invalid, failure.Build, "parse tag", err)
	}
	sent := &atomic.Int64{}
	// The last WithTransport wins: the push's requests go through the
	// counter.
	pushOpts := append(b.remoteOptions(ctx, req.PushKeychain, req.Insecure),
		remote.WithTransport(sentBytes{next: b.transport(req.Insecure), n: sent}))
	return &build{
		b: b, req: req, baseRef: baseRef, repo: repo, tag: tag,
		pullOpts: b.remoteOptions(ctx, req.PullKeychain, req.Insecure),
		pushOpts: pushOpts, sent: sent,
	}, nil
}

// fetchBase fetches the base image's descriptor (an image or an index) and
// the labels that name it.
func (bd *build) fetchBase() error {
	desc, err := remote.Get(bd.baseRef, bd.pullOpts...)
	if err != nil {
		return classify("fetch base image "+bd.baseRef.String(), err)
	}
	bd.base, bd.baseDigest = desc, desc.Digest.String()
	bd.labels = imageLabels(bd.req.Model, bd.baseRef.String(), bd.baseDigest)
	return nil
}
