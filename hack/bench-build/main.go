// Command bench-build measures the operator's image build against the
// pipeline a user would script without it, on real parts: models of
// incompressible files served by a real MLflow server, pushed to Debian's
// registry server on loopback. It prints wall time and peak RSS of each.
//
//	go run ./hack/bench-build [-sizes 10,100,1024] [-crane bin/tools/crane]
//
// The operator's side runs in a child process (this program with -child), so
// its peak RSS is its own: download through the MLflow client, then build and
// push with internal/imagebuild (file-backed layer, and streaming layer). The
// scripted side is: `mlflow artifacts download`, `tar`, `crane append`, with
// crane built from the same go-containerregistry version.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/mlflow-operator/mlflow-operator/internal/imagebuild"
	"github.com/mlflow-operator/mlflow-operator/internal/mlflow"
	"github.com/mlflow-operator/mlflow-operator/test/harness/imageregistry"
	"github.com/mlflow-operator/mlflow-operator/test/harness/mlflowserver"
)

type childArgs struct {
	Tracking, Model, Version, Base, Repo, Tag, TempDir string
	Streaming                                          bool
}

func main() {
	child := flag.String("child", "", "internal: run one operator build described by this JSON")
	sizes := flag.String("sizes", "10,100,1024", "model sizes in MiB")
	crane := flag.String("crane", "bin/tools/crane-v0.22.1/crane", "crane binary (built from the same go-containerregistry version)")
	flag.Parse()
	if *child != "" {
		if err := runChild(*child); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		return
	}
	if err := run(*sizes, *crane); err != nil {
		fmt.Fprintln(os.Stderr, "bench-build:", err)
		os.Exit(1)
	}
}

// runChild is the operator's build: download, then build and push.
func runChild(spec string) error {
	var a childArgs
	if err := json.Unmarshal([]byte(spec), &a); err != nil {
		return err
	}
	ctx := context.Background()
	c, err := mlflow.New(a.Tracking)
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp(a.TempDir, "model-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	m, err := c.DownloadVersion(ctx, a.Model, a.Version, dir)
	if err != nil {
		return err
	}
	b := &imagebuild.Builder{TempDir: a.TempDir, LayerFile: !a.Streaming}
	res, err := b.Build(ctx, imagebuild.Request{
		ModelDir: dir, BaseImage: a.Base, Repository: a.Repo, Tag: a.Tag, Port: 8080, UID: 1000, GID: 1000, Insecure: true,
		Model: imagebuild.Model{Name: a.Model, Version: a.Version, Digest: m.Digest(), Created: time.Unix(1_790_000_000, 0)},
	})
	if err != nil {
		return err
	}
	fmt.Println(res.Image)
	return nil
}

type measure struct {
	wall time.Duration
	rss  int64 // KiB
}

// timed runs cmd and reports its wall time and the peak RSS of it and its
// waited-for descendants.
func timed(cmd *exec.Cmd) (measure, error) {
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err := cmd.Run()
	m := measure{wall: time.Since(start)}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		m.rss = ru.Maxrss
	}
	if err != nil {
		return m, fmt.Errorf("%s: %w\n%s", strings.Join(cmd.Args, " "), err, out.String())
	}
	return m, nil
}

func run(sizeList, crane string) error {
	if _, err := os.Stat(crane); err != nil {
		return fmt.Errorf("crane not found at %s (make bench-build builds it)", crane)
	}
	py, err := mlflowserver.PythonEnv()
	if err != nil {
		return err
	}
	fmt.Println("bench-build: starting MLflow and the registry")
	server, err := mlflowserver.Start(mlflowserver.Options{})
	if err != nil {
		return err
	}
	defer server.Close()
	reg, err := imageregistry.Start(imageregistry.Options{})
	if err != nil {
		return err
	}
	defer reg.Close()
	work, err := os.MkdirTemp("", "bench-build-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)

	// A base image of 4 layers, 32 MiB in all.
	baseImg, err := random.Image(8<<20, 4)
	if err != nil {
		return err
	}
	base := reg.Host + "/serving/base:1"
	baseRef, _ := name.ParseReference(base, name.Insecure)
	if err := remote.Write(baseRef, baseImg); err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}

	type row struct {
		size                 int
		op, stream, scripted measure
	}
	var rows []row
	for _, s := range strings.Split(sizeList, ",") {
		mib, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil {
			return err
		}
		model := fmt.Sprintf("sized-%d", mib)
		fmt.Printf("bench-build: logging a %d MiB model to MLflow\n", mib)
		res, err := server.Fixture(context.Background(), mlflowserver.Op{"op": "register", "model": model, "kind": "sized", "size_bytes": mib << 20, "seed": mib})
		if err != nil {
			return err
		}
		version := res[0].Version
		r := row{size: mib}
		childCmd := func(tag string, streaming bool) *exec.Cmd {
			spec, _ := json.Marshal(childArgs{Tracking: server.URL, Model: model, Version: version, Base: base,
				Repo: reg.Host + "/models/" + model, Tag: tag, TempDir: work, Streaming: streaming})
			return exec.Command(self, "-child", string(spec))
		}
		fmt.Printf("bench-build: %d MiB: operator build (layer file)\n", mib)
		if r.op, err = timed(childCmd("operator-file", false)); err != nil {
			return err
		}
		fmt.Printf("bench-build: %d MiB: operator build (streaming layer)\n", mib)
		if r.stream, err = timed(childCmd("operator-stream", true)); err != nil {
			return err
		}
		fmt.Printf("bench-build: %d MiB: scripted pipeline (mlflow artifacts download, tar, crane append)\n", mib)
		dl := filepath.Join(work, "scripted-"+model)
		script := fmt.Sprintf(`set -e
%[1]s/bin/mlflow artifacts download --artifact-uri "models:/%[2]s/%[3]s" --dst-path %[4]s/model >/dev/null
tar -C %[4]s --owner=1000 --group=1000 --transform 's,^model,opt/ml/model,' -cf %[4]s/layer.tar model
%[5]s append --insecure -b %[6]s -f %[4]s/layer.tar -t %[7]s/models/%[2]s:scripted >/dev/null
rm -rf %[4]s`, py, model, version, dl, crane, base, reg.Host)
		cmd := exec.Command("bash", "-c", script)
		cmd.Env = append(os.Environ(), "MLFLOW_TRACKING_URI="+server.URL)
		if r.scripted, err = timed(cmd); err != nil {
			return err
		}
		rows = append(rows, r)
	}

	fmt.Println()
	fmt.Println("| model size | operator, streaming layer (default) | operator, layer file (multi-platform bases) | scripted: mlflow download + tar + crane append | operator / scripted time |")
	fmt.Println("| --- | --- | --- | --- | --- |")
	for _, r := range rows {
		fmt.Printf("| %d MiB | %.2f s, %.0f MiB RSS | %.2f s, %.0f MiB RSS | %.2f s, %.0f MiB RSS | %.2f |\n", r.size,
			r.stream.wall.Seconds(), float64(r.stream.rss)/1024, r.op.wall.Seconds(), float64(r.op.rss)/1024,
			r.scripted.wall.Seconds(), float64(r.scripted.rss)/1024, r.stream.wall.Seconds()/r.scripted.wall.Seconds())
	}
	return nil
}
