package main

// This file makes /etc/ssl/certs/ca-certificates.crt from Debian's
// ca-certificates package at a pinned version, checked by its SHA-256.
//
// Not the build machine's own bundle: that one is whatever version the
// machine has installed, and it holds the machine's local additions
// (/usr/local/share/ca-certificates: a company proxy's or a sandbox's
// egress CA), which must never end up trusted by the operator. The .deb is
// the same file for every architecture and every build machine.

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/mlflow-operator/mlflow-operator/hack/internal/fetch"
)

// The pin. The SHA-256 is the one in Debian's signed Packages index of
// bookworm-security (apt-cache show ca-certificates=VERSION). To move it:
// apt-get download ca-certificates=NEW, sha256sum, change both lines; the
// image digest changes with it.
const (
	caVersion = "20250419~deb12u2"
	caSHA256  = "b9f76b5271a7ac373fd5e7e1b5b826a71ddd702b42a0d104955ecb1acfffc94b"
)

// caPools are where the .deb is fetched from when apt-get cannot: the
// security archive where this version was published, then the main archive
// (where a point release moves it). When the mirrors dropped the version,
// put the file, from https://snapshot.debian.org/package/ca-certificates/,
// into the cache folder: its SHA-256 is checked all the same.
var caPools = []string{
	"http://deb.debian.org/debian-security/pool/updates/main/c/ca-certificates/",
	"http://deb.debian.org/debian/pool/main/c/ca-certificates/",
}

// caPrefix is where the package keeps the certificates update-ca-certificates
// concatenates.
const caPrefix = "./usr/share/ca-certificates/mozilla/"

type caFlags struct {
	deb, cache, version, sha256 *string
}

func addCAFlags(fs *flag.FlagSet) caFlags {
	return caFlags{
		deb:     fs.String("ca-deb", "", "the ca-certificates .deb to use (default: fetched into -cache)"),
		cache:   fs.String("cache", "bin/operator-image", "folder keeping the fetched .deb"),
		version: fs.String("ca-version", caVersion, "Debian version of ca-certificates"),
		sha256:  fs.String("ca-sha256", caSHA256, "SHA-256 the .deb must have"),
	}
}

// bundle returns the CA bundle and the package version it came from.
func (c caFlags) bundle() ([]byte, error) {
	deb := *c.deb
	if deb == "" {
		var err error
		if deb, err = fetchCA(*c.cache, *c.version, *c.sha256); err != nil {
			return nil, err
		}
	}
	return caBundle(deb, *c.sha256)
}

func fetchCACmd(args []string) error {
	fs := flag.NewFlagSet("fetch-ca", flag.ContinueOnError)
	c := addCAFlags(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	p, err := fetchCA(*c.cache, *c.version, *c.sha256)
	if err != nil {
		return err
	}
	fmt.Println(p)
	return nil
}

func debName(version string) string {
	// apt-get download writes an epoch's colon as %3a; this package has none.
	return "ca-certificates_" + strings.ReplaceAll(version, ":", "%3a") + "_all.deb"
}

// fetchCA returns the path of the checked .deb in cache, fetching it when
// missing: with apt-get download when this machine's sources have the
// version (apt checks it against the signed index), else over HTTP from
// caPools. Either way the file's SHA-256 must be want.
func fetchCA(cache, version, want string) (string, error) {
	p := filepath.Join(cache, debName(version))
	if err := checkSum(p, want); err == nil {
		return p, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		logf("%v; fetching it again", err)
		if err := os.Remove(p); err != nil {
			return "", err
		}
	}
	if err := os.MkdirAll(cache, 0o755); err != nil {
		return "", err
	}
	tmp, err := os.MkdirTemp(cache, ".fetch-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)

	var tried []string
	if apt, err := exec.LookPath("apt-get"); err == nil {
		cmd := exec.Command(apt, "download", "-q", "ca-certificates="+version)
		cmd.Dir = tmp
		out, err := cmd.CombinedOutput()
		got := filepath.Join(tmp, debName(version))
		if err == nil {
			if err = checkSum(got, want); err == nil {
				logf("fetched ca-certificates %s with apt-get download", version)
				return p, os.Rename(got, p)
			}
		}
		tried = append(tried, fmt.Sprintf("apt-get download: %v %s", err, firstLine(string(out))))
	}
	for _, pool := range caPools {
		url := pool + debName(version)
		got := filepath.Join(tmp, "download.deb")
		err := fetch.ToFile(url, got, 2*time.Minute, 64<<20)
		if err == nil {
			if err = checkSum(got, want); err == nil {
				logf("fetched %s", url)
				return p, os.Rename(got, p)
			}
		}
		tried = append(tried, fmt.Sprintf("%s: %v", url, err))
	}
	return "", fmt.Errorf("ca-certificates %s: not fetched (%s); put the .deb, from https://snapshot.debian.org/package/ca-certificates/%s/, at %s",
		version, strings.Join(tried, "; "), version, p)
}

func checkSum(p, want string) error {
	b, err := os.ReadFile(p)
	if err != nil {
		return err
	}
	sum := sha256.Sum256(b)
	if got := hex.EncodeToString(sum[:]); got != want {
		return fmt.Errorf("%s: SHA-256 %s, want %s", p, got, want)
	}
	return nil
}

// caBundle is what update-ca-certificates writes on a fresh install of the
// package with no local certificates: every mozilla/*.crt, in byte order of
// their names (the order of /etc/ca-certificates.conf, which the package's
// postinst sorts), each ending in a newline. dpkg-deb reads the .deb (its
// data is xz-compressed, which Go's standard library does not read).
func caBundle(deb, want string) ([]byte, error) {
	if err := checkSum(deb, want); err != nil {
		return nil, err
	}
	dpkgDeb, err := exec.LookPath("dpkg-deb")
	if err != nil {
		return nil, fmt.Errorf("dpkg-deb (Debian's dpkg package) is needed to read %s", deb)
	}
	var stderr bytes.Buffer
	cmd := exec.Command(dpkgDeb, "--fsys-tarfile", deb)
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	certs := map[string][]byte{}
	tr := tar.NewReader(out)
	var readErr error
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			readErr = err
			break
		}
		if h.Typeflag != tar.TypeReg || !strings.HasPrefix(h.Name, caPrefix) || !strings.HasSuffix(h.Name, ".crt") {
			continue
		}
		b, err := io.ReadAll(io.LimitReader(tr, 1<<20))
		if err != nil {
			readErr = err
			break
		}
		certs[strings.TrimPrefix(h.Name, caPrefix)] = b
	}
	_, _ = io.Copy(io.Discard, out)
	if err := cmd.Wait(); err != nil {
		return nil, fmt.Errorf("dpkg-deb --fsys-tarfile %s: %v: %s", deb, err, stderr.String())
	}
	if readErr != nil {
		return nil, fmt.Errorf("%s: %w", deb, readErr)
	}
	names := make([]string, 0, len(certs))
	for n := range certs {
		names = append(names, n)
	}
	sort.Strings(names)
	var bundle bytes.Buffer
	for _, n := range names {
		b := certs[n]
		bundle.Write(b)
		if len(b) > 0 && b[len(b)-1] != '\n' {
			bundle.WriteByte('\n')
		}
	}
	n, err := countCerts(bundle.Bytes())
	if err != nil {
		return nil, fmt.Errorf("%s: %w", deb, err)
	}
	if n < 100 {
		return nil, fmt.Errorf("%s: only %d certificates under %s", deb, n, caPrefix)
	}
	return bundle.Bytes(), nil
}

// countCerts parses every PEM block of a bundle as an X.509 certificate.
func countCerts(b []byte) (int, error) {
	n := 0
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			break
		}
		if blk.Type != "CERTIFICATE" {
			return n, fmt.Errorf("PEM block %d is a %s", n+1, blk.Type)
		}
		if _, err := x509.ParseCertificate(blk.Bytes); err != nil {
			return n, fmt.Errorf("certificate %d: %w", n+1, err)
		}
		n++
	}
	if len(bytes.TrimSpace(b)) > 0 {
		return n, fmt.Errorf("bytes after the last certificate")
	}
	return n, nil
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return s
}
