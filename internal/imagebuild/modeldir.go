package imagebuild

// This file reads the model directory for the layer. Its files come from an
// MLflow server that may be hostile, and something else may change them
// while they are read, so every access goes through an os.Root (nothing
// below it can lead outside it), a regular file is checked to be the one
// the walk saw, and a symbolic link is resolved, through any chain of links,
// to an entry of the directory before it goes into the image.

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/mlflow-operator/mlflow-operator/internal/failure"
)

// ErrUnsafeEntry is in the chain of the error for a model entry that cannot
// go into the image: a link that leaves the model directory, is absolute,
// leads nowhere or loops, a device, a socket, a pipe. That error is a
// failure.Error of Kind Invalid and Subject Build: a model version's files
// do not change, so retrying cannot help.
var ErrUnsafeEntry = errors.New("unsafe model entry")

// unsafeEntry is the refusal of an entry, its message naming it.
func unsafeEntry(format string, args ...any) error {
	return failure.New(failure.Invalid, failure.Build, "", fmt.Errorf("%w: %s", ErrUnsafeEntry, fmt.Sprintf(format, args...)))
}

// changedEntry is the error for an entry that changed while it was read.
// Not Invalid: the files are the operator's own download, and a new
// download is a new chance.
func changedEntry(rel string) error {
	return failure.Errorf(failure.Other, failure.Build, "model file %q changed while it was being archived", rel)
}

// maxLinkHops bounds the links followed to resolve one link. Linux gives up
// after 40 as well, so a longer chain or a loop would not resolve in the
// image either.
const maxLinkHops = 40

// modelEntry is one entry of a model directory.
type modelEntry struct {
	rel  string      // below the model directory, with slashes; "." for it
	info fs.FileInfo // from Lstat, inside the directory's os.Root
	// link is, for a symbolic link, the target the layer gets: relative,
	// straight to where the chain of links ends (see resolveLink).
	link string
}

// walkModel calls fn for every entry of modelDir, a directory before its
// entries and those in lexical order (so an archive is the same on every
// host), after refusing what cannot go into an image: links that do not
// resolve inside the directory, devices, sockets, pipes. The walk goes
// through an os.Root, so no path it opens, whatever the directory holds or
// becomes meanwhile, leads outside modelDir; fn gets that root to open files
// with openRegular. (Not fs.WalkDir over the root's fs.FS: that refuses
// names which are not UTF-8, which a tar holds.)
func walkModel(modelDir string, fn func(*os.Root, modelEntry) error) error {
	root, err := os.OpenRoot(modelDir)
	if err != nil {
		return err
	}
	defer root.Close()
	return walkEntry(root, ".", fn)
}

// walkEntry is walkModel for the entry rel.
func walkEntry(root *os.Root, rel string, fn func(*os.Root, modelEntry) error) error {
	e := modelEntry{rel: rel}
	var err error
	if e.info, err = root.Lstat(rel); err != nil {
		return err
	}
	switch mode := e.info.Mode(); {
	case mode.IsRegular():
		return fn(root, e)
	case mode&fs.ModeSymlink != 0:
		if e.link, err = resolveLink(root, rel); err != nil {
			return err
		}
		return fn(root, e)
	case !mode.IsDir():
		return unsafeEntry("%q is a %s, not a file or directory", rel, describeMode(mode))
	}
	if err := fn(root, e); err != nil {
		return err
	}
	names, err := readDirNames(root, e)
	if err != nil {
		return err
	}
	for _, name := range names {
		child := name
		if rel != "." {
			child = rel + "/" + name
		}
		if err := walkEntry(root, child, fn); err != nil {
			return err
		}
	}
	return nil
}

// readDirNames lists the directory e, sorted, after checking it is the
// directory Lstat saw: a link put in its place would have the walk list,
// under e's name, another directory of the model.
func readDirNames(root *os.Root, e modelEntry) ([]string, error) {
	f, err := root.Open(e.rel)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !info.IsDir() || !os.SameFile(info, e.info) {
		return nil, changedEntry(e.rel)
	}
	names, err := f.Readdirnames(-1)
	if err != nil {
		return nil, err
	}
	slices.Sort(names)
	return names, nil
}

// ValidateModelDir checks, without reading file contents, that every entry
// of the model directory can go into the image: regular files, directories
// and symbolic links that resolve to one of them.
func ValidateModelDir(modelDir string) error {
	return walkModel(modelDir, func(*os.Root, modelEntry) error { return nil })
}

// resolveLink follows the link at rel, and every link its target goes
// through, below root, and answers the target the layer gets: the path of
// the entry the chain ends at, relative to the link's directory. Checking
// the target as written is not enough: "a -> d/up/.." stays inside as text
// but leaves the directory when d/up is itself a link to "..". The image
// resolves the link the same way as this directory (the layer holds the
// same tree), so what resolves inside here resolves inside there; and the
// rewritten target names no link, so no other entry decides where it ends.
//
// Refused: an absolute target anywhere in the chain (a path on the
// operator's disk here, and another in the image), a ".." above the model
// directory, a target that does not exist (nothing to serve, and where it
// would point in the image depends on the base), and chains of more than
// maxLinkHops links.
func resolveLink(root *os.Root, rel string) (string, error) {
	target, err := root.Readlink(rel)
	if err != nil {
		return "", err
	}
	if target == "" || path.IsAbs(target) || filepath.IsAbs(target) {
		return "", unsafeEntry("link %q points to the absolute path %q: only relative links inside the model directory are kept", rel, target)
	}
	// The link's directory: real directories, since the walk got there
	// without following links.
	var linkDir []string
	if dir := path.Dir(rel); dir != "." {
		linkDir = strings.Split(dir, "/")
	}
	resolved := slices.Clone(linkDir)
	pending := strings.Split(target, "/")
	for hops := 1; len(pending) > 0; {
		c := pending[0]
		pending = pending[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			if len(resolved) == 0 {
				return "", unsafeEntry("link %q points outside the model directory (%q)", rel, target)
			}
			resolved = resolved[:len(resolved)-1]
			continue
		}
		p := strings.Join(append(resolved[:len(resolved):len(resolved)], c), "/")
		info, err := root.Lstat(p)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return "", unsafeEntry("link %q points to %q, which is not in the model directory", rel, target)
			}
			return "", err
		}
		switch {
		case info.Mode()&fs.ModeSymlink != 0:
			if hops++; hops > maxLinkHops {
				return "", unsafeEntry("link %q: more than %d links to follow (a loop?)", rel, maxLinkHops)
			}
			next, err := root.Readlink(p)
			if err != nil {
				return "", err
			}
			if next == "" || path.IsAbs(next) || filepath.IsAbs(next) {
				return "", unsafeEntry("link %q goes through the link %q to the absolute path %q", rel, p, next)
			}
			// next is relative to p's directory, which is resolved.
			pending = append(strings.Split(next, "/"), pending...)
		case !info.IsDir() && len(pending) > 0:
			// "file/x", "file/." and "file/.." do not resolve.
			return "", unsafeEntry("link %q points to %q, which is not in the model directory (%q is not a directory)", rel, target, p)
		default:
			resolved = append(resolved, c)
		}
	}
	return relativePath(linkDir, resolved), nil
}

// relativePath is the path from the directory from to the entry to, both
// given as components below the model directory without links, "." or "..":
// up to their common part, then down.
func relativePath(from, to []string) string {
	common := 0
	for common < len(from) && common < len(to) && from[common] == to[common] {
		common++
	}
	var parts []string
	for range len(from) - common {
		parts = append(parts, "..")
	}
	parts = append(parts, to[common:]...)
	if len(parts) == 0 {
		return "."
	}
	return strings.Join(parts, "/")
}

// openRegular opens the regular file e for reading and checks it is the
// very file the walk's Lstat saw. Between that Lstat and this open the name
// may have been replaced: os.Root keeps the open inside the model directory
// (it follows a link only below its root), and the check refuses a link or
// another file put in its place.
func openRegular(root *os.Root, e modelEntry) (*os.File, fs.FileInfo, error) {
	if testHookBeforeOpen != nil {
		testHookBeforeOpen(e.rel)
	}
	f, err := root.Open(e.rel)
	if err != nil {
		return nil, nil, err
	}
	info, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	if !info.Mode().IsRegular() || !os.SameFile(info, e.info) {
		f.Close()
		return nil, nil, changedEntry(e.rel)
	}
	return f, info, nil
}

// testHookBeforeOpen, when set by a test, runs between a file's Lstat and
// its open: the moment another process could swap it.
var testHookBeforeOpen func(rel string)

// copyFile copies exactly size bytes of f, the model file rel: the size
// its tar header already announced.
func copyFile(w io.Writer, f *os.File, rel string, size int64) error {
	n, err := io.Copy(w, io.LimitReader(f, size))
	if err != nil {
		return err
	}
	if n != size {
		return changedEntry(rel)
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
