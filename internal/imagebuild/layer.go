package imagebuild

import (
	"archive/tar"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"path"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/stream"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// ModelPath is where the model directory lands in the image.
const ModelPath = "/opt/ml/model"

// LayerOptions shape the model layer. There is no owner to choose: the
// model files always belong to root (see NewModelLayer).
type LayerOptions struct {
	// ModTime of every entry; a fixed time makes the layer reproducible.
	ModTime time.Time
	// Level of gzip compression; gzip.BestSpeed when zero.
	Level int
	// MediaType of the layer (Docker or OCI, to match the base).
	MediaType types.MediaType
	// TempDir holds the layer file; os.TempDir() when empty.
	TempDir string
}

// FileLayer is a gzip-compressed tar layer kept in a temporary file: written
// once, in one pass that also computes its digest and diff ID, then re-read
// as often as an upload needs. Memory stays flat whatever the model size.
// Close removes the file.
type FileLayer struct {
	path      string
	digest    v1.Hash
	diffID    v1.Hash
	size      int64
	mediaType types.MediaType
}

var _ v1.Layer = (*FileLayer)(nil)

// Digest is the sha256 of the compressed layer.
func (l *FileLayer) Digest() (v1.Hash, error) { return l.digest, nil }

// DiffID is the sha256 of the uncompressed tar.
func (l *FileLayer) DiffID() (v1.Hash, error) { return l.diffID, nil }

// Size of the compressed layer.
func (l *FileLayer) Size() (int64, error) { return l.size, nil }

// MediaType of the layer.
func (l *FileLayer) MediaType() (types.MediaType, error) { return l.mediaType, nil }

// Compressed opens the layer file.
func (l *FileLayer) Compressed() (io.ReadCloser, error) { return os.Open(l.path) }

// Uncompressed opens the layer file through gunzip.
func (l *FileLayer) Uncompressed() (io.ReadCloser, error) {
	f, err := os.Open(l.path)
	if err != nil {
		return nil, err
	}
	zr, err := gzip.NewReader(f)
	if err != nil {
		f.Close()
		return nil, err
	}
	return &readCloser{Reader: zr, close: func() error { zr.Close(); return f.Close() }}, nil
}

// Close removes the layer file.
func (l *FileLayer) Close() error { return os.Remove(l.path) }

type readCloser struct {
	io.Reader
	close func() error
}

func (r *readCloser) Close() error { return r.close() }

// NewModelLayer writes the model directory as a layer holding it at
// ModelPath: entries in lexical order, fixed times, numeric owner 0:0, no
// user or group names, nothing from the host, and modes that let everyone
// read and no one write: 0555 for directories and executables, 0444
// otherwise. Symbolic links must resolve, through any chain of links, to an
// entry of the model directory; devices, sockets and pipes are refused (see
// walkModel).
func NewModelLayer(modelDir string, o LayerOptions) (*FileLayer, error) {
	o = o.withDefaults()
	f, err := os.CreateTemp(o.TempDir, "model-layer-*.tar.gz")
	if err != nil {
		return nil, err
	}
	layer := &FileLayer{path: f.Name(), mediaType: o.MediaType}
	fail := func(err error) (*FileLayer, error) {
		f.Close()
		os.Remove(f.Name())
		return nil, err
	}

	compressedHash := sha256.New()
	counter := &countingWriter{w: io.MultiWriter(f, compressedHash)}
	zw, err := gzip.NewWriterLevel(counter, o.Level)
	if err != nil {
		return fail(err)
	}
	uncompressedHash := sha256.New()
	tw := tar.NewWriter(io.MultiWriter(zw, uncompressedHash))
	if err := writeModelTar(tw, modelDir, o); err != nil {
		return fail(err)
	}
	if err := tw.Close(); err != nil {
		return fail(err)
	}
	if err := zw.Close(); err != nil {
		return fail(err)
	}
	if err := f.Close(); err != nil {
		return fail(err)
	}
	layer.size = counter.n
	layer.digest = v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(compressedHash.Sum(nil))}
	layer.diffID = v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(uncompressedHash.Sum(nil))}
	return layer, nil
}

// withDefaults fills in the zero fields. The file and the streamed layer
// share it: the same options must give the same bytes, whichever way the
// layer travels.
func (o LayerOptions) withDefaults() LayerOptions {
	if o.Level == 0 {
		o.Level = gzip.BestSpeed
	}
	if o.MediaType == "" {
		o.MediaType = types.DockerLayer
	}
	return o
}

// streamModelLayer is the layer NewModelLayer would write, computed while it
// is read instead: a goroutine writes the tar into a pipe that
// go-containerregistry's streaming layer compresses and hashes during the
// upload, so its digest and diff ID are known only once it has been read to
// the end. It can be read once. stop closes the pipe and waits for the
// writer, which would otherwise block for ever when the layer is not read to
// the end (the push failed, or the build failed before it); after a complete
// read it only waits. o.TempDir is not used.
func streamModelLayer(modelDir string, o LayerOptions) (layer *stream.Layer, stop func()) {
	o = o.withDefaults()
	pr, pw := io.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		tw := tar.NewWriter(pw)
		err := writeModelTar(tw, modelDir, o)
		if err == nil {
			err = tw.Close()
		}
		// The reader sees err (nil: EOF), and the upload fails with it.
		pw.CloseWithError(err)
	}()
	stop = func() {
		pr.Close()
		<-done
	}
	return stream.NewLayer(pr, stream.WithCompressionLevel(o.Level), stream.WithMediaType(o.MediaType)), stop
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// Modes of the model entries. The files belong to root and no one may write
// them: the serving process runs as another user (the config's User) and
// can read and run the model but not change the one it serves, even when
// whatever it runs is compromised. Links keep 0777, the only mode a link has.
const (
	modelFileMode = 0o444
	modelExecMode = 0o555 // directories and executables
	modelLinkMode = 0o777
)

// writeModelTar writes the parents of ModelPath and the model directory.
func writeModelTar(tw *tar.Writer, modelDir string, o LayerOptions) error {
	base := strings.TrimPrefix(ModelPath, "/")
	// The parents belong to root, as in any image, and keep the usual mode.
	for _, dir := range []string{"opt", "opt/ml"} {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: dir + "/", Mode: 0o755, ModTime: o.ModTime}); err != nil {
			return err
		}
	}
	return walkModel(modelDir, func(root *os.Root, e modelEntry) error {
		name := base
		if e.rel != "." {
			name = path.Join(base, e.rel)
		}
		// Uid and Gid stay 0: root's.
		hdr := &tar.Header{Name: name, ModTime: o.ModTime}
		switch mode := e.info.Mode(); {
		case mode.IsDir():
			hdr.Typeflag, hdr.Name, hdr.Mode = tar.TypeDir, name+"/", modelExecMode
			return tw.WriteHeader(hdr)
		case mode.IsRegular():
			f, info, err := openRegular(root, e)
			if err != nil {
				return err
			}
			defer f.Close()
			hdr.Typeflag, hdr.Size, hdr.Mode = tar.TypeReg, info.Size(), modelFileMode
			if mode&0o111 != 0 {
				hdr.Mode = modelExecMode
			}
			if err := tw.WriteHeader(hdr); err != nil {
				return err
			}
			return copyFile(tw, f, e.rel, info.Size())
		default: // a link walkModel resolved
			hdr.Typeflag, hdr.Linkname, hdr.Mode = tar.TypeSymlink, e.link, modelLinkMode
			return tw.WriteHeader(hdr)
		}
	})
}
