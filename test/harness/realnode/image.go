package realnode

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// PushBinary pushes a one-layer OCI image holding a static binary as
// /<its file name> (mode 0755) and an empty /tmp, to ref in a plain-HTTP
// registry. config is the image's run configuration; its Entrypoint
// defaults to the binary. The node's sandbox image (pause) and the tests'
// tiny servers are made this way: nothing can be pulled from the internet.
func PushBinary(ctx context.Context, ref, binary string, config v1.Config) (v1.Hash, error) {
	content, err := os.ReadFile(binary)
	if err != nil {
		return v1.Hash{}, fmt.Errorf("read %s: %w", binary, err)
	}
	file := filepath.Base(binary)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	epoch := time.Unix(0, 0) // reproducible: the same binary gives the same digest
	headers := []*tar.Header{
		{Name: "tmp/", Typeflag: tar.TypeDir, Mode: 0o1777, ModTime: epoch},
		{Name: file, Typeflag: tar.TypeReg, Mode: 0o755, Size: int64(len(content)), ModTime: epoch},
	}
	for _, h := range headers {
		if err := tw.WriteHeader(h); err != nil {
			return v1.Hash{}, err
		}
	}
	if _, err := tw.Write(content); err != nil {
		return v1.Hash{}, err
	}
	if err := tw.Close(); err != nil {
		return v1.Hash{}, err
	}
	layerBytes := buf.Bytes()
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerBytes)), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return v1.Hash{}, fmt.Errorf("layer of %s: %w", binary, err)
	}
	img := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	if img, err = mutate.AppendLayers(img, layer); err != nil {
		return v1.Hash{}, err
	}
	if len(config.Entrypoint) == 0 {
		config.Entrypoint = []string{"/" + file}
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return v1.Hash{}, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture, cf.Config = "linux", runtime.GOARCH, config
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		return v1.Hash{}, err
	}
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		return v1.Hash{}, fmt.Errorf("image reference %q: %w", ref, err)
	}
	if err := remote.Write(r, img, remote.WithContext(ctx)); err != nil {
		return v1.Hash{}, fmt.Errorf("push %s: %w", ref, err)
	}
	return img.Digest()
}
