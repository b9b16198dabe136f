package main

// This file pushes the index of an OCI layout to a registry.

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

func pushCmd(args []string) error {
	fs := flag.NewFlagSet("push", flag.ContinueOnError)
	dir := fs.String("layout", "dist/image", "the OCI layout `make image` wrote")
	ref := fs.String("ref", "", "where to push: REPO[:TAG], e.g. ghcr.io/me/mlflow-operator:v0.1.0 or 127.0.0.1:5000/mlflow-operator:dev")
	defaultTag := fs.String("default-tag", "", "the tag when -ref has none (default: latest)")
	insecure := fs.Bool("insecure", false, "plain HTTP and no TLS check (always for localhost and loopback addresses)")
	digestFile := fs.String("digest-file", "", "file to write the pushed index's digest (sha256:...) into")
	timeout := fs.Duration("timeout", 30*time.Minute, "give up after this long")
	if err := parse(fs, args, "layout", "ref"); err != nil {
		return err
	}
	idx, err := layoutIndex(*dir)
	if err != nil {
		return err
	}
	var opts []name.Option
	if *defaultTag != "" {
		opts = append(opts, name.WithDefaultTag(*defaultTag))
	}
	r, err := name.ParseReference(*ref, opts...)
	if err != nil {
		return err
	}
	if *insecure || loopback(r.Context().RegistryStr()) {
		if r, err = name.ParseReference(*ref, append(opts, name.Insecure)...); err != nil {
			return err
		}
	}
	d, err := idx.Digest()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	// The default keychain: docker's config.json (docker login, az acr
	// login, gcloud auth configure-docker...) and the credential helpers it
	// names; anonymous when it has nothing for the registry.
	ropts := []remote.Option{remote.WithContext(ctx), remote.WithAuthFromKeychain(authn.DefaultKeychain)}
	t := time.Now()
	if err := remote.WriteIndex(r, idx, ropts...); err != nil {
		return fmt.Errorf("push %s: %w", r, err)
	}
	// Read back what the registry now has under the reference.
	desc, err := remote.Head(r, ropts...)
	if err != nil {
		return fmt.Errorf("after the push, %s: %w", r, err)
	}
	if desc.Digest != d {
		return fmt.Errorf("pushed %s but %s is %s", d, r, desc.Digest)
	}
	logf("pushed %s (%s) in %s", r, d, time.Since(t).Round(100*time.Millisecond))
	if *digestFile != "" {
		if err := os.MkdirAll(filepath.Dir(*digestFile), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(*digestFile, []byte(d.String()+"\n"), 0o644); err != nil {
			return err
		}
	}
	fmt.Println(r.Context().Digest(d.String()).String())
	return nil
}

// loopback: localhost or a loopback address, with or without a port: a
// registry on this machine, spoken to over plain HTTP.
func loopback(registry string) bool {
	host := registry
	if h, _, err := net.SplitHostPort(registry); err == nil {
		host = h
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// layoutIndex is the one image index of an OCI layout.
func layoutIndex(dir string) (v1.ImageIndex, error) {
	ii, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		return nil, fmt.Errorf("%s: %w (run make image first)", dir, err)
	}
	im, err := ii.IndexManifest()
	if err != nil {
		return nil, err
	}
	if len(im.Manifests) != 1 || !im.Manifests[0].MediaType.IsIndex() {
		return nil, fmt.Errorf("%s: want one image index, found %d entries", dir, len(im.Manifests))
	}
	return ii.ImageIndex(im.Manifests[0].Digest)
}
