package main

// This file writes a list of files as a reproducible gzip tar layer, kept
// in memory (the largest, the binary, is about 20 MiB compressed).

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// gzipLevel is part of what makes the digests: changing it changes every
// layer. 6 is gzip's default; 9 saves about 1% of the binary's layer for
// twice the time.
const gzipLevel = 6

// memLayer is a compressed layer with the digests computed while it was
// written.
type memLayer struct {
	gz             []byte
	digest, diffID v1.Hash
	uncompressed   int64
	entries        int
}

var _ v1.Layer = (*memLayer)(nil)

func (l *memLayer) Digest() (v1.Hash, error)            { return l.digest, nil }
func (l *memLayer) DiffID() (v1.Hash, error)            { return l.diffID, nil }
func (l *memLayer) Size() (int64, error)                { return int64(len(l.gz)), nil }
func (l *memLayer) MediaType() (types.MediaType, error) { return types.OCILayer, nil }
func (l *memLayer) Compressed() (io.ReadCloser, error) {
	return io.NopCloser(bytes.NewReader(l.gz)), nil
}
func (l *memLayer) Uncompressed() (io.ReadCloser, error) {
	return gzip.NewReader(bytes.NewReader(l.gz))
}

type counter struct {
	w io.Writer
	n int64
}

func (c *counter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

func sha(h interface{ Sum([]byte) []byte }) v1.Hash {
	return v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(h.Sum(nil))}
}

// writeLayer writes files, in the order given, as a gzip tar: owner 0:0 with
// no names, the time epoch, the file's mode, USTAR headers (no PAX records,
// no access or change times), no extended attributes.
func writeLayer(files []file, mtime time.Time) (*memLayer, error) {
	var gz bytes.Buffer
	zsum, tsum := sha256.New(), sha256.New()
	zw, err := gzip.NewWriterLevel(io.MultiWriter(&gz, zsum), gzipLevel)
	if err != nil {
		return nil, err
	}
	tcount := &counter{w: io.MultiWriter(zw, tsum)}
	tw := tar.NewWriter(tcount)
	for _, f := range files {
		hdr := &tar.Header{
			Name:    f.name,
			Mode:    int64(f.mode.Perm()),
			Uid:     0,
			Gid:     0,
			ModTime: mtime,
			Format:  tar.FormatUSTAR,
		}
		var src io.Reader
		switch {
		case f.dir():
			hdr.Typeflag = tar.TypeDir
		case f.src != "":
			in, err := os.Open(f.src)
			if err != nil {
				return nil, err
			}
			defer in.Close()
			info, err := in.Stat()
			if err != nil {
				return nil, err
			}
			hdr.Typeflag, hdr.Size, src = tar.TypeReg, info.Size(), io.LimitReader(in, info.Size())
		default:
			hdr.Typeflag, hdr.Size, src = tar.TypeReg, int64(len(f.data)), bytes.NewReader(f.data)
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, fmt.Errorf("%s: %w", f.name, err)
		}
		if src != nil {
			n, err := io.Copy(tw, src)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", f.name, err)
			}
			if n != hdr.Size {
				return nil, fmt.Errorf("%s: changed while read: %d of %d bytes", f.name, n, hdr.Size)
			}
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return &memLayer{
		gz:           gz.Bytes(),
		digest:       sha(zsum),
		diffID:       sha(tsum),
		uncompressed: tcount.n,
		entries:      len(files),
	}, nil
}
