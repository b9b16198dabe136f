// Command modelimage builds the operator's model image (internal/imagebuild,
// the same code the operator's build pool runs) from a model folder on a
// base image in a registry, pushes it, and writes the pushed image to an OCI
// layout, so that hack/baseimage/verify.sh can serve exactly what a pod
// would run: the base, the model layer, the config the operator writes.
//
//	go run ./hack/baseimage/modelimage -base 127.0.0.1:5000/serving/mlflow:3.17.2 \
//	    -model DIR -repo 127.0.0.1:5000/models/iris -tag v1 -layout OUT
//
// Prints the pushed image (repository@digest). Plain HTTP (-insecure) is for
// loopback registries.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/mlflow-operator/mlflow-operator/internal/imagebuild"
)

func main() {
	base := flag.String("base", "", "the base image reference")
	model := flag.String("model", "", "the model folder")
	repo := flag.String("repo", "", "the repository to push the model image to")
	tag := flag.String("tag", "v1", "the tag")
	out := flag.String("layout", "", "write the pushed image to this OCI layout folder (must not exist)")
	insecure := flag.Bool("insecure", true, "plain HTTP")
	flag.Parse()
	if *base == "" || *model == "" || *repo == "" || *out == "" {
		flag.Usage()
		os.Exit(2)
	}
	if err := run(*base, *model, *repo, *tag, *out, *insecure); err != nil {
		fmt.Fprintln(os.Stderr, "modelimage:", err)
		os.Exit(1)
	}
}

func run(base, model, repo, tag, out string, insecure bool) error {
	ctx := context.Background()
	b := &imagebuild.Builder{}
	t := time.Now()
	res, err := b.Build(ctx, imagebuild.Request{
		ModelDir:     model,
		Model:        imagebuild.Model{Name: "baseimage-verify", Version: "1", Created: time.Unix(1767225600, 0).UTC()},
		BaseImage:    base,
		Repository:   repo,
		Tag:          tag,
		Port:         8080,
		UID:          1000,
		GID:          1000,
		Insecure:     insecure,
		PullKeychain: authn.DefaultKeychain,
		PushKeychain: authn.DefaultKeychain,
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "modelimage: built and pushed %s on %s in %s\n", res.Image, res.BaseDigest, time.Since(t).Round(time.Millisecond))
	var opts []name.Option
	if insecure {
		opts = append(opts, name.Insecure)
	}
	ref, err := name.ParseReference(res.Image, opts...)
	if err != nil {
		return err
	}
	img, err := remote.Image(ref, remote.WithAuthFromKeychain(authn.DefaultKeychain))
	if err != nil {
		return err
	}
	p, err := layout.Write(out, empty.Index)
	if err != nil {
		return err
	}
	if err := p.AppendImage(img); err != nil {
		return err
	}
	fmt.Println(res.Image)
	return nil
}
