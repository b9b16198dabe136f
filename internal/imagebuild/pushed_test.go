package imagebuild

import (
	"context"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// TestPushedBytes: a build reports what its push sent. The first push sends
// the model layer (the base's layers are in the registry already) and the
// manifest. A streamed layer's digest is known only once it is uploaded, so
// a second streamed push sends it again; built through a layer file, only
// what the repository lacks goes: a manifest under the new tag. A reused
// image sends nothing.
func TestPushedBytes(t *testing.T) {
	_, host := newRegistry(t)
	base := pushBase(t, host, types.OCIManifestSchema1)
	dir := modelDir(t)
	ctx := context.Background()
	streamed := &Builder{}
	first, err := streamed.Build(ctx, request(dir, base, host+"/models/iris", "v3"))
	if err != nil {
		t.Fatal(err)
	}
	img, err := remote.Image(mustRef(t, first.Image))
	if err != nil {
		t.Fatal(err)
	}
	layers, _ := img.Layers()
	layerSize, _ := layers[len(layers)-1].Size()
	manifest, _ := img.RawManifest()
	if first.PushedBytes < layerSize+int64(len(manifest)) {
		t.Errorf("first push sent %d bytes; the model layer alone is %d", first.PushedBytes, layerSize)
	}

	again, err := streamed.Build(ctx, request(dir, base, host+"/models/iris", "v3-again"))
	if err != nil || again.Digest != first.Digest {
		t.Fatalf("second streamed build %+v %v", again, err)
	}
	if again.PushedBytes < layerSize {
		t.Errorf("second streamed push sent %d bytes, less than the layer's %d", again.PushedBytes, layerSize)
	}

	fromFile, err := (&Builder{LayerFile: true}).Build(ctx, request(dir, base, host+"/models/iris", "v3-file"))
	if err != nil || fromFile.Digest != first.Digest {
		t.Fatalf("layer-file build %+v %v, want digest %s", fromFile, err, first.Digest)
	}
	if fromFile.PushedBytes < int64(len(manifest)) || fromFile.PushedBytes >= layerSize {
		t.Errorf("layer-file push sent %d bytes, want the manifest's %d and not the layer's %d", fromFile.PushedBytes, len(manifest), layerSize)
	}

	trusted := request(dir, base, host+"/models/iris", "v3")
	trusted.TrustLabels = true
	reused, err := streamed.Build(ctx, trusted)
	if err != nil || !reused.Reused || reused.PushedBytes != 0 {
		t.Errorf("reused image: %+v %v, want nothing pushed", reused, err)
	}
}
