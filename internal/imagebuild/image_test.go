package imagebuild

import (
	"context"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

func TestLabelsCarryNoCredentials(t *testing.T) {
	for _, tc := range []struct {
		tracking, wantTracking, wantSource string
	}{
		{"http://user:s3cret@mlflow:5000", "http://mlflow:5000", "http://mlflow:5000/#/models/iris/versions/3"},
		{"https://token@mlflow.example.com/prefix/", "https://mlflow.example.com/prefix/", "https://mlflow.example.com/prefix/#/models/iris/versions/3"},
		{"https://mlflow.example.com/?access_token=s3cret#frag", "https://mlflow.example.com/", "https://mlflow.example.com/#/models/iris/versions/3"},
		{"http://mlflow:5000", "http://mlflow:5000", "http://mlflow:5000/#/models/iris/versions/3"},
		// Cannot be cleaned: left out.
		{"http://user:s3cret@mlflow:5000/%zz", "", ""},
		{"user:s3cret@mlflow", "", ""},
	} {
		m := Model{Name: "iris", Version: "3", TrackingURI: tc.tracking, Source: "s3://AKIA:s3cret@bucket/models/iris"}
		l := imageLabels(m, "base:1", "sha256:b")
		if l[LabelTracking] != tc.wantTracking || l[LabelSource] != tc.wantSource {
			t.Errorf("%s: tracking label %q, source label %q; want %q, %q", tc.tracking, l[LabelTracking], l[LabelSource], tc.wantTracking, tc.wantSource)
		}
		if l[LabelModelSource] != "s3://bucket/models/iris" {
			t.Errorf("model source label %q", l[LabelModelSource])
		}
		for k, v := range l {
			if strings.Contains(v, "s3cret") {
				t.Errorf("label %s = %q carries the credentials", k, v)
			}
		}
	}
	// A source without credentials is kept as it is.
	for _, src := range []string{"models:/m-abc", "runs:/0a1b/model", "mlflow-artifacts:/1/m/artifacts", "s3://bucket/a%20b"} {
		if got := sourceLabel(src); got != src {
			t.Errorf("sourceLabel(%q) = %q", src, got)
		}
	}
}

func TestBuiltImageCarriesNoCredentials(t *testing.T) {
	_, host := newRegistry(t)
	base := pushBase(t, host, types.OCIManifestSchema1)
	req := request(modelDir(t), base, host+"/models/iris", "t")
	req.Model.TrackingURI = "http://user:s3cret@mlflow:5000"
	req.Model.Source = "https://user:s3cret@artifacts.example.com/iris"
	req.Model.Digest = ""
	b := &Builder{}
	res, err := b.Build(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	img, err := remote.Image(mustRef(t, res.Image))
	if err != nil {
		t.Fatal(err)
	}
	for what, read := range map[string]func() ([]byte, error){"config": img.RawConfigFile, "manifest": img.RawManifest} {
		raw, err := read()
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(raw), "s3cret") || strings.Contains(string(raw), "user:") {
			t.Errorf("the %s carries the credentials: %s", what, raw)
		}
	}
	// The redacted source still identifies the version for reuse.
	req.TrustLabels = true
	again, err := b.Build(context.Background(), req)
	if err != nil || !again.Reused {
		t.Errorf("rebuild %+v %v, want a reuse", again, err)
	}
}

func TestOlderLayerFormatRebuilt(t *testing.T) {
	// The tag holds the same model version on the same base, but its layer
	// was written before the files belonged to root (no layer-format
	// label): the build replaces it instead of reusing it.
	_, host := newRegistry(t)
	base := pushBase(t, host, types.DockerManifestSchema2)
	req := request(modelDir(t), base, host+"/models/iris", "iris-v3")
	res, err := (&Builder{}).Build(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	img, err := remote.Image(mustRef(t, res.Image))
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cf.Config.Labels[LabelLayerFormat] != layerFormat {
		t.Fatalf("layer format label %q, want %q", cf.Config.Labels[LabelLayerFormat], layerFormat)
	}
	cf = cf.DeepCopy()
	delete(cf.Config.Labels, LabelLayerFormat)
	older, err := mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(mustRef(t, host+"/models/iris:iris-v3"), older); err != nil {
		t.Fatal(err)
	}
	again, err := (&Builder{}).Build(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if again.Reused || again.Digest != res.Digest {
		t.Errorf("build over an older image: %+v, want a new push of %s", again, res.Digest)
	}
	if _, ok, err := (&Builder{}).Lookup(context.Background(), req); err != nil || !ok {
		t.Errorf("after the rebuild: reuse %v (%v), want the tag reused", ok, err)
	}
}

// TestBaseHomeIsKept: a base image that sets HOME keeps it; only a base
// without one gets HOME=/tmp.
func TestBaseHomeIsKept(t *testing.T) {
	for _, tc := range []struct {
		env  []string
		want string
	}{
		{[]string{"PATH=/bin"}, "HOME=/tmp"},
		{[]string{"PATH=/bin", "HOME=/home/model"}, "HOME=/home/model"},
	} {
		base, err := mutate.Config(empty.Image, v1.Config{Env: tc.env})
		if err != nil {
			t.Fatal(err)
		}
		img, err := configure(base, Request{Port: 8080, UID: 1000, GID: 1000}, nil)
		if err != nil {
			t.Fatal(err)
		}
		cf, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		var homes []string
		for _, e := range cf.Config.Env {
			if strings.HasPrefix(e, "HOME=") {
				homes = append(homes, e)
			}
		}
		if len(homes) != 1 || homes[0] != tc.want {
			t.Errorf("base env %v: HOME %v, want %s", tc.env, homes, tc.want)
		}
	}
}
