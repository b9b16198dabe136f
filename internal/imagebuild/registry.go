package imagebuild

// This file talks to registries beyond pushing: the options of every request,
// the check whether the tag already holds the image, and the translation of
// go-containerregistry's errors into failures.

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/mlflow-operator/mlflow-operator/internal/failure"
)

// reusable tells whether the tag already holds this model version built on
// this base, so nothing needs building or pushing. Any failure to read the
// tag means "no": building again is always correct.
func (bd *build) reusable() (*Result, bool) {
	req := bd.req
	desc, err := remote.Get(bd.tag, bd.pushOpts...)
	if err != nil {
		return nil, false
	}
	var img v1.Image
	platforms := 1
	if desc.MediaType.IsIndex() {
		idx, err := desc.ImageIndex()
		if err != nil {
			return nil, false
		}
		im, err := idx.IndexManifest()
		if err != nil || len(im.Manifests) == 0 {
			return nil, false
		}
		platforms = len(im.Manifests)
		if img, err = idx.Image(im.Manifests[0].Digest); err != nil {
			return nil, false
		}
	} else if img, err = desc.Image(); err != nil {
		return nil, false
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, false
	}
	l := cf.Config.Labels
	if l[LabelModelName] != req.Model.Name || l[LabelVersion] != req.Model.Version || l[LabelBaseDigest] != bd.baseDigest {
		return nil, false
	}
	// An image whose layer an older operator wrote is replaced, not kept.
	if l[LabelLayerFormat] != layerFormat {
		return nil, false
	}
	// With the files' digest known, it must match; before the download,
	// the version's source must (MLflow versions do not change their files).
	if req.Model.Digest != "" && l[LabelModelDigest] != req.Model.Digest {
		return nil, false
	}
	// The label holds the source as imageLabels writes it (without
	// credentials).
	if src := sourceLabel(req.Model.Source); req.Model.Digest == "" && (src == "" || l[LabelModelSource] != src) {
		return nil, false
	}
	return &Result{
		Image: bd.repo.Digest(desc.Digest.String()).String(), Digest: desc.Digest.String(),
		BaseDigest: bd.baseDigest, Reused: true, Platforms: platforms,
	}, true
}

func (b *Builder) remoteOptions(ctx context.Context, kc authn.Keychain, insecure bool) []remote.Option {
	if kc == nil {
		kc = authn.DefaultKeychain
	}
	jobs := b.Jobs
	if jobs == 0 {
		jobs = 4
	}
	return []remote.Option{
		remote.WithContext(ctx), remote.WithAuthFromKeychain(kc), remote.WithTransport(b.transport(insecure)), remote.WithJobs(jobs),
		remote.WithUserAgent("mlflow-operator"),
		remote.WithRetryBackoff(remote.Backoff{Duration: 500 * time.Millisecond, Factor: 2, Jitter: 0.2, Steps: 4}),
	}
}

// registryTimeouts bound the phases of one registry request that a
// registry decides the length of: connecting, the TLS handshake, and the
// wait for an answer once the request (body included) is sent. A registry
// that accepts connections and never answers would otherwise hold a build
// worker for as long as the caller's context allows, and the context of a
// build is long: it must fit the upload of a large model. The body of an
// answer is not bounded here: a large blob takes as long as it takes.
type registryTimeouts struct {
	dial, tlsHandshake, responseHeader time.Duration
}

// defaultRegistryTimeouts: 30 s for an answer is generous for a manifest or
// the end of an upload, and short next to a build's deadline.
var defaultRegistryTimeouts = registryTimeouts{dial: 30 * time.Second, tlsHandshake: 10 * time.Second, responseHeader: 30 * time.Second}

// transport is the Builder's Transport, or a copy of go-containerregistry's
// default transport with registryTimeouts set.
func (b *Builder) transport(insecure bool) http.RoundTripper {
	if b.Transport != nil {
		return b.Transport
	}
	to := b.timeouts
	if to == (registryTimeouts{}) {
		to = defaultRegistryTimeouts
	}
	t := remote.DefaultTransport.(*http.Transport).Clone()
	// Set here rather than trusted from the library's default, which has no
	// answer timeout and may change its others.
	t.DialContext = (&net.Dialer{Timeout: to.dial, KeepAlive: 30 * time.Second}).DialContext
	t.TLSHandshakeTimeout = to.tlsHandshake
	t.ResponseHeaderTimeout = to.responseHeader
	if insecure {
		t.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // the spec opted in
	}
	return t
}

// classify turns a go-containerregistry error of step op into a failure of
// the registry: Unauthorized, NotFound, Unreachable, or Other; or keeps the
// failure of ours it carries.
func classify(op string, err error) error {
	if e, ok := failure.As(err); ok {
		// One of ours, come back through go-containerregistry: the writer
		// of a streamed layer failed on the model files. It keeps its kind
		// and subject; the registry did nothing wrong.
		return failure.New(e.Kind, e.Subject, op, err)
	}
	kind := failure.Other
	var te *transport.Error
	var ne net.Error
	var opErr *net.OpError
	switch {
	case errors.As(err, &te):
		kind = transportKind(te)
	case errors.As(err, &opErr), errors.As(err, &ne), errors.Is(err, context.DeadlineExceeded):
		kind = failure.Unreachable
	}
	return failure.New(kind, failure.Registry, op, err)
}

// transportKind reads a registry's answer: the HTTP status first, then, for
// a status that says less (a 400), the error codes of the body.
func transportKind(te *transport.Error) failure.Kind {
	switch {
	case te.StatusCode == http.StatusUnauthorized || te.StatusCode == http.StatusForbidden:
		return failure.Unauthorized
	case te.StatusCode == http.StatusNotFound:
		return failure.NotFound
	case te.StatusCode == http.StatusTooManyRequests || te.StatusCode >= 500:
		return failure.Unreachable
	}
	for _, d := range te.Errors {
		switch d.Code {
		case transport.UnauthorizedErrorCode, transport.DeniedErrorCode:
			return failure.Unauthorized
		case transport.ManifestUnknownErrorCode, transport.NameUnknownErrorCode, transport.BlobUnknownErrorCode:
			return failure.NotFound
		}
	}
	return failure.Other
}

// sentBytes counts the bytes of request bodies a transport sends: what a
// push uploads (layers and manifests; blobs the registry holds already are
// not sent, mounted ones neither).
type sentBytes struct {
	next http.RoundTripper
	n    *atomic.Int64
}

func (s sentBytes) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body == nil || r.Body == http.NoBody {
		return s.next.RoundTrip(r)
	}
	counted := r.Clone(r.Context())
	counted.Body = &countingBody{ReadCloser: r.Body, n: s.n}
	return s.next.RoundTrip(counted)
}

type countingBody struct {
	io.ReadCloser
	n *atomic.Int64
}

func (c *countingBody) Read(p []byte) (int, error) {
	n, err := c.ReadCloser.Read(p)
	c.n.Add(int64(n))
	return n, err
}
