// Command depcheck runs the operator's dependency check (internal/pydeps,
// the same code as the DependenciesSatisfied condition) on a base image kept
// as an OCI layout and a model folder: what the base image holds (dist-info
// METADATA under site-packages, the lib/pythonX.Y folder, PYTHON_VERSION,
// the platform) against the model's requirements.txt and python_env.yaml.
//
//	go run ./hack/baseimage/depcheck -layout bin/baseimage/<key>/oci -model DIR
//
// Prints what the image holds and the verdict; exits 1 when the model is
// not satisfied.
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/google/go-containerregistry/pkg/v1/layout"

	"github.com/mlflow-operator/mlflow-operator/internal/pydeps"
)

func main() {
	dir := flag.String("layout", "", "the base image's OCI layout (one image)")
	model := flag.String("model", "", "a model folder (MLmodel, requirements.txt, python_env.yaml)")
	flag.Parse()
	if *dir == "" || *model == "" {
		flag.Usage()
		os.Exit(2)
	}
	if err := run(*dir, *model); err != nil {
		fmt.Fprintln(os.Stderr, "depcheck:", err)
		os.Exit(1)
	}
}

func run(dir, model string) error {
	idx, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		return err
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return err
	}
	if len(im.Manifests) != 1 {
		return fmt.Errorf("%s: want one image, found %d", dir, len(im.Manifests))
	}
	img, err := idx.Image(im.Manifests[0].Digest)
	if err != nil {
		return err
	}
	in, err := pydeps.InspectImage(img)
	if err != nil {
		return err
	}
	env, err := pydeps.ReadModelEnvironment(model)
	if err != nil {
		return err
	}
	r := pydeps.Check(env, in)
	fmt.Printf("image: python %s (PYTHON_VERSION %s), %s/%s, %d distributions (mlflow %s, scikit-learn %s)\n",
		in.Python, in.PythonFull, in.OS, in.Architecture, len(in.Packages), in.Packages["mlflow"], in.Packages["scikit-learn"])
	fmt.Printf("model: python %s, %d requirements\n", env.Python, len(env.Requirements))
	fmt.Printf("check: %s\n", r.Summary())
	if !r.Satisfied() {
		return fmt.Errorf("not satisfied")
	}
	return nil
}
