package main

// This file assembles the image from the rootfs, writes it as an OCI layout,
// pushes it and reads it back.

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

func assembleCmd(args []string) error {
	fs := flag.NewFlagSet("assemble", flag.ContinueOnError)
	rootfs := fs.String("rootfs", "", "the root filesystem folder")
	out := fs.String("layout", "", "the OCI layout folder to write (must not exist)")
	epoch := fs.Int64("epoch", 0, "SOURCE_DATE_EPOCH: the time of every entry, of the config and its history")
	level := fs.Int("level", 6, "gzip level (fixed: part of what makes the digests)")
	user := fs.String("user", "", "the config's User")
	workdir := fs.String("workdir", "", "the config's WorkingDir")
	cmdJSON := fs.String("cmd", "", `the config's Cmd as a JSON array, e.g. ["python3"]`)
	tag := fs.String("tag", "", "org.opencontainers.image.ref.name of the image in the layout")
	var splits, envs, labels, history listFlag
	fs.Var(&splits, "split", "a folder (absolute path) that gets a layer of its own, after the rest; repeatable")
	fs.Var(&envs, "env", "K=V for the config's Env; repeatable, in order")
	fs.Var(&labels, "label", "K=V for the config's labels and the manifest's annotations; repeatable")
	fs.Var(&history, "history", "created_by of each layer, in order (rest, then each -split); repeatable")
	if err := parse(fs, args, "rootfs", "layout", "epoch"); err != nil {
		return err
	}
	if _, err := os.Stat(*out); err == nil {
		return fmt.Errorf("%s exists", *out)
	}
	created := time.Unix(*epoch, 0).UTC()

	start := time.Now()
	entries, skipped, err := walk(*rootfs)
	if err != nil {
		return err
	}
	if len(skipped) > 0 {
		fmt.Fprintf(os.Stderr, "baseimage: left out %d device nodes, sockets or pipes (%s)\n", len(skipped), strings.Join(first(skipped, 5), ", "))
	}
	var parts []string
	for _, s := range splits {
		parts = append(parts, strings.Trim(filepath.ToSlash(filepath.Clean(s)), "/"))
	}
	keeps := []func(string) bool{func(rel string) bool {
		for _, p := range parts {
			if under(rel, p) {
				return false
			}
		}
		return true
	}}
	for _, p := range parts {
		keeps = append(keeps, func(rel string) bool { return under(rel, p) || ancestor(rel, p) })
	}

	tmp, err := os.MkdirTemp(filepath.Dir(*out), ".layers-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)

	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	cfg, err := imageConfig(*user, *workdir, *cmdJSON, envs, labels, created)
	if err != nil {
		return err
	}
	if img, err = mutate.ConfigFile(img, cfg); err != nil {
		return err
	}
	var total, totalUncompressed int64
	for i, keep := range keeps {
		t := time.Now()
		l, err := writeLayer(*rootfs, entries, keep, filepath.Join(tmp, fmt.Sprintf("layer%d.tar.gz", i)), created, *level)
		if err != nil {
			return err
		}
		what := "/ without " + strings.Join(splits, ", ")
		if i > 0 {
			what = splits[i-1]
		}
		fmt.Fprintf(os.Stderr, "baseimage: layer %d (%s): %d entries, %s compressed, %s uncompressed, %s, in %s\n",
			i+1, what, l.entries, mib(l.size), mib(l.uncompressed), l.digest, time.Since(t).Round(time.Second))
		total += l.size
		totalUncompressed += l.uncompressed
		h := v1.History{Created: v1.Time{Time: created}}
		if i < len(history) {
			h.CreatedBy = history[i]
		}
		if img, err = mutate.Append(img, mutate.Addendum{Layer: l, History: h}); err != nil {
			return err
		}
	}
	if ann := annotationsOf(labels); len(ann) > 0 {
		img = mutate.Annotations(img, ann).(v1.Image)
	}
	p, err := layout.Write(*out, empty.Index)
	if err != nil {
		return err
	}
	var opts []layout.Option
	if *tag != "" {
		opts = append(opts, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": *tag}))
	}
	if err := p.AppendImage(img, opts...); err != nil {
		return err
	}
	d, err := img.Digest()
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "baseimage: image %s: %s compressed, %s uncompressed, in %s\n",
		d, mib(total), mib(totalUncompressed), time.Since(start).Round(time.Second))
	fmt.Println(d)
	return nil
}

func imageConfig(user, workdir, cmdJSON string, envs, labels []string, created time.Time) (*v1.ConfigFile, error) {
	cfg := &v1.ConfigFile{
		Created:      v1.Time{Time: created},
		OS:           "linux",
		Architecture: runtime.GOARCH,
		Config: v1.Config{
			User:       user,
			WorkingDir: workdir,
			Env:        append([]string(nil), envs...),
		},
		RootFS: v1.RootFS{Type: "layers"},
	}
	if cmdJSON != "" {
		if err := json.Unmarshal([]byte(cmdJSON), &cfg.Config.Cmd); err != nil {
			return nil, fmt.Errorf("-cmd: %w", err)
		}
	}
	for _, kv := range envs {
		if !strings.Contains(kv, "=") {
			return nil, fmt.Errorf("-env %q: want K=V", kv)
		}
	}
	if len(labels) > 0 {
		cfg.Config.Labels = map[string]string{}
		for _, kv := range labels {
			k, v, ok := strings.Cut(kv, "=")
			if !ok {
				return nil, fmt.Errorf("-label %q: want K=V", kv)
			}
			cfg.Config.Labels[k] = v
		}
	}
	return cfg, nil
}

// annotationsOf are the org.opencontainers.image.* labels, which the
// manifest carries too.
func annotationsOf(labels []string) map[string]string {
	out := map[string]string{}
	for _, kv := range labels {
		if k, v, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "org.opencontainers.image.") {
			out[k] = v
		}
	}
	return out
}

// image reads the one image of an OCI layout.
func image(dir string) (v1.Image, error) {
	idx, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		return nil, err
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, err
	}
	if len(im.Manifests) != 1 {
		return nil, fmt.Errorf("%s: want one image, found %d", dir, len(im.Manifests))
	}
	return idx.Image(im.Manifests[0].Digest)
}

func digestCmd(args []string) error {
	fs := flag.NewFlagSet("digest", flag.ContinueOnError)
	dir := fs.String("layout", "", "the OCI layout folder")
	if err := parse(fs, args, "layout"); err != nil {
		return err
	}
	img, err := image(*dir)
	if err != nil {
		return err
	}
	d, err := img.Digest()
	if err != nil {
		return err
	}
	fmt.Println(d)
	return nil
}

func configCmd(args []string) error {
	fs := flag.NewFlagSet("config", flag.ContinueOnError)
	dir := fs.String("layout", "", "the OCI layout folder")
	if err := parse(fs, args, "layout"); err != nil {
		return err
	}
	img, err := image(*dir)
	if err != nil {
		return err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return err
	}
	for _, kv := range cf.Config.Env {
		fmt.Println(kv)
	}
	fmt.Println("WORKDIR=" + cf.Config.WorkingDir)
	fmt.Println("USER=" + cf.Config.User)
	return nil
}

func pushCmd(args []string) error {
	fs := flag.NewFlagSet("push", flag.ContinueOnError)
	dir := fs.String("layout", "", "the OCI layout folder")
	ref := fs.String("ref", "", "where to push, e.g. 127.0.0.1:5000/serving/mlflow:3.17.2")
	insecure := fs.Bool("insecure", false, "allow plain HTTP (always allowed for loopback registries)")
	if err := parse(fs, args, "layout", "ref"); err != nil {
		return err
	}
	img, err := image(*dir)
	if err != nil {
		return err
	}
	var nopts []name.Option
	if *insecure {
		nopts = append(nopts, name.Insecure)
	}
	r, err := name.ParseReference(*ref, nopts...)
	if err != nil {
		return err
	}
	t := time.Now()
	if err := remote.Write(r, img, remote.WithAuthFromKeychain(authn.DefaultKeychain)); err != nil {
		return err
	}
	d, err := img.Digest()
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "baseimage: pushed %s in %s\n", r, time.Since(t).Round(time.Millisecond))
	fmt.Println(r.Context().Digest(d.String()).String())
	return nil
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

func first(s []string, n int) []string {
	s = append([]string(nil), s...)
	sort.Strings(s)
	if len(s) > n {
		return append(s[:n], "...")
	}
	return s
}
