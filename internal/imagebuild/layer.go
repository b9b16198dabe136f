package imagebuild

import (
	"archive/tar"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/stream"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// ModelPath is where the model directory lands in the image.
const ModelPath = "/opt/ml/model"

// ErrUnsafeEntry is returned for a model entry that cannot go into the image:
// a path or link leaving the model directory, a device, a socket, a pipe.
var ErrUnsafeEntry = errors.New("unsafe model entry")

// LayerOptions shape the model layer.
type LayerOptions struct {
	// UID and GID own the model files (the serving pods' non-root user).
	UID, GID int
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
// ModelPath: entries in lexical order, fixed times, normalised modes (0755
// for directories and executables, 0644 otherwise), numeric owner UID:GID, no
// user or group names, nothing from the host. Symbolic links must stay inside
// the model directory; devices, sockets and pipes are refused.
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

func writeModelTar(tw *tar.Writer, modelDir string, o LayerOptions) error {
	root, err := filepath.Abs(modelDir)
	if err != nil {
		return err
	}
	info, err := os.Stat(root)
	if err != nil {
		return err
	}
	if !info.IsDir() {
		return fmt.Errorf("model directory %s is not a directory", modelDir)
	}
	base := strings.TrimPrefix(ModelPath, "/")
	// The parents belong to root, as in any image; the model directory to
	// the serving user.
	for _, dir := range []string{"opt", "opt/ml"} {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: dir + "/", Mode: 0o755, ModTime: o.ModTime}); err != nil {
			return err
		}
	}
	return walkModel(root, func(e modelEntry) error {
		name := base
		if e.rel != "." {
			name = path.Join(base, e.rel)
		}
		hdr := &tar.Header{Name: name, ModTime: o.ModTime, Uid: o.UID, Gid: o.GID}
		switch mode := e.info.Mode(); {
		case mode.IsDir():
			hdr.Typeflag, hdr.Name, hdr.Mode = tar.TypeDir, name+"/", 0o755
			return tw.WriteHeader(hdr)
		case mode.IsRegular():
			hdr.Typeflag, hdr.Size, hdr.Mode = tar.TypeReg, e.info.Size(), 0o644
			if mode&0o111 != 0 {
				hdr.Mode = 0o755
			}
			if err := tw.WriteHeader(hdr); err != nil {
				return err
			}
			return copyFile(tw, e.path, e.info.Size())
		default: // a link walkModel checked
			hdr.Typeflag, hdr.Linkname, hdr.Mode = tar.TypeSymlink, e.link, 0o777
			return tw.WriteHeader(hdr)
		}
	})
}

// modelEntry is one entry of a model directory.
type modelEntry struct {
	path string      // on disk
	rel  string      // below the model directory, with slashes; "." for it
	info fs.FileInfo // from Lstat
	link string      // a symbolic link's target
}

// walkModel calls fn for every entry below root, in lexical order (so an
// archive is the same on every host), after refusing what cannot go into an
// image: links leaving root, devices, sockets, pipes.
func walkModel(root string, fn func(modelEntry) error) error {
	return filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		e := modelEntry{path: p, rel: filepath.ToSlash(rel)}
		if e.info, err = os.Lstat(p); err != nil {
			return err
		}
		switch mode := e.info.Mode(); {
		case mode.IsDir(), mode.IsRegular():
		case mode&fs.ModeSymlink != 0:
			if e.link, err = os.Readlink(p); err != nil {
				return err
			}
			if err := checkLink(e.rel, e.link); err != nil {
				return err
			}
		default:
			return fmt.Errorf("%w: %s is a %s, not a file or directory", ErrUnsafeEntry, e.rel, describeMode(mode))
		}
		return fn(e)
	})
}

// ValidateModelDir checks, without reading file contents, that every entry
// of the model directory can go into the image: regular files, directories
// and symbolic links that stay inside it.
func ValidateModelDir(modelDir string) error {
	root, err := filepath.Abs(modelDir)
	if err != nil {
		return err
	}
	return walkModel(root, func(modelEntry) error { return nil })
}

// checkLink refuses a symbolic link at rel whose target leaves the model
// directory.
func checkLink(rel, target string) error {
	if path.IsAbs(target) || filepath.IsAbs(target) {
		return fmt.Errorf("%w: link %s points to the absolute path %s", ErrUnsafeEntry, rel, target)
	}
	resolved := path.Clean(path.Join(path.Dir(rel), filepath.ToSlash(target)))
	if resolved == ".." || strings.HasPrefix(resolved, "../") {
		return fmt.Errorf("%w: link %s points outside the model directory (%s)", ErrUnsafeEntry, rel, target)
	}
	return nil
}

func describeMode(m fs.FileMode) string {
	switch {
	case m&fs.ModeDevice != 0:
		return "device"
	case m&fs.ModeNamedPipe != 0:
		return "named pipe"
	case m&fs.ModeSocket != 0:
		return "socket"
	default:
		return "special file"
	}
}

func copyFile(w io.Writer, p string, size int64) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	n, err := io.Copy(w, io.LimitReader(f, size))
	if err != nil {
		return err
	}
	if n != size {
		return fmt.Errorf("%s changed while it was being archived", p)
	}
	return nil
}
