package image

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/mlflow-operator/mlflow-operator/test/harness/imageregistry"
)

// The index goes to a real registry (Debian's docker-registry on loopback,
// plain HTTP) as make image-push sends it, and comes back the same.
func TestPushToLocalRegistry(t *testing.T) {
	reg, err := imageregistry.Start(imageregistry.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(reg.Close)

	digestFile := filepath.Join(t.TempDir(), "dist", "image.digest")
	repo := reg.Host + "/mlflow-operator"
	// No tag in the reference: the version is the tag.
	out, err := command(tool, "push", "-layout", built, "-ref", repo, "-default-tag", testVersion, "-digest-file", digestFile)
	if err != nil {
		t.Fatalf("%v\nregistry: %s", err, reg.Logs())
	}
	if got, want := strings.TrimSpace(out), repo+"@"+digest; got != want {
		t.Fatalf("push printed %q, want %q", got, want)
	}
	b, err := os.ReadFile(digestFile)
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != digest+"\n" {
		t.Fatalf("digest file holds %q, want %q", b, digest+"\n")
	}

	local := platformImages(t, index(t, built))
	for _, ref := range []string{repo + ":" + testVersion, repo + "@" + digest} {
		r, err := name.ParseReference(ref, name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		idx, err := remote.Index(r)
		if err != nil {
			t.Fatalf("pull %s: %v", ref, err)
		}
		d, err := idx.Digest()
		if err != nil || d.String() != digest {
			t.Fatalf("pulled %s: digest %s (%v), pushed %s", ref, d, err, digest)
		}
		for a, img := range platformImages(t, idx) {
			want, _ := local[a].Digest()
			got, _ := img.Digest()
			if got != want {
				t.Errorf("%s linux/%s: %s, pushed %s", ref, a, got, want)
			}
		}
	}

	// A client asking for one platform gets that platform's image, and its
	// layers are the ones built.
	r, _ := name.ParseReference(repo+":"+testVersion, name.Insecure)
	for _, a := range archs {
		img, err := remote.Image(r, remote.WithPlatform(v1.Platform{OS: "linux", Architecture: a}))
		if err != nil {
			t.Fatal(err)
		}
		cf, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		if cf.Architecture != a {
			t.Errorf("linux/%s: pulled a config for %s", a, cf.Architecture)
		}
		pulled := entries(t, img)
		if string(file(t, pulled, "manager")) != string(mustRead(t, bins[a])) {
			t.Errorf("linux/%s: the pulled /manager is not the binary built", a)
		}
	}

	// Pushing the same image again uploads nothing new.
	blobs := reg.BlobCount()
	if _, err := command(tool, "push", "-layout", built, "-ref", repo+":again"); err != nil {
		t.Fatal(err)
	}
	if n := reg.BlobCount(); n != blobs {
		t.Errorf("a second push stored %d more blobs", n-blobs)
	}
}

// A registry that wants credentials gets them from docker's config.json
// (authn.DefaultKeychain): what docker login, az acr login and the release
// workflow write.
func TestPushWithDockerConfigCredentials(t *testing.T) {
	reg, err := imageregistry.Start(imageregistry.Options{User: "pusher", Password: "s3cret"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(reg.Close)
	repo := reg.Host + "/mlflow-operator"

	empty := t.TempDir()
	if _, err := commandEnv([]string{"DOCKER_CONFIG=" + empty}, tool, "push", "-layout", built, "-ref", repo+":v1"); err == nil {
		t.Fatal("push without credentials succeeded")
	}
	conf := t.TempDir()
	// "auth" is base64("pusher:s3cret").
	cfg := `{"auths":{"` + reg.Host + `":{"auth":"cHVzaGVyOnMzY3JldA=="}}}`
	if err := os.WriteFile(filepath.Join(conf, "config.json"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := commandEnv([]string{"DOCKER_CONFIG=" + conf}, tool, "push", "-layout", built, "-ref", repo+":v1")
	if err != nil {
		t.Fatalf("%v\nregistry: %s", err, reg.Logs())
	}
	if got, want := strings.TrimSpace(out), repo+"@"+digest; got != want {
		t.Fatalf("push printed %q, want %q", got, want)
	}
}
