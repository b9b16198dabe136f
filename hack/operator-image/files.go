package main

// This file says what is in the image, and writes it into a folder for the
// Dockerfile (rootfs), so that both builds ship the same files.

import (
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// The image's user and config. The pod's securityContext sets the same
// user; the Dockerfile says the same (test/image checks).
const (
	nonrootUID = 65532
	user       = "65532:65532"
	workdir    = "/"
	// PATH is what BuildKit gives an image FROM scratch; the Dockerfile sets
	// it explicitly, so both configs are the same. Nothing here uses it.
	pathEnv = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
)

// SSL_CERT_FILE is not set: Go finds /etc/ssl/certs/ca-certificates.crt by
// itself (the first file crypto/x509 tries on Linux), and a user's own
// SSL_CERT_FILE or SSL_CERT_DIR then works as Go documents it.

var entrypoint = []string{"/manager"}

// passwd and group: root, nobody and the nonroot user 65532 the operator
// runs as, with no home folder and no shell (there is no shell at all).
const (
	passwd = "root:x:0:0:root:/root:/sbin/nologin\n" +
		"nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n" +
		"nonroot:x:65532:65532:nonroot:/nonexistent:/sbin/nologin\n"
	group = "root:x:0:\n" +
		"nobody:x:65534:\n" +
		"nonroot:x:65532:\n"
)

// file is one entry of a layer. Every entry is owned by root: the operator
// (65532) can read and run them but change none of them.
type file struct {
	name string // slash path, no leading "/"; a folder's ends in "/"
	mode os.FileMode
	data []byte // a small file's content
	src  string // or the file to copy (the binary)
}

func (f file) dir() bool { return strings.HasSuffix(f.name, "/") }

// etcFiles are the first layer, the same for every platform.
func etcFiles(bundle []byte) []file {
	return []file{
		{name: "etc/", mode: 0o755},
		{name: "etc/group", mode: 0o444, data: []byte(group)},
		{name: "etc/passwd", mode: 0o444, data: []byte(passwd)},
		{name: "etc/ssl/", mode: 0o755},
		{name: "etc/ssl/certs/", mode: 0o755},
		{name: "etc/ssl/certs/ca-certificates.crt", mode: 0o444, data: bundle},
	}
}

// binaryFiles are the layer of one program: the platform's binary at the
// image's root (/manager in the second layer, /request-metrics in the
// third: a change of one leaves the other's layer as it was).
func binaryFiles(name, bin string) []file {
	return []file{{name: name, mode: 0o555, src: bin}}
}

// rootfsCmd writes the image's files into a folder: the Dockerfile's
// builder stage runs it and copies the folder onto scratch.
func rootfsCmd(args []string) error {
	fs := flag.NewFlagSet("rootfs", flag.ContinueOnError)
	out := fs.String("out", "", "the folder to write (must not exist)")
	platform := fs.String("platform", "", "linux/amd64 or linux/arm64")
	binary := fs.String("binary", "", "a /manager built before (default: go build)")
	sidecar := fs.String("request-metrics-binary", "", "a /request-metrics built before (default: go build)")
	moduleDir := fs.String("C", ".", "the operator's module folder")
	pkg := fs.String("pkg", "./cmd", "the main package")
	version := fs.String("version", "", "-X main.version")
	epoch := epochFlag(fs)
	ca := addCAFlags(fs)
	if err := parse(fs, args, "out", "platform"); err != nil {
		return err
	}
	archs, err := platforms(*platform)
	if err != nil {
		return err
	}
	mtime := time.Unix(0, 0).UTC()
	if *epoch != "" {
		if mtime, err = parseEpoch(*epoch); err != nil {
			return err
		}
	}
	if _, err := os.Stat(*out); err == nil {
		return fmt.Errorf("%s exists", *out)
	}
	bundle, err := ca.bundle()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return err
	}
	given := map[string]map[string]string{archs[0]: {}}
	if *binary != "" {
		given[archs[0]]["manager"] = *binary
	}
	if *sidecar != "" {
		given[archs[0]]["request-metrics"] = *sidecar
	}
	tmp, err := os.MkdirTemp("", "operator-image-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	progs := programs(*pkg)
	bins, err := binaries(archs, given, *moduleDir, progs, *version, tmp)
	if err != nil {
		return err
	}
	files := etcFiles(bundle)
	for _, prog := range progs {
		files = append(files, binaryFiles(prog.name, bins[archs[0]][prog.name])...)
	}
	if err := writeTree(*out, files, mtime); err != nil {
		return err
	}
	logf("wrote %d files and folders for linux/%s into %s", len(files), archs[0], *out)
	return nil
}

// writeTree writes files under root with their modes and mtime; folders
// last get their times, after their content.
func writeTree(root string, files []file, mtime time.Time) error {
	var dirs []string
	for _, f := range files {
		p := filepath.Join(root, filepath.FromSlash(strings.TrimSuffix(f.name, "/")))
		if f.dir() {
			if err := os.MkdirAll(p, 0o755); err != nil {
				return err
			}
			dirs = append(dirs, p)
		} else if err := writeFile(p, f); err != nil {
			return err
		}
		if err := os.Chmod(p, f.mode); err != nil {
			return err
		}
		if err := os.Chtimes(p, mtime, mtime); err != nil {
			return err
		}
	}
	for i := len(dirs) - 1; i >= 0; i-- {
		if err := os.Chtimes(dirs[i], mtime, mtime); err != nil {
			return err
		}
	}
	return nil
}

func writeFile(p string, f file) error {
	if f.src == "" {
		return os.WriteFile(p, f.data, 0o600)
	}
	in, err := os.Open(f.src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(p, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
