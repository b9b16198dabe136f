package imagebuild

import (
	"io"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/types"
)

func TestStreamModelLayerMatchesFileLayer(t *testing.T) {
	dir := modelDir(t)
	o := LayerOptions{ModTime: time.Unix(1_790_000_000, 0), MediaType: types.OCILayer}
	fl, err := NewModelLayer(dir, o)
	if err != nil {
		t.Fatal(err)
	}
	defer fl.Close()
	sl, stop := streamModelLayer(dir, o)
	defer stop()
	rc, err := sl.Compressed()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(io.Discard, rc); err != nil {
		t.Fatal(err)
	}
	if err := rc.Close(); err != nil {
		t.Fatal(err)
	}
	for name, pair := range map[string][2]func() (any, error){
		"digest":     {func() (any, error) { return fl.Digest() }, func() (any, error) { return sl.Digest() }},
		"diff ID":    {func() (any, error) { return fl.DiffID() }, func() (any, error) { return sl.DiffID() }},
		"size":       {func() (any, error) { return fl.Size() }, func() (any, error) { return sl.Size() }},
		"media type": {func() (any, error) { return fl.MediaType() }, func() (any, error) { return sl.MediaType() }},
	} {
		want, err := pair[0]()
		if err != nil {
			t.Fatal(err)
		}
		got, err := pair[1]()
		if err != nil || got != want {
			t.Errorf("streamed layer %s %v (%v), the file's %v", name, got, err, want)
		}
	}
}

func TestStreamModelLayerStopEndsUnreadWriter(t *testing.T) {
	// Nothing reads the pipe: the writer is blocked on its first header
	// until stop closes it.
	_, stop := streamModelLayer(modelDir(t), LayerOptions{})
	done := make(chan struct{})
	go func() {
		stop()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("stop did not end the writer of an unread layer")
	}
}

func TestStreamModelLayerReportsWriteError(t *testing.T) {
	sl, stop := streamModelLayer(filepath.Join(t.TempDir(), "absent"), LayerOptions{})
	defer stop()
	rc, err := sl.Compressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if _, err := io.Copy(io.Discard, rc); err == nil {
		t.Fatal("a missing model directory read as a complete layer")
	}
}
