package main

// This file writes a folder (or a part of it) as a reproducible gzip tar
// layer kept in a file.

import (
	"archive/tar"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// emptied are folders whose content never goes into an image: the runtime
// mounts its own there (or, for /tmp, a writable volume).
var emptied = map[string]bool{"dev": true, "proc": true, "sys": true, "run": true, "tmp": true}

// entry is one file of the rootfs, in walk order.
type entry struct {
	rel  string // slash path relative to the rootfs, no leading "./"
	info fs.FileInfo
}

// walk lists the rootfs depth first, each folder's entries in lexical
// order (os.ReadDir sorts), without following links. The root itself is not
// listed. Skipped counts what cannot go into a layer (devices, sockets,
// pipes).
func walk(root string) (entries []entry, skipped []string, err error) {
	var visit func(rel string) error
	visit = func(rel string) error {
		des, err := os.ReadDir(filepath.Join(root, filepath.FromSlash(rel)))
		if err != nil {
			return err
		}
		for _, de := range des {
			child := path.Join(rel, de.Name())
			info, err := os.Lstat(filepath.Join(root, filepath.FromSlash(child)))
			if err != nil {
				return err
			}
			m := info.Mode()
			switch {
			case m.IsDir():
				entries = append(entries, entry{child, info})
				if rel == "" && emptied[de.Name()] {
					continue
				}
				if err := visit(child); err != nil {
					return err
				}
			case m.IsRegular(), m&fs.ModeSymlink != 0:
				entries = append(entries, entry{child, info})
			default:
				skipped = append(skipped, child)
			}
		}
		return nil
	}
	return entries, skipped, visit("")
}

// under reports whether rel is p or inside p.
func under(rel, p string) bool { return rel == p || strings.HasPrefix(rel, p+"/") }

// ancestor reports whether rel is a folder above p.
func ancestor(rel, p string) bool { return strings.HasPrefix(p, rel+"/") }

// fileLayer is a compressed layer in a file, with its digests computed while
// it was written.
type fileLayer struct {
	path               string
	digest, diffID     v1.Hash
	size, uncompressed int64
	entries            int
}

var _ v1.Layer = (*fileLayer)(nil)

func (l *fileLayer) Digest() (v1.Hash, error)             { return l.digest, nil }
func (l *fileLayer) DiffID() (v1.Hash, error)             { return l.diffID, nil }
func (l *fileLayer) Size() (int64, error)                 { return l.size, nil }
func (l *fileLayer) MediaType() (types.MediaType, error)  { return types.OCILayer, nil }
func (l *fileLayer) Compressed() (io.ReadCloser, error)   { return os.Open(l.path) }
func (l *fileLayer) Uncompressed() (io.ReadCloser, error) { return gunzip(l.path) }

func gunzip(p string) (io.ReadCloser, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	zr, err := gzip.NewReader(f)
	if err != nil {
		f.Close()
		return nil, err
	}
	return struct {
		io.Reader
		io.Closer
	}{zr, closerFunc(func() error { zr.Close(); return f.Close() })}, nil
}

type closerFunc func() error

func (c closerFunc) Close() error { return c() }

type counter struct {
	w io.Writer
	n int64
}

func (c *counter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// writeLayer writes the entries of root that keep accepts to the file out.
func writeLayer(root string, entries []entry, keep func(rel string) bool, out string, epoch time.Time, level int) (*fileLayer, error) {
	f, err := os.Create(out)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	zsum, tsum := sha256.New(), sha256.New()
	zcount := &counter{w: io.MultiWriter(f, zsum)}
	zw, err := gzip.NewWriterLevel(zcount, level)
	if err != nil {
		return nil, err
	}
	tcount := &counter{w: io.MultiWriter(zw, tsum)}
	tw := tar.NewWriter(tcount)

	type inode struct{ dev, ino uint64 }
	seen := map[inode]string{} // first path of each multiply-linked file in this layer
	n := 0
	for _, e := range entries {
		if !keep(e.rel) {
			continue
		}
		st, ok := e.info.Sys().(*syscall.Stat_t)
		if !ok {
			return nil, fmt.Errorf("%s: no stat", e.rel)
		}
		hdr := &tar.Header{
			Name:    e.rel,
			Mode:    tarMode(e.info.Mode()),
			Uid:     int(st.Uid),
			Gid:     int(st.Gid),
			ModTime: epoch,
		}
		var src string
		m := e.info.Mode()
		switch {
		case m.IsDir():
			hdr.Typeflag, hdr.Name = tar.TypeDir, e.rel+"/"
		case m&fs.ModeSymlink != 0:
			hdr.Typeflag = tar.TypeSymlink
			if hdr.Linkname, err = os.Readlink(filepath.Join(root, filepath.FromSlash(e.rel))); err != nil {
				return nil, err
			}
		default:
			key := inode{uint64(st.Dev), uint64(st.Ino)}
			if first, ok := seen[key]; ok && st.Nlink > 1 {
				hdr.Typeflag, hdr.Linkname = tar.TypeLink, first
				break
			}
			if st.Nlink > 1 {
				seen[key] = e.rel
			}
			hdr.Typeflag, hdr.Size = tar.TypeReg, e.info.Size()
			src = filepath.Join(root, filepath.FromSlash(e.rel))
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, fmt.Errorf("%s: %w", e.rel, err)
		}
		if src != "" {
			if err := copyFile(tw, src, hdr.Size); err != nil {
				return nil, fmt.Errorf("%s: %w", e.rel, err)
			}
		}
		n++
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	if err := f.Close(); err != nil {
		return nil, err
	}
	return &fileLayer{
		path:         out,
		digest:       v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(zsum.Sum(nil))},
		diffID:       v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(tsum.Sum(nil))},
		size:         zcount.n,
		uncompressed: tcount.n,
		entries:      n,
	}, nil
}

func copyFile(w io.Writer, src string, size int64) error {
	f, err := os.Open(src)
	if err != nil {
		return err
	}
	defer f.Close()
	n, err := io.Copy(w, io.LimitReader(f, size))
	if err == nil && n != size {
		err = fmt.Errorf("changed while read: %d of %d bytes", n, size)
	}
	return err
}

// tarMode is the tar mode of a file mode: permissions plus setuid, setgid
// and sticky bits.
func tarMode(m fs.FileMode) int64 {
	mode := int64(m.Perm())
	if m&fs.ModeSetuid != 0 {
		mode |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		mode |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		mode |= 0o1000
	}
	return mode
}
