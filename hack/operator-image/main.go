// Command operator-image builds the operator's own container image without a
// Docker engine: a multi-platform OCI image index (linux/amd64 and
// linux/arm64) of a static /manager and /request-metrics (the model pods'
// request-metrics sidecar, cmd/request-metrics), /etc/passwd and /etc/group with the
// nonroot user 65532, and Debian's CA bundle. `make image` and `make
// image-push` drive it; the Dockerfile runs its rootfs command so that a
// Docker build ships the same files. See docs/image.md.
//
//	operator-image build   -out dist/image -epoch N -version V -revision R ...   build, print the index digest
//	operator-image compile -out DIR [-platforms ...]                             only the go build, one binary a platform
//	operator-image rootfs  -out DIR -platform linux/ARCH                         the image's files into a folder (Dockerfile)
//	operator-image push    -layout dist/image -ref REPO[:TAG] [-digest-file F]   push the index, print REPO@sha256:...
//	operator-image fetch-ca                                                      fetch and check the pinned ca-certificates .deb, print its path
//
// Why our own program and not ko: ko builds exactly this kind of image (a Go
// binary on a small base, multi-platform, reproducible), but it wants a base
// image from a registry (distroless by default) and this machine reaches no
// image registry; it cannot add /etc/passwd and a CA bundle from a pinned
// Debian package without a base image that has them; and it is another tool
// to pin and build. The repository already builds images with
// go-containerregistry (hack/baseimage, internal/imagebuild), so the same
// library, in a thousand lines we can read and test, makes every byte of the image
// ours: the files, their owners and times, the gzip level, the config.
//
// Reproducible: two builds of the same commit with the same Go version give
// the same index digest. The binary is built with -trimpath, -buildvcs=false
// and an empty build ID in a fixed environment (compile.go); every entry of
// every layer has the time -epoch (SOURCE_DATE_EPOCH, the commit's time),
// owner 0:0, no user or group names, a fixed mode and a fixed order; gzip is
// Go's compress/gzip at a fixed level with no name or time in its header; the
// config's times are -epoch too.
package main

import (
	"flag"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"
)

// listFlag collects a repeated flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	var err error
	switch cmd, args := os.Args[1], os.Args[2:]; cmd {
	case "build":
		err = buildCmd(args)
	case "compile":
		err = compileCmd(args)
	case "rootfs":
		err = rootfsCmd(args)
	case "push":
		err = pushCmd(args)
	case "fetch-ca":
		err = fetchCACmd(args)
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "operator-image:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: operator-image build|compile|rootfs|push|fetch-ca [flags] (see the source's comment, or -h)")
	os.Exit(2)
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "operator-image: "+format+"\n", args...)
}

func parse(fs *flag.FlagSet, args []string, required ...string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%s: unexpected arguments %q", fs.Name(), fs.Args())
	}
	for _, name := range required {
		if fs.Lookup(name).Value.String() == "" {
			return fmt.Errorf("%s: -%s is required", fs.Name(), name)
		}
	}
	return nil
}

// platforms parses "linux/amd64,linux/arm64" into sorted architectures.
func platforms(s string) ([]string, error) {
	var archs []string
	seen := map[string]bool{}
	for _, p := range strings.Split(s, ",") {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		os, arch, ok := strings.Cut(p, "/")
		if !ok || os != "linux" || (arch != "amd64" && arch != "arm64") {
			return nil, fmt.Errorf("platform %q: want linux/amd64 or linux/arm64", p)
		}
		if !seen[arch] {
			seen[arch] = true
			archs = append(archs, arch)
		}
	}
	if len(archs) == 0 {
		return nil, fmt.Errorf("no platform given")
	}
	sort.Strings(archs)
	return archs, nil
}

// binaryFlags parses -binary (the manager) and -request-metrics-binary
// linux/ARCH=PATH flags: binaries built before, used instead of a go build.
// The result is arch -> program name -> path.
func binaryFlags(byProgram map[string][]string) (map[string]map[string]string, error) {
	out := map[string]map[string]string{}
	for name, l := range byProgram {
		for _, kv := range l {
			p, path, ok := strings.Cut(kv, "=")
			if !ok {
				return nil, fmt.Errorf("%s binary %q: want linux/ARCH=PATH", name, kv)
			}
			archs, err := platforms(p)
			if err != nil {
				return nil, fmt.Errorf("%s binary %q: %w", name, kv, err)
			}
			if out[archs[0]] == nil {
				out[archs[0]] = map[string]string{}
			}
			out[archs[0]][name] = path
		}
	}
	return out, nil
}

// epochFlag is -epoch's value, defaulting to $SOURCE_DATE_EPOCH.
func epochFlag(fs *flag.FlagSet) *string {
	return fs.String("epoch", os.Getenv("SOURCE_DATE_EPOCH"),
		"SOURCE_DATE_EPOCH: the time of every file, of the config and its history (default $SOURCE_DATE_EPOCH)")
}

func parseEpoch(s string) (time.Time, error) {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return time.Time{}, fmt.Errorf("-epoch %q: want seconds since 1970 (e.g. git log -1 --format=%%ct)", s)
	}
	return time.Unix(n, 0).UTC(), nil
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }
