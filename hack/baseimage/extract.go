package main

// This file unpacks an image's layers into a folder, to run what the image
// holds without a container runtime (hack/baseimage/verify.sh).

import (
	"archive/tar"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
)

// errUnsafe is an entry that would land outside the folder.
var errUnsafe = errors.New("unsafe path")

func extractCmd(args []string) error {
	fs := flag.NewFlagSet("extract", flag.ContinueOnError)
	dir := fs.String("layout", "", "the OCI layout folder")
	out := fs.String("dir", "", "the folder to unpack into (created; must be empty)")
	if err := parse(fs, args, "layout", "dir"); err != nil {
		return err
	}
	img, err := image(*dir)
	if err != nil {
		return err
	}
	layers, err := img.Layers()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return err
	}
	// os.Root keeps every write inside the folder, whatever the links
	// already unpacked point at.
	root, err := os.OpenRoot(*out)
	if err != nil {
		return err
	}
	defer root.Close()
	for i, l := range layers {
		rc, err := l.Uncompressed()
		if err != nil {
			return err
		}
		err = untar(root, tar.NewReader(rc))
		rc.Close()
		if err != nil {
			return fmt.Errorf("layer %d: %w", i+1, err)
		}
	}
	return nil
}

func untar(root *os.Root, tr *tar.Reader) error {
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		name := path.Clean(hdr.Name)
		if name == "." || path.IsAbs(name) || name == ".." || strings.HasPrefix(name, "../") {
			return fmt.Errorf("%q: %w", hdr.Name, errUnsafe)
		}
		dir, base := path.Split(name)
		if strings.HasPrefix(base, ".wh.") {
			if base == ".wh..wh..opq" {
				return fmt.Errorf("%s: opaque folders are not supported", name)
			}
			if err := root.RemoveAll(path.Join(dir, strings.TrimPrefix(base, ".wh."))); err != nil {
				return err
			}
			continue
		}
		if dir != "" {
			if err := root.MkdirAll(strings.TrimSuffix(dir, "/"), 0o755); err != nil {
				return err
			}
		}
		mode := os.FileMode(hdr.Mode & 0o777)
		switch hdr.Typeflag {
		case tar.TypeDir:
			if err := root.Mkdir(name, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
				return err
			}
		case tar.TypeReg:
			_ = root.Remove(name)
			f, err := root.OpenFile(name, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
			if err != nil {
				return err
			}
			_, err = io.Copy(f, tr)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return err
			}
		case tar.TypeSymlink:
			_ = root.Remove(name)
			if err := root.Symlink(hdr.Linkname, name); err != nil {
				return err
			}
			if err := root.Lchown(name, hdr.Uid, hdr.Gid); err != nil {
				return err
			}
			continue
		case tar.TypeLink:
			_ = root.Remove(name)
			if err := root.Link(path.Clean(hdr.Linkname), name); err != nil {
				return err
			}
			continue
		default:
			return fmt.Errorf("%s: unsupported entry type %q", name, hdr.Typeflag)
		}
		// Owner first: chown clears the setuid and setgid bits.
		if err := root.Lchown(name, hdr.Uid, hdr.Gid); err != nil {
			return err
		}
		if hdr.Mode&0o4000 != 0 {
			mode |= os.ModeSetuid
		}
		if hdr.Mode&0o2000 != 0 {
			mode |= os.ModeSetgid
		}
		if hdr.Mode&0o1000 != 0 {
			mode |= os.ModeSticky
		}
		if err := root.Chmod(name, mode); err != nil {
			return err
		}
		if err := root.Chtimes(name, hdr.ModTime, hdr.ModTime); err != nil {
			return err
		}
	}
}
