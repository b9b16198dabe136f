package buildpush

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1alpha1 "github.com/mlflow-operator/mlflow-operator/api/v1alpha1"
)

// TestPlantedImageIsNotReused: someone who can push to a repository plants
// an image under the tag a ModelDeployment will look up, with every label
// copied from a genuine build (labels are not evidence). The operator must
// not deploy it: it rebuilds from the model, which gives the genuine
// digest, and pushes that over the planted one.
func TestPlantedImageIsNotReused(t *testing.T) {
	ns := namespace(t)
	pushSecret(t, ns, "registry", regUser, regPass)
	genuine := newMD(t, ns, "genuine", fullBase, "registry", func(md *v1alpha1.ModelDeployment) {
		md.Spec.Image.Repository = reg.Host + "/models/genuine"
	})
	eventually(t, 120*time.Second, "the genuine image", func() error {
		return cond(get(t, genuine), v1alpha1.ConditionImageReady, metav1.ConditionTrue, v1alpha1.ReasonPushed)
	})
	genuineImage := get(t, genuine).Status.Target.Image
	genuineDigest := genuineImage[strings.LastIndex(genuineImage, "@")+1:]

	// The forgery: the base, another layer, the genuine image's labels.
	opts := []remote.Option{remote.WithAuthFromKeychain(keychain())}
	genuineRef, err := name.ParseReference(genuineImage, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	genuineImg, err := remote.Image(genuineRef, opts...)
	if err != nil {
		t.Fatal(err)
	}
	genuineConfig, err := genuineImg.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	baseRef, err := name.ParseReference(fullBase, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	base, err := remote.Image(baseRef, opts...)
	if err != nil {
		t.Fatal(err)
	}
	evil, err := random.Layer(1024, "application/vnd.docker.image.rootfs.diff.tar.gzip")
	if err != nil {
		t.Fatal(err)
	}
	planted, err := mutate.AppendLayers(base, evil)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := planted.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.Config = genuineConfig.Config
	if planted, err = mutate.ConfigFile(planted, cf); err != nil {
		t.Fatal(err)
	}
	// The tag the operator will look up: the genuine image's tag.
	tag, err := name.NewTag(reg.Host+"/models/planted:iris-v"+get(t, genuine).Status.Target.Version, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(tag, planted, opts...); err != nil {
		t.Fatal(err)
	}
	plantedDigest, err := planted.Digest()
	if err != nil {
		t.Fatal(err)
	}

	victim := newMD(t, namespaceWithSecret(t), "victim", fullBase, "registry", func(md *v1alpha1.ModelDeployment) {
		md.Spec.Image.Repository = reg.Host + "/models/planted"
	})
	eventually(t, 120*time.Second, "the victim's image", func() error {
		return cond(get(t, victim), v1alpha1.ConditionImageReady, metav1.ConditionTrue, v1alpha1.ReasonPushed)
	})
	got := get(t, victim).Status.Target.Image
	if strings.HasSuffix(got, plantedDigest.String()) {
		t.Fatalf("the planted image %s was deployed", got)
	}
	if !strings.HasSuffix(got, "@"+genuineDigest) {
		t.Errorf("image %s, want the genuine digest %s (builds are reproducible)", got, genuineDigest)
	}
}

func namespaceWithSecret(t *testing.T) string {
	ns := namespace(t)
	pushSecret(t, ns, "registry", regUser, regPass)
	return ns
}
