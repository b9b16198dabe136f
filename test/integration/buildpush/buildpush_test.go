// Package buildpush tests image builds end to end on real parts: a real
// MLflow server with a logged scikit-learn model, Debian's registry server
// with htpasswd authentication, a real kube-apiserver, and a base image made
// here that holds the real Python distributions of the test environment.
package buildpush

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/mlflow-operator/mlflow-operator/api/v1alpha1"
	"github.com/mlflow-operator/mlflow-operator/controllers"
	"github.com/mlflow-operator/mlflow-operator/internal/imagebuild"
	"github.com/mlflow-operator/mlflow-operator/test/harness/fixtures"
	"github.com/mlflow-operator/mlflow-operator/test/harness/imageregistry"
	"github.com/mlflow-operator/mlflow-operator/test/harness/mlflowserver"
	"github.com/mlflow-operator/mlflow-operator/test/harness/operator"
	"github.com/mlflow-operator/mlflow-operator/test/harness/testenv"
)

const (
	regUser = "pusher"
	regPass = "pusher-password-1"
)

var (
	env      *testenv.Env
	k8s      client.Client
	server   *mlflowserver.Server
	reg      *imageregistry.Registry
	iris     mlflowserver.Result
	fullBase string // holds the real Python distributions
	bareBase string // holds no Python packages
)

func TestMain(m *testing.M) { os.Exit(run(m)) }

func run(m *testing.M) int {
	testenv.SetLogger()
	fail := func(err error) int { fmt.Fprintln(os.Stderr, err); return 1 }
	var err error
	if server, err = mlflowserver.Start(mlflowserver.Options{}); err != nil {
		return fail(err)
	}
	defer server.Close()
	res, err := server.Fixture(context.Background(), mlflowserver.Op{"op": "register", "model": "iris", "alias": "champion"})
	if err != nil {
		return fail(err)
	}
	iris = res[0]
	if reg, err = imageregistry.Start(imageregistry.Options{User: regUser, Password: regPass}); err != nil {
		return fail(err)
	}
	defer reg.Close()
	if fullBase, err = pushBase("serving/python-full:1", true); err != nil {
		return fail(err)
	}
	if bareBase, err = pushBase("serving/bare:1", false); err != nil {
		return fail(err)
	}
	if env, err = testenv.Start(); err != nil {
		return fail(err)
	}
	defer func() { _ = env.Stop() }()
	k8s = env.Client
	cfg, err := env.OperatorConfig(context.Background())
	if err != nil {
		return fail(err)
	}
	tmp, err := os.MkdirTemp("", "builds-")
	if err != nil {
		return fail(err)
	}
	defer os.RemoveAll(tmp)
	op, err := operator.Start(cfg, operator.WithSetup(controllers.Options{
		// The operator's own identity can pull and push everywhere in the
		// registry; only the namespace grantedNamespace may use it, and only
		// for models/granted/.
		MaxConcurrentReconciles: 2, TempDir: tmp, Keychain: keychain(),
		RegistryGrants:  []controllers.RegistryGrant{{Namespace: grantedNamespace, RepositoryPrefix: reg.Host + "/models/granted/"}, {Namespace: grantedNamespace, RepositoryPrefix: reg.Host + "/serving/"}},
		MLflowTransport: slowBlobs{next: http.DefaultTransport, bytesPerSecond: 8 << 20},
		Builder:         &imagebuild.Builder{TempDir: tmp, Transport: manifestPuts},
	}))
	if err != nil {
		return fail(err)
	}
	defer func() { _ = op.Stop() }()
	return m.Run()
}

func keychain() authn.Keychain {
	return staticKeychain{authn.FromConfig(authn.AuthConfig{Username: regUser, Password: regPass})}
}

type staticKeychain struct{ a authn.Authenticator }

func (k staticKeychain) Resolve(authn.Resource) (authn.Authenticator, error) { return k.a, nil }

// pushBase pushes a base image. With python, one layer holds the METADATA of
// every distribution in the test environment's site-packages, under
// usr/local/lib/python3.X/site-packages, as a real serving image would.
func pushBase(repo string, python bool) (string, error) {
	var img v1.Image = empty.Image
	if python {
		layer, err := sitePackagesLayer()
		if err != nil {
			return "", err
		}
		if img, err = mutate.AppendLayers(img, layer); err != nil {
			return "", err
		}
	}
	img, err := mutate.Config(img, v1.Config{Env: []string{"PATH=/usr/local/bin:/usr/bin:/bin"}, Cmd: []string{"python3"}})
	if err != nil {
		return "", err
	}
	ref, err := name.ParseReference(reg.Host+"/"+repo, name.Insecure)
	if err != nil {
		return "", err
	}
	return ref.String(), remote.Write(ref, img, remote.WithAuthFromKeychain(keychain()))
}

func sitePackagesLayer() (v1.Layer, error) {
	py, err := mlflowserver.PythonEnv()
	if err != nil {
		return nil, err
	}
	dirs, _ := filepath.Glob(filepath.Join(py, "lib", "python3.*", "site-packages"))
	if len(dirs) != 1 {
		return nil, fmt.Errorf("no site-packages in %s", py)
	}
	pyDir := filepath.Base(filepath.Dir(dirs[0]))
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	metas, _ := filepath.Glob(filepath.Join(dirs[0], "*.dist-info", "METADATA"))
	for _, p := range metas {
		data, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		name := "usr/local/lib/" + pyDir + "/site-packages/" + filepath.Base(filepath.Dir(p)) + "/METADATA"
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(data)), Typeflag: tar.TypeReg}); err != nil {
			return nil, err
		}
		tw.Write(data)
	}
	tw.Close()
	b := buf.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil })
}

func namespace(t *testing.T) string { return testenv.Namespace(t, k8s, "build") }

// pushSecret creates a kubernetes.io/dockerconfigjson Secret for the registry.
func pushSecret(t *testing.T, ns, name, user, pass string) {
	t.Helper()
	auth := base64.StdEncoding.EncodeToString([]byte(user + ":" + pass))
	doc, _ := json.Marshal(map[string]any{"auths": map[string]any{reg.Host: map[string]string{"auth": auth}}})
	s := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Type:       corev1.SecretTypeDockerConfigJson,
		Data:       map[string][]byte{corev1.DockerConfigJsonKey: doc},
	}
	if err := k8s.Create(context.Background(), s); err != nil {
		t.Fatal(err)
	}
}

func newMD(t *testing.T, ns, name, base, secret string, mutate ...func(*v1alpha1.ModelDeployment)) *v1alpha1.ModelDeployment {
	t.Helper()
	md := fixtures.Valid(ns, name)
	md.Spec.Model = v1alpha1.ModelReference{Name: "iris", Alias: "champion"}
	md.Spec.MLflow.TrackingURI = server.URL
	md.Spec.Image = v1alpha1.ImageSpec{
		Repository: reg.Host + "/models/iris", BaseImage: base, InsecureRegistry: true,
		PushSecretRef: &corev1.LocalObjectReference{Name: secret}, BaseImagePullSecretRef: &corev1.LocalObjectReference{Name: secret},
	}
	// Nothing serves the built images here: candidates are passed by the
	// tests without a smoke test.
	md.Spec.Rollout.SmokeTest.Enabled = ptr.To(false)
	for _, m := range mutate {
		m(md)
	}
	if err := k8s.Create(context.Background(), md); err != nil {
		t.Fatal(err)
	}
	return md
}

func get(t *testing.T, md *v1alpha1.ModelDeployment) *v1alpha1.ModelDeployment {
	t.Helper()
	got := &v1alpha1.ModelDeployment{}
	if err := k8s.Get(context.Background(), client.ObjectKeyFromObject(md), got); err != nil {
		t.Fatal(err)
	}
	return got
}

func eventually(t *testing.T, timeout time.Duration, what string, check func() error) {
	t.Helper()
	testenv.Eventually(t, timeout, what, check)
}

func cond(md *v1alpha1.ModelDeployment, typ string, status metav1.ConditionStatus, reason v1alpha1.Reason) error {
	c := meta.FindStatusCondition(md.Status.Conditions, typ)
	if c == nil || c.Status != status || (reason != "" && c.Reason != string(reason)) {
		return fmt.Errorf("%s = %+v, want %s/%s", typ, c, status, reason)
	}
	return nil
}

// storedFiles maps the model files MLflow stored for iris to their sha256.
func storedFiles(t *testing.T) map[string]string {
	t.Helper()
	p, ok := strings.CutPrefix(iris.Source, "models:/")
	if !ok {
		t.Fatalf("source %s", iris.Source)
	}
	var root string
	_ = filepath.WalkDir(server.ArtifactsDir(), func(path string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() && d.Name() == p {
			root = filepath.Join(path, "artifacts")
		}
		return nil
	})
	if root == "" {
		t.Fatalf("no stored artifacts for %s", p)
	}
	out := map[string]string{}
	_ = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, _ := os.ReadFile(path)
		sum := sha256.Sum256(data)
		rel, _ := filepath.Rel(root, path)
		out[filepath.ToSlash(rel)] = hex.EncodeToString(sum[:])
		return nil
	})
	return out
}

func TestBuildPushDeployByDigest(t *testing.T) {
	ctx := context.Background()
	ns := namespace(t)
	pushSecret(t, ns, "registry", regUser, regPass)
	md := newMD(t, ns, "iris", fullBase, "registry")
	var image string
	eventually(t, 120*time.Second, "image pushed", func() error {
		m := get(t, md)
		if err := cond(m, v1alpha1.ConditionImageReady, metav1.ConditionTrue, v1alpha1.ReasonPushed); err != nil {
			return err
		}
		image = m.Status.Target.Image
		return nil
	})
	if !strings.HasPrefix(image, reg.Host+"/models/iris@sha256:") {
		t.Fatalf("target image %q is not repository@digest", image)
	}
	m := get(t, md)
	if err := cond(m, v1alpha1.ConditionDependenciesSatisfied, metav1.ConditionTrue, v1alpha1.ReasonDependenciesSatisfied); err != nil {
		t.Errorf("%v: a base holding the environment's real distributions satisfies the model", err)
	}
	testenv.PassCandidate(t, k8s, md, image)
	eventually(t, 30*time.Second, "deployment runs the digest", func() error {
		d := &appsv1.Deployment{}
		if err := k8s.Get(ctx, client.ObjectKeyFromObject(md), d); err != nil {
			return err
		}
		if got := d.Spec.Template.Spec.Containers[0].Image; got != image {
			return fmt.Errorf("deployment image %s", got)
		}
		return nil
	})

	// The pushed image: base layers plus the model, byte-identical to what
	// MLflow stored, with the labels.
	ref, _ := name.ParseReference(image, name.Insecure)
	img, err := remote.Image(ref, remote.WithAuthFromKeychain(keychain()))
	if err != nil {
		t.Fatal(err)
	}
	layers, _ := img.Layers()
	rc, err := layers[len(layers)-1].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			data, _ := io.ReadAll(tr)
			sum := sha256.Sum256(data)
			got[strings.TrimPrefix(h.Name, "opt/ml/model/")] = hex.EncodeToString(sum[:])
			// Root's and read-only: the serving user (1000) can read the
			// model, not change it.
			if h.Uid != 0 || h.Gid != 0 || h.Mode&0o222 != 0 || h.Mode&0o444 != 0o444 {
				t.Errorf("%s owned by %d:%d with mode %o, want 0:0 and read-only", h.Name, h.Uid, h.Gid, h.Mode)
			}
		}
	}
	rc.Close()
	stored := storedFiles(t)
	if len(stored) < 5 || len(got) != len(stored) {
		t.Errorf("layer holds %d files, MLflow stored %d", len(got), len(stored))
	}
	for p, sum := range stored {
		if got[p] != sum {
			t.Errorf("%s: layer sha256 %s, MLflow's %s", p, got[p], sum)
		}
	}
	cf, _ := img.ConfigFile()
	for k, v := range map[string]string{
		imagebuild.LabelModelName: "iris", imagebuild.LabelVersion: "1", imagebuild.LabelRunID: iris.RunID,
		imagebuild.LabelModelSource: iris.Source,
	} {
		if cf.Config.Labels[k] != v {
			t.Errorf("label %s = %q, want %q", k, cf.Config.Labels[k], v)
		}
	}
	if !strings.HasPrefix(cf.Config.Labels[imagebuild.LabelModelDigest], "sha256:") || cf.Config.Labels[imagebuild.LabelBaseDigest] == "" {
		t.Errorf("labels %v lack the model and base digests", cf.Config.Labels)
	}
	if !strings.Contains(strings.Join(cf.Config.Entrypoint, " "), "mlflow models serve -m /opt/ml/model") {
		t.Errorf("entrypoint %v", cf.Config.Entrypoint)
	}

	// Another ModelDeployment of the same version (or this one after an
	// operator restart: the build state is gone, the registry is not) reuses
	// the image: no blob is uploaded.
	blobs := reg.BlobCount()
	ns2 := namespace(t)
	pushSecret(t, ns2, "registry", regUser, regPass)
	md2 := newMD(t, ns2, "iris", fullBase, "registry")
	eventually(t, 60*time.Second, "second image ready", func() error {
		m := get(t, md2)
		// Nothing was pushed, and the status says so.
		if err := cond(m, v1alpha1.ConditionImageReady, metav1.ConditionTrue, v1alpha1.ReasonReused); err != nil {
			return err
		}
		if m.Status.Target.Image != image {
			return fmt.Errorf("image %s, want the same %s", m.Status.Target.Image, image)
		}
		return nil
	})
	if n := reg.BlobCount(); n != blobs {
		t.Errorf("%d blobs stored after a reuse, %d before", n, blobs)
	}
}

func TestPushUnauthorized(t *testing.T) {
	ns := namespace(t)
	pushSecret(t, ns, "registry", regUser, "wrong-password")
	md := newMD(t, ns, "iris", fullBase, "registry")
	eventually(t, 60*time.Second, "unauthorized reported", func() error {
		m := get(t, md)
		if err := cond(m, v1alpha1.ConditionImageReady, metav1.ConditionFalse, "RegistryUnauthorized"); err != nil {
			return err
		}
		if strings.Contains(fmt.Sprint(m.Status), "wrong-password") {
			return fmt.Errorf("the password shows in status")
		}
		return nil
	})
	if err := k8s.Get(context.Background(), client.ObjectKeyFromObject(md), &appsv1.Deployment{}); err == nil {
		t.Error("a Deployment exists without an image")
	}
}

func TestDependencyPolicy(t *testing.T) {
	ns := namespace(t)
	pushSecret(t, ns, "registry", regUser, regPass)
	enforce := newMD(t, ns, "enforce", bareBase, "registry", func(md *v1alpha1.ModelDeployment) {
		md.Spec.Image.DependencyPolicy = v1alpha1.DependencyPolicyEnforce
		md.Spec.Image.Repository = reg.Host + "/models/enforce"
	})
	warn := newMD(t, ns, "warn", bareBase, "registry", func(md *v1alpha1.ModelDeployment) {
		md.Spec.Image.Repository = reg.Host + "/models/warn"
	})
	eventually(t, 120*time.Second, "Enforce refuses the build", func() error {
		m := get(t, enforce)
		if err := cond(m, v1alpha1.ConditionDependenciesSatisfied, metav1.ConditionFalse, v1alpha1.ReasonDependenciesNotSatisfied); err != nil {
			return err
		}
		if err := cond(m, v1alpha1.ConditionImageReady, metav1.ConditionFalse, "DependenciesNotSatisfied"); err != nil {
			return err
		}
		if !strings.Contains(meta.FindStatusCondition(m.Status.Conditions, v1alpha1.ConditionDependenciesSatisfied).Message, "scikit-learn") {
			return fmt.Errorf("the message does not name the missing package")
		}
		return cond(m, v1alpha1.ConditionStalled, metav1.ConditionTrue, "DependenciesNotSatisfied")
	})
	eventually(t, 120*time.Second, "Warn builds anyway and says so", func() error {
		m := get(t, warn)
		if err := cond(m, v1alpha1.ConditionDependenciesSatisfied, metav1.ConditionFalse, v1alpha1.ReasonDependenciesNotSatisfied); err != nil {
			return err
		}
		return cond(m, v1alpha1.ConditionImageReady, metav1.ConditionTrue, v1alpha1.ReasonPushed)
	})
}
