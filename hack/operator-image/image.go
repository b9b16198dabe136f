package main

// This file assembles the images and their index and writes them as an OCI
// layout.

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

const (
	title       = "mlflow-operator"
	description = "Kubernetes operator that serves MLflow models: builds, verifies and rolls out a serving image of the model version an alias, a stage or a pin names"
)

// meta is what the labels say.
type meta struct {
	version, revision, source, licenses string
	created                             time.Time
}

// labels are the config's labels and the index's annotations. The
// Dockerfile sets the same keys from its ARGs.
func (m meta) labels() map[string]string {
	return map[string]string{
		"org.opencontainers.image.title":       title,
		"org.opencontainers.image.description": description,
		"org.opencontainers.image.source":      m.source,
		"org.opencontainers.image.revision":    m.revision,
		"org.opencontainers.image.version":     m.version,
		"org.opencontainers.image.created":     m.created.Format(time.RFC3339),
		"org.opencontainers.image.licenses":    m.licenses,
	}
}

func buildCmd(args []string) error {
	fs := flag.NewFlagSet("build", flag.ContinueOnError)
	out := fs.String("out", "dist/image", "the OCI layout folder to write (replaced)")
	plats := fs.String("platforms", "linux/amd64,linux/arm64", "platforms of the index")
	moduleDir := fs.String("C", ".", "the operator's module folder")
	pkg := fs.String("pkg", "./cmd", "the main package")
	keep := fs.String("keep-binaries", "", "folder to keep the built binaries in (default: removed)")
	var binFlags, sidecarFlags listFlag
	fs.Var(&binFlags, "binary", "linux/ARCH=PATH: a /manager built before, instead of a go build; repeatable")
	fs.Var(&sidecarFlags, "request-metrics-binary", "linux/ARCH=PATH: a /request-metrics built before, instead of a go build; repeatable")
	epoch := epochFlag(fs)
	var m meta
	fs.StringVar(&m.version, "version", "", "org.opencontainers.image.version (and -X main.version)")
	fs.StringVar(&m.revision, "revision", "", "org.opencontainers.image.revision: the git commit")
	fs.StringVar(&m.source, "source", "https://github.com/mlflow-operator/mlflow-operator", "org.opencontainers.image.source")
	fs.StringVar(&m.licenses, "licenses", "NOASSERTION", "org.opencontainers.image.licenses (an SPDX expression)")
	ca := addCAFlags(fs)
	if err := parse(fs, args, "out", "epoch", "version", "revision"); err != nil {
		return err
	}
	archs, err := platforms(*plats)
	if err != nil {
		return err
	}
	given, err := binaryFlags(map[string][]string{"manager": binFlags, "request-metrics": sidecarFlags})
	if err != nil {
		return err
	}
	if m.created, err = parseEpoch(*epoch); err != nil {
		return err
	}
	start := time.Now()
	bundle, err := ca.bundle()
	if err != nil {
		return err
	}

	binDir := *keep
	if binDir == "" {
		if binDir, err = os.MkdirTemp("", "operator-image-"); err != nil {
			return err
		}
		defer os.RemoveAll(binDir)
	} else if err := os.MkdirAll(binDir, 0o755); err != nil {
		return err
	}
	progs := programs(*pkg)
	bins, err := binaries(archs, given, *moduleDir, progs, m.version, binDir)
	if err != nil {
		return err
	}

	t := time.Now()
	etc, err := writeLayer(etcFiles(bundle), m.created)
	if err != nil {
		return err
	}
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	for _, arch := range archs {
		img, err := platformImage(arch, bins[arch], progs, etc, *ca.version, m)
		if err != nil {
			return err
		}
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{
			Add:        img,
			Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: arch}},
		})
	}
	idx = mutate.Annotations(idx, m.labels()).(v1.ImageIndex)
	if err := writeLayout(*out, idx, m.version); err != nil {
		return err
	}
	d, err := idx.Digest()
	if err != nil {
		return err
	}
	logf("layers and layout in %s; image index %s (%s) in %s", time.Since(t).Round(100*time.Millisecond),
		d, strings.Join(prefixed("linux/", archs), ", "), time.Since(start).Round(100*time.Millisecond))
	fmt.Println(d)
	return nil
}

func prefixed(p string, l []string) []string {
	out := make([]string, len(l))
	for i, s := range l {
		out[i] = p + s
	}
	return out
}

// platformImage is one platform's image: the /etc layer, then one layer
// per program (/manager, /request-metrics).
func platformImage(arch string, bins map[string]string, progs []program, etc *memLayer, caVersion string, m meta) (v1.Image, error) {
	cfg := &v1.ConfigFile{
		Created:      v1.Time{Time: m.created},
		OS:           "linux",
		Architecture: arch,
		Config: v1.Config{
			User:       user,
			Entrypoint: entrypoint,
			WorkingDir: workdir,
			Env:        []string{pathEnv},
			Labels:     m.labels(),
		},
		RootFS: v1.RootFS{Type: "layers"},
	}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err := mutate.ConfigFile(img, cfg)
	if err != nil {
		return nil, err
	}
	adds := []mutate.Addendum{{Layer: etc, History: v1.History{
		Created:   v1.Time{Time: m.created},
		CreatedBy: fmt.Sprintf("/etc/passwd, /etc/group (nonroot %d), /etc/ssl/certs/ca-certificates.crt (Debian ca-certificates %s) (hack/operator-image)", nonrootUID, caVersion),
	}}}
	sizes := []string{mib(int64(len(etc.gz))) + " (/etc)"}
	uncompressed := etc.uncompressed
	for _, prog := range progs {
		bin := bins[prog.name]
		gover, err := goVersion(bin)
		if err != nil {
			return nil, err
		}
		l, err := writeLayer(binaryFiles(prog.name, bin), m.created)
		if err != nil {
			return nil, err
		}
		adds = append(adds, mutate.Addendum{Layer: l, History: v1.History{
			Created: v1.Time{Time: m.created},
			CreatedBy: fmt.Sprintf("/%s: CGO_ENABLED=0 GOOS=linux GOARCH=%s go %s (%s) (hack/operator-image)",
				prog.name, arch, strings.Join(quoteArgs(buildArgs(m.version, prog.name, prog.pkg)), " "), gover),
		}})
		sizes = append(sizes, mib(int64(len(l.gz)))+" (/"+prog.name+")")
		uncompressed += l.uncompressed
	}
	if img, err = mutate.Append(img, adds...); err != nil {
		return nil, err
	}
	d, err := img.Digest()
	if err != nil {
		return nil, err
	}
	logf("linux/%s: %s; layers %s compressed, %s uncompressed", arch, d, strings.Join(sizes, " + "), mib(uncompressed))
	return img, nil
}

func quoteArgs(args []string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		if strings.ContainsAny(a, " ") {
			a = "'" + a + "'"
		}
		out[i] = a
	}
	return out
}

// writeLayout writes the index as the one entry of a new OCI layout at dir,
// replacing what was there only once the new one is complete.
func writeLayout(dir string, idx v1.ImageIndex, version string) error {
	parent := filepath.Dir(dir)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(parent, "."+filepath.Base(dir)+"-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	p, err := layout.Write(tmp, empty.Index)
	if err != nil {
		return err
	}
	var opts []layout.Option
	if version != "" {
		opts = append(opts, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": version}))
	}
	if err := p.AppendIndex(idx, opts...); err != nil {
		return err
	}
	// MkdirTemp made it 0700.
	if err := os.Chmod(tmp, 0o755); err != nil {
		return err
	}
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	return os.Rename(tmp, dir)
}
