package imagebuild

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/mlflow-operator/mlflow-operator/internal/failure"
)

// These tests push to go-containerregistry's in-process registry. The
// integration tests against Debian's registry server (with htpasswd) are in
// test/integration/buildpush.

// recorder counts the requests a registry receives.
type recorder struct {
	mu   sync.Mutex
	reqs []string
	next http.Handler
	// user and pass, when set, are required (basic auth).
	user, pass string
}

func (r *recorder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if r.user != "" {
		u, p, ok := req.BasicAuth()
		if !ok || u != r.user || p != r.pass {
			w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
	}
	r.mu.Lock()
	r.reqs = append(r.reqs, req.Method+" "+req.URL.Path)
	r.mu.Unlock()
	r.next.ServeHTTP(w, req)
}

// uploads counts blob uploads (POST/PUT/PATCH of blobs) since the last call.
func (r *recorder) uploads() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, q := range r.reqs {
		if strings.Contains(q, "/blobs/uploads") && !strings.HasPrefix(q, "GET") && !strings.HasPrefix(q, "HEAD") {
			n++
		}
	}
	r.reqs = nil
	return n
}

func newRegistry(t *testing.T) (*recorder, string) {
	t.Helper()
	rec := &recorder{next: registry.New(registry.Logger(nilLogger()))}
	srv := httptest.NewServer(rec)
	t.Cleanup(srv.Close)
	u, _ := url.Parse(srv.URL)
	return rec, u.Host
}

// pushBase pushes a base image with an entrypoint, env and labels of its own.
func pushBase(t *testing.T, host string, mt types.MediaType) string {
	t.Helper()
	img, err := random.Image(2048, 2)
	if err != nil {
		t.Fatal(err)
	}
	img = mutate.MediaType(img, mt)
	if mt == types.OCIManifestSchema1 {
		img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	}
	img, err = mutate.Config(img, v1.Config{
		Entrypoint: []string{"/bin/sh", "-c"}, Cmd: []string{"python"},
		Env:    []string{"PATH=/usr/local/bin:/usr/bin", "LANG=C.UTF-8", "MLFLOW_DISABLE_ENV_CREATION=false"},
		Labels: map[string]string{"base.example.com/flavor": "sklearn"},
	})
	if err != nil {
		t.Fatal(err)
	}
	ref := host + "/serving/base:1"
	if err := remote.Write(mustRef(t, ref), img); err != nil {
		t.Fatal(err)
	}
	return ref
}

func mustRef(t *testing.T, s string) name.Reference {
	t.Helper()
	r, err := name.ParseReference(s, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// modelDir writes a small model directory with a nested file and an
// incompressible blob.
func modelDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	blob := make([]byte, 100<<10)
	rand.Read(blob)
	files := map[string][]byte{
		"MLmodel":                    []byte("flavors:\n  python_function:\n    loader_module: mlflow.sklearn\n"),
		"requirements.txt":           []byte("mlflow==3.17.2\nscikit-learn==1.9.1\n"),
		"serving_input_example.json": []byte(`{"dataframe_split": {"columns": ["a"], "data": [[1]]}}`),
		"data/model.pkl":             blob,
		"code/run.sh":                []byte("#!/bin/sh\n"),
	}
	for p, b := range files {
		full := filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o700); err != nil {
			t.Fatal(err)
		}
		mode := os.FileMode(0o600)
		if strings.HasSuffix(p, ".sh") {
			mode = 0o700
		}
		if err := os.WriteFile(full, b, mode); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("data/model.pkl", filepath.Join(dir, "model-link.pkl")); err != nil {
		t.Fatal(err)
	}
	return dir
}

func request(dir, base, repo, tag string) Request {
	return Request{
		ModelDir: dir, BaseImage: base, Repository: repo, Tag: tag, Port: 8080, UID: 1000, GID: 1000, Insecure: true,
		Model: Model{Name: "iris", Version: "3", RunID: "run-3", Source: "models:/m-abc", TrackingURI: "http://mlflow:5000",
			Created: time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC), Digest: "sha256:feed"},
	}
}

// layerFiles reads the model layer (the image's last) into path -> header
// and content.
func layerFiles(t *testing.T, img v1.Image) (map[string]*tar.Header, map[string][]byte) {
	t.Helper()
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	rc, err := layers[len(layers)-1].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	hdrs, data := map[string]*tar.Header{}, map[string][]byte{}
	tr := tar.NewReader(rc)
	var order []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		order = append(order, h.Name)
		hdrs[h.Name] = h
		b, _ := io.ReadAll(tr)
		data[h.Name] = b
	}
	if !slices.IsSorted(order) {
		t.Errorf("layer entries are not sorted: %v", order)
	}
	return hdrs, data
}

func TestBuildSingleImage(t *testing.T) {
	for _, mt := range []types.MediaType{types.DockerManifestSchema2, types.OCIManifestSchema1} {
		t.Run(string(mt), func(t *testing.T) {
			rec, host := newRegistry(t)
			base := pushBase(t, host, mt)
			dir := modelDir(t)
			b := &Builder{}
			ctx := context.Background()
			res, err := b.Build(ctx, request(dir, base, host+"/models/iris", "iris-v3"))
			if err != nil {
				t.Fatal(err)
			}
			if res.Reused || res.Platforms != 1 || !strings.HasPrefix(res.Image, host+"/models/iris@sha256:") {
				t.Fatalf("result %+v", res)
			}
			img, err := remote.Image(mustRef(t, res.Image))
			if err != nil {
				t.Fatal(err)
			}
			baseImg, _ := remote.Image(mustRef(t, base))
			baseLayers, _ := baseImg.Layers()
			layers, _ := img.Layers()
			if len(layers) != len(baseLayers)+1 {
				t.Fatalf("%d layers, want the base's %d plus one", len(layers), len(baseLayers))
			}
			if gotMT, _ := img.MediaType(); gotMT != mt {
				t.Errorf("manifest media type %s, want the base's %s", gotMT, mt)
			}

			// The layer holds the model byte for byte, owned by root.
			hdrs, data := layerFiles(t, img)
			err = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
				if err != nil || d.IsDir() {
					return err
				}
				rel, _ := filepath.Rel(dir, p)
				h, ok := hdrs["opt/ml/model/"+rel]
				if !ok {
					t.Errorf("%s missing from the layer", rel)
					return nil
				}
				if d.Type()&os.ModeSymlink != 0 {
					if h.Typeflag != tar.TypeSymlink || h.Linkname != "data/model.pkl" {
						t.Errorf("%s: link %q", rel, h.Linkname)
					}
					return nil
				}
				want, _ := os.ReadFile(p)
				if !bytes.Equal(data["opt/ml/model/"+rel], want) {
					t.Errorf("%s differs from the model file", rel)
				}
				if h.Uid != 0 || h.Gid != 0 || h.Uname != "" || h.Gname != "" || !h.ModTime.Equal(time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)) {
					t.Errorf("%s: owner %d:%d %q time %s", rel, h.Uid, h.Gid, h.Uname, h.ModTime)
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			// Readable and runnable by the serving user, writable by no one.
			if h := hdrs["opt/ml/model/code/run.sh"]; h.Mode != 0o555 {
				t.Errorf("executable mode %o, want 555", h.Mode)
			}
			if h := hdrs["opt/ml/model/data/model.pkl"]; h.Mode != 0o444 {
				t.Errorf("file mode %o, want 444", h.Mode)
			}
			for _, dir := range []string{"opt/ml/model/", "opt/ml/model/data/"} {
				if h := hdrs[dir]; h == nil || h.Mode != 0o555 || h.Uid != 0 || h.Gid != 0 {
					t.Errorf("directory %s: %+v, want mode 555 owned by root", dir, h)
				}
			}
			if h := hdrs["opt/"]; h == nil || h.Uid != 0 {
				t.Errorf("opt/ must stay root's: %+v", h)
			}

			cf, _ := img.ConfigFile()
			c := cf.Config
			if len(c.Entrypoint) < 3 || c.Entrypoint[0] != "python3" || c.Entrypoint[2] != serveInit ||
				strings.Join(c.Entrypoint[3:], " ") != "mlflow models serve -m /opt/ml/model -h 0.0.0.0 -p 8080 --env-manager local" || len(c.Cmd) != 0 {
				t.Errorf("entrypoint %v cmd %v", c.Entrypoint, c.Cmd)
			}
			if !slices.Contains(c.Env, "MLFLOW_DISABLE_ENV_CREATION=true") || slices.Contains(c.Env, "MLFLOW_DISABLE_ENV_CREATION=false") || !slices.Contains(c.Env, "LANG=C.UTF-8") {
				t.Errorf("env %v", c.Env)
			}
			// The base sets no HOME: MLflow needs one to import, and /tmp is
			// the pods' one writable folder.
			if !slices.Contains(c.Env, "HOME=/tmp") {
				t.Errorf("env %v: no HOME", c.Env)
			}
			if _, ok := c.ExposedPorts["8080/tcp"]; !ok || c.User != "1000:1000" {
				t.Errorf("ports %v user %q", c.ExposedPorts, c.User)
			}
			for k, v := range map[string]string{
				LabelModelName: "iris", LabelVersion: "3", LabelRunID: "run-3", LabelModelSource: "models:/m-abc",
				LabelModelDigest: "sha256:feed", LabelBaseDigest: res.BaseDigest, LabelRevision: "run-3", LabelTitle: "iris",
				LabelCreated: "2026-11-01T10:00:00Z", LabelSource: "http://mlflow:5000/#/models/iris/versions/3",
				"base.example.com/flavor": "sklearn",
			} {
				if c.Labels[k] != v {
					t.Errorf("label %s = %q, want %q", k, c.Labels[k], v)
				}
			}
			last := cf.History[len(cf.History)-1]
			if !strings.Contains(last.CreatedBy, "iris version 3") || last.EmptyLayer {
				t.Errorf("history %+v", last)
			}
			m, _ := img.Manifest()
			if mt == types.OCIManifestSchema1 && m.Annotations[LabelVersion] != "3" {
				t.Errorf("OCI manifest annotations %v", m.Annotations)
			}

			// Reproducible: the same model on the same base under another tag
			// gives the same digest.
			again, err := b.Build(ctx, request(dir, base, host+"/models/iris", "iris-v3-again"))
			if err != nil {
				t.Fatal(err)
			}
			if again.Digest != res.Digest || again.Reused {
				t.Errorf("rebuild digest %s (reused %v), first %s", again.Digest, again.Reused, res.Digest)
			}

			// Idempotent when the labels are trusted: the tag already holds
			// it; nothing is uploaded.
			rec.uploads()
			trusted := request(dir, base, host+"/models/iris", "iris-v3")
			trusted.TrustLabels = true
			reused, err := b.Build(ctx, trusted)
			if err != nil {
				t.Fatal(err)
			}
			if !reused.Reused || reused.Digest != res.Digest {
				t.Errorf("second build %+v, want reuse of %s", reused, res.Digest)
			}
			if n := rec.uploads(); n != 0 {
				t.Errorf("%d blob uploads for a reused image", n)
			}
			// Without trust in the labels (who pushed is not known), the image
			// is built and pushed again: the same digest, nothing reused.
			untrusted, err := b.Build(ctx, request(dir, base, host+"/models/iris", "iris-v3"))
			if err != nil || untrusted.Reused || untrusted.Digest != res.Digest {
				t.Errorf("untrusted rebuild %+v %v, want a push of the same digest %s", untrusted, err, res.Digest)
			}
			// A different model digest under the same tag is built again.
			req := request(dir, base, host+"/models/iris", "iris-v3")
			req.TrustLabels = true
			req.Model.Digest = "sha256:other"
			rebuilt, err := b.Build(ctx, req)
			if err != nil || rebuilt.Reused {
				t.Errorf("changed model reused: %+v %v", rebuilt, err)
			}
		})
	}
}

func TestReproducibleAcrossHosts(t *testing.T) {
	// Two copies of the same files with other modes and times give the same
	// layer.
	a := modelDir(t)
	bdir := t.TempDir()
	err := filepath.WalkDir(a, func(p string, d os.DirEntry, err error) error {
		rel, _ := filepath.Rel(a, p)
		target := filepath.Join(bdir, rel)
		switch {
		case err != nil:
			return err
		case d.Type()&os.ModeSymlink != 0:
			l, _ := os.Readlink(p)
			return os.Symlink(l, target)
		case d.IsDir():
			return os.MkdirAll(target, 0o777)
		}
		data, _ := os.ReadFile(p)
		info, _ := d.Info()
		mode := os.FileMode(0o666)
		if info.Mode()&0o100 != 0 {
			mode = 0o750
		}
		if err := os.WriteFile(target, data, mode); err != nil {
			return err
		}
		return os.Chtimes(target, time.Now(), time.Now().Add(-time.Hour))
	})
	if err != nil {
		t.Fatal(err)
	}
	opts := LayerOptions{ModTime: time.Unix(1_790_000_000, 0)}
	la, err := NewModelLayer(a, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer la.Close()
	lb, err := NewModelLayer(bdir, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer lb.Close()
	da, _ := la.Digest()
	db, _ := lb.Digest()
	if da != db {
		t.Errorf("layer digests differ: %s %s", da, db)
	}
	// The digest really is the file's.
	rc, _ := la.Compressed()
	h, _, err := v1.SHA256(rc)
	rc.Close()
	if err != nil || h != da {
		t.Errorf("digest %s, file hashes to %s", da, h)
	}
}

func TestUnsafeEntriesRefused(t *testing.T) {
	tests := []struct {
		name  string
		setup func(dir string) error
	}{
		{"link outside", func(dir string) error { return os.Symlink("../../etc/passwd", filepath.Join(dir, "evil")) }},
		{"absolute link", func(dir string) error { return os.Symlink("/etc/passwd", filepath.Join(dir, "evil")) }},
		{"nested link climbing out", func(dir string) error {
			os.MkdirAll(filepath.Join(dir, "a"), 0o755)
			return os.Symlink("../../x", filepath.Join(dir, "a", "evil"))
		}},
		{"named pipe", func(dir string) error { return syscall.Mkfifo(filepath.Join(dir, "pipe"), 0o644) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := modelDir(t)
			if err := tc.setup(dir); err != nil {
				t.Fatal(err)
			}
			l, err := NewModelLayer(dir, LayerOptions{})
			if l != nil {
				l.Close()
			}
			if !errors.Is(err, ErrUnsafeEntry) {
				t.Fatalf("err %v, want ErrUnsafeEntry", err)
			}
			if err := ValidateModelDir(dir); !errors.Is(err, ErrUnsafeEntry) {
				t.Fatalf("ValidateModelDir: %v, want ErrUnsafeEntry", err)
			}
			// A build refuses it before touching the registry, as a
			// mistake retrying cannot fix.
			_, berr := (&Builder{}).Build(context.Background(), request(dir, "127.0.0.1:1/base:1", "127.0.0.1:1/models/x", "t"))
			if failure.KindOf(berr) != failure.Invalid || failure.SubjectOf(berr) != failure.Build || !errors.Is(berr, ErrUnsafeEntry) {
				t.Fatalf("Build: %v (kind %v, subject %q), want an invalid-build error", berr, failure.KindOf(berr), failure.SubjectOf(berr))
			}
		})
	}
	// A link inside the model directory is fine.
	dir := modelDir(t)
	os.MkdirAll(filepath.Join(dir, "a"), 0o755)
	if err := os.Symlink("../data/model.pkl", filepath.Join(dir, "a", "ok")); err != nil {
		t.Fatal(err)
	}
	l, err := NewModelLayer(dir, LayerOptions{})
	if err != nil {
		t.Fatalf("internal link refused: %v", err)
	}
	l.Close()
}

func TestBuildIndex(t *testing.T) {
	_, host := newRegistry(t)
	idx, err := random.Index(1024, 1, 2)
	if err != nil {
		t.Fatal(err)
	}
	// Give the two images platforms.
	im, _ := idx.IndexManifest()
	var platIdx v1.ImageIndex = mutate.IndexMediaType(emptyIndex(), types.OCIImageIndex)
	for i, d := range im.Manifests {
		img, _ := idx.Image(d.Digest)
		arch := []string{"amd64", "arm64"}[i]
		platIdx = mutate.AppendManifests(platIdx, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: arch}}})
	}
	// An attestation manifest, as docker buildx adds one: not a platform.
	platIdx = mutate.AppendManifests(platIdx, mutate.IndexAddendum{Add: attestation(t), Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "unknown", Architecture: "unknown"}}})
	base := host + "/serving/multi:1"
	if err := remote.WriteIndex(mustRef(t, base), platIdx); err != nil {
		t.Fatal(err)
	}
	dir := modelDir(t)
	res, err := (&Builder{}).Build(context.Background(), request(dir, base, host+"/models/iris", "iris-v3"))
	if err != nil {
		t.Fatal(err)
	}
	if res.Platforms != 2 {
		t.Fatalf("platforms %d", res.Platforms)
	}
	got, err := remote.Index(mustRef(t, res.Image))
	if err != nil {
		t.Fatal(err)
	}
	gm, _ := got.IndexManifest()
	var modelLayer v1.Hash
	for _, d := range gm.Manifests {
		img, _ := got.Image(d.Digest)
		layers, _ := img.Layers()
		dg, _ := layers[len(layers)-1].Digest()
		if modelLayer.Hex != "" && dg != modelLayer {
			t.Errorf("platforms carry different model layers")
		}
		modelLayer = dg
		cf, _ := img.ConfigFile()
		if cf.Config.Labels[LabelVersion] != "3" || d.Platform == nil || d.Platform.OS != "linux" {
			t.Errorf("platform %v labels %v", d.Platform, cf.Config.Labels)
		}
	}
	// Reused as an index too.
	trusted := request(modelDir(t), base, host+"/models/iris", "iris-v3")
	trusted.TrustLabels = true
	again, err := (&Builder{}).Build(context.Background(), trusted)
	if err != nil || !again.Reused || again.Platforms != 2 {
		t.Errorf("index rebuild %+v %v", again, err)
	}
	if len(gm.Manifests) != 2 {
		t.Errorf("%d manifests, want the 2 platforms without the attestation", len(gm.Manifests))
	}
	if gm.MediaType != types.OCIImageIndex || gm.Annotations[LabelVersion] != "3" || gm.Annotations[LabelBaseDigest] != res.BaseDigest {
		t.Errorf("index media type %s annotations %v", gm.MediaType, gm.Annotations)
	}
	// Reproducible as an index too.
	other, err := (&Builder{}).Build(context.Background(), request(dir, base, host+"/models/iris", "iris-v3-again"))
	if err != nil || other.Reused || other.Digest != res.Digest {
		t.Errorf("index under another tag %+v %v, want a new push of %s", other, err, res.Digest)
	}
}

// attestation is an image the way buildx's attestation manifests look to
// an index reader.
func attestation(t *testing.T) v1.Image {
	t.Helper()
	img, err := random.Image(256, 1)
	if err != nil {
		t.Fatal(err)
	}
	return mutate.MediaType(img, types.OCIManifestSchema1)
}

func TestBuildIndexWithoutPlatforms(t *testing.T) {
	_, host := newRegistry(t)
	var idx v1.ImageIndex = mutate.IndexMediaType(emptyIndex(), types.OCIImageIndex)
	idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: attestation(t), Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "unknown", Architecture: "unknown"}}})
	base := host + "/serving/attestations-only:1"
	if err := remote.WriteIndex(mustRef(t, base), idx); err != nil {
		t.Fatal(err)
	}
	_, err := (&Builder{}).Build(context.Background(), request(modelDir(t), base, host+"/models/iris", "t"))
	if failure.KindOf(err) != failure.Invalid || failure.SubjectOf(err) != failure.Build || !strings.Contains(err.Error(), "no platform image") {
		t.Fatalf("err %v (kind %v, subject %q), want an invalid build", err, failure.KindOf(err), failure.SubjectOf(err))
	}
}

func TestLayerMediaTypeFollowsBase(t *testing.T) {
	want := map[types.MediaType]types.MediaType{
		types.DockerManifestSchema2: types.DockerLayer,
		types.OCIManifestSchema1:    types.OCILayer,
	}
	for mt, layerMT := range want {
		for _, file := range []bool{false, true} {
			_, host := newRegistry(t)
			base := pushBase(t, host, mt)
			res, err := (&Builder{LayerFile: file}).Build(context.Background(), request(modelDir(t), base, host+"/models/iris", "t"))
			if err != nil {
				t.Fatal(err)
			}
			img, err := remote.Image(mustRef(t, res.Image))
			if err != nil {
				t.Fatal(err)
			}
			layers, _ := img.Layers()
			got, _ := layers[len(layers)-1].MediaType()
			if got != layerMT {
				t.Errorf("base %s, layer file %v: model layer %s, want %s", mt, file, got, layerMT)
			}
		}
	}
}

func TestBuildNeedsEveryField(t *testing.T) {
	req := request(modelDir(t), "127.0.0.1:1/base:1", "127.0.0.1:1/models/x", "")
	_, err := (&Builder{}).Build(context.Background(), req)
	if err == nil || failure.KindOf(err) != failure.Other || failure.SubjectOf(err) != failure.Build {
		t.Fatalf("err %v (kind %v, subject %q), want a build failure", err, failure.KindOf(err), failure.SubjectOf(err))
	}
}

func TestLookup(t *testing.T) {
	_, host := newRegistry(t)
	base := pushBase(t, host, types.DockerManifestSchema2)
	req := request("", base, host+"/models/iris", "iris-v3")
	b := &Builder{}
	if res, ok, err := b.Lookup(context.Background(), req); err != nil || ok || res != nil {
		t.Fatalf("before any build: %+v %v %v", res, ok, err)
	}
	req.ModelDir = modelDir(t)
	built, err := b.Build(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	// Before the download the model digest is unknown: the source decides.
	req.ModelDir, req.Model.Digest = "", ""
	res, ok, err := b.Lookup(context.Background(), req)
	if err != nil || !ok || !res.Reused || res.Digest != built.Digest || res.Image != built.Image || res.BaseDigest != built.BaseDigest {
		t.Fatalf("after the build: %+v %v %v, want %+v", res, ok, err, built)
	}
	req.Model.Source = "models:/m-other"
	if _, ok, err := b.Lookup(context.Background(), req); err != nil || ok {
		t.Fatalf("another source: %v %v, want no reuse", ok, err)
	}
	req.BaseImage = "Not A Reference"
	if _, _, err := b.Lookup(context.Background(), req); failure.KindOf(err) != failure.Invalid || failure.SubjectOf(err) != failure.Build {
		t.Fatalf("bad base reference: %v, want an invalid build", err)
	}
	req.BaseImage = host + "/serving/absent:1"
	if _, _, err := b.Lookup(context.Background(), req); failure.KindOf(err) != failure.NotFound || failure.SubjectOf(err) != failure.Registry {
		t.Fatalf("missing base: %v, want not found in the registry", err)
	}
}

func TestBaseImage(t *testing.T) {
	_, host := newRegistry(t)
	single := pushBase(t, host, types.OCIManifestSchema1)
	img, err := (&Builder{}).BaseImage(context.Background(), request("", single, host+"/models/iris", "t"))
	if err != nil {
		t.Fatal(err)
	}
	want, _ := remote.Image(mustRef(t, single))
	if got, want := digestOf(t, img), digestOf(t, want); got != want {
		t.Errorf("single base %s, want %s", got, want)
	}

	// An index: linux/amd64, though it is not first.
	var idx v1.ImageIndex = mutate.IndexMediaType(emptyIndex(), types.OCIImageIndex)
	imgs := map[string]v1.Image{}
	for _, arch := range []string{"arm64", "amd64"} {
		img, err := random.Image(256, 1)
		if err != nil {
			t.Fatal(err)
		}
		imgs[arch] = img
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: arch}}})
	}
	multi := host + "/serving/multi:1"
	if err := remote.WriteIndex(mustRef(t, multi), idx); err != nil {
		t.Fatal(err)
	}
	img, err = (&Builder{}).BaseImage(context.Background(), request("", multi, host+"/models/iris", "t"))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := digestOf(t, img), digestOf(t, imgs["amd64"]); got != want {
		t.Errorf("index base %s, want the amd64 image %s", got, want)
	}

	// An index of indexes holds no image to inspect.
	var nested v1.ImageIndex = mutate.IndexMediaType(emptyIndex(), types.OCIImageIndex)
	nested = mutate.AppendManifests(nested, mutate.IndexAddendum{Add: idx})
	nestedRef := host + "/serving/nested:1"
	if err := remote.WriteIndex(mustRef(t, nestedRef), nested); err != nil {
		t.Fatal(err)
	}
	_, err = (&Builder{}).BaseImage(context.Background(), request("", nestedRef, host+"/models/iris", "t"))
	if failure.KindOf(err) != failure.Invalid || failure.SubjectOf(err) != failure.Build {
		t.Fatalf("index without images: %v, want an invalid build", err)
	}
}

func digestOf(t *testing.T, img v1.Image) v1.Hash {
	t.Helper()
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestRegistryErrorsClassified(t *testing.T) {
	rec, host := newRegistry(t)
	base := pushBase(t, host, types.DockerManifestSchema2)
	rec.user, rec.pass = "pusher", "right"
	dir := modelDir(t)

	_, err := (&Builder{}).Build(context.Background(), request(dir, base, host+"/models/iris", "t1"))
	if failure.KindOf(err) != failure.Unauthorized || failure.SubjectOf(err) != failure.Registry {
		t.Errorf("no credentials: %v (kind %v, subject %q), want unauthorized", err, failure.KindOf(err), failure.SubjectOf(err))
	}
	req := request(dir, base, host+"/models/iris", "t1")
	kc := staticKeychain{host: host, auth: authn.FromConfig(authn.AuthConfig{Username: "pusher", Password: "right"})}
	req.PullKeychain, req.PushKeychain = kc, kc
	if _, err := (&Builder{}).Build(context.Background(), req); err != nil {
		t.Errorf("right credentials: %v", err)
	}
	req.BaseImage = host + "/serving/absent:1"
	if _, err := (&Builder{}).Build(context.Background(), req); failure.KindOf(err) != failure.NotFound || failure.SubjectOf(err) != failure.Registry {
		t.Errorf("missing base: %v, want not found", err)
	}
	req = request(dir, base, "127.0.0.1:1/models/iris", "t1")
	req.BaseImage = "127.0.0.1:1/serving/base:1"
	if _, err := (&Builder{}).Build(context.Background(), req); failure.KindOf(err) != failure.Unreachable || failure.SubjectOf(err) != failure.Registry {
		t.Errorf("no registry: %v (kind %v, subject %q), want unreachable", err, failure.KindOf(err), failure.SubjectOf(err))
	}
}

type staticKeychain struct {
	host string
	auth authn.Authenticator
}

func (k staticKeychain) Resolve(r authn.Resource) (authn.Authenticator, error) {
	if r.RegistryStr() == k.host {
		return k.auth, nil
	}
	return authn.Anonymous, nil
}

func nilLogger() *log.Logger { return log.New(io.Discard, "", 0) }

func emptyIndex() v1.ImageIndex { return empty.Index }

func TestStreamingBuildMatchesFileBuild(t *testing.T) {
	_, host := newRegistry(t)
	base := pushBase(t, host, types.DockerManifestSchema2)
	dir := modelDir(t)
	fileRes, err := (&Builder{LayerFile: true}).Build(context.Background(), request(dir, base, host+"/models/iris", "file"))
	if err != nil {
		t.Fatal(err)
	}
	streamRes, err := (&Builder{}).Build(context.Background(), request(dir, base, host+"/models/iris", "stream"))
	if err != nil {
		t.Fatal(err)
	}
	// Same tar, same gzip level: the very same image, whichever way the
	// layer travelled.
	if streamRes.Digest != fileRes.Digest {
		t.Errorf("streamed image %s differs from the file-backed one %s", streamRes.Digest, fileRes.Digest)
	}
	img, err := remote.Image(mustRef(t, streamRes.Image))
	if err != nil {
		t.Fatal(err)
	}
	_, data := layerFiles(t, img)
	want, _ := os.ReadFile(filepath.Join(dir, "data", "model.pkl"))
	if !bytes.Equal(data["opt/ml/model/data/model.pkl"], want) {
		t.Error("streamed layer content differs")
	}
}
