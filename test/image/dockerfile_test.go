package image

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"
)

// There is no Docker engine here: the Dockerfile is read, not run. Its final
// stage must give the config the builder gives (user, entrypoint, working
// folder, environment, labels from its ARGs), and its builder stage must run
// the same program for the files, whose output, run here the way the
// Dockerfile runs it, must be the image's files (names, modes, times,
// content; COPY makes them root's).
func TestDockerfileMatchesBuilder(t *testing.T) {
	src, err := os.ReadFile(filepath.Join(root, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	stages := parseDockerfile(t, string(src))
	if len(stages) != 2 {
		t.Fatalf("%d stages, want a builder and the final one", len(stages))
	}
	builder, final := stages[0], stages[1]
	cf, err := platformImages(t, index(t, built))["amd64"].ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	c := cf.Config

	// The final stage.
	if from := words(t, final.from, nil); len(from) != 1 || from[0] != "scratch" {
		t.Errorf("final stage FROM %q, want scratch", final.from)
	}
	// The build args make image's labels come from.
	args := map[string]string{"VERSION": testVersion, "REVISION": testRevision, "CREATED": testCreated, "SOURCE": testSource, "LICENSES": testLicenses}
	vars := map[string]string{}
	var copies [][]string
	for _, in := range final.instrs {
		switch in.cmd {
		case "ARG":
			for _, w := range words(t, in.args, nil) {
				k, _, _ := strings.Cut(w, "=")
				if v, ok := args[k]; ok {
					vars[k] = v
				} else {
					t.Errorf("final stage: ARG %s is not one make image-docker passes", k)
				}
			}
		case "COPY":
			copies = append(copies, words(t, in.args, nil))
		case "USER":
			if in.args != c.User {
				t.Errorf("USER %s, the builder's %s", in.args, c.User)
			}
		case "WORKDIR":
			if in.args != c.WorkingDir {
				t.Errorf("WORKDIR %s, the builder's %s", in.args, c.WorkingDir)
			}
		case "ENTRYPOINT":
			var ep []string
			if err := json.Unmarshal([]byte(in.args), &ep); err != nil || !reflect.DeepEqual(ep, c.Entrypoint) {
				t.Errorf("ENTRYPOINT %s (%v), the builder's %q (exec form)", in.args, err, c.Entrypoint)
			}
		case "ENV":
			if ws := words(t, in.args, vars); !reflect.DeepEqual(ws, c.Env) {
				t.Errorf("ENV %q, the builder's %q", ws, c.Env)
			}
		case "LABEL":
			labels := map[string]string{}
			for _, w := range words(t, in.args, vars) {
				k, v, _ := strings.Cut(w, "=")
				labels[k] = v
			}
			if !reflect.DeepEqual(labels, c.Labels) {
				t.Errorf("LABEL gives (with the build args)\n%v\nthe builder\n%v", labels, c.Labels)
			}
		default:
			t.Errorf("final stage: %s %s: unexpected (the builder has no such step)", in.cmd, in.args)
		}
	}
	if len(vars) != len(args) {
		t.Errorf("final stage ARGs %v, want %v", vars, args)
	}
	if len(copies) != 1 || !reflect.DeepEqual(copies[0], []string{"--from=builder", "/rootfs/", "/"}) {
		t.Fatalf("final stage COPY %q, want one: --from=builder /rootfs/ /", copies)
	}

	// The builder stage: on the build machine's platform, with every folder
	// of the module ./cmd and ./cmd/request-metrics import, running
	// operator-image rootfs.
	from := words(t, builder.from, nil)
	if len(from) != 4 || from[0] != "--platform=$BUILDPLATFORM" || from[2] != "AS" || from[3] != "builder" {
		t.Errorf("builder FROM %q, want --platform=$BUILDPLATFORM <golang image> AS builder", builder.from)
	}
	copied := map[string]bool{}
	var rootfsArgs []string
	bvars := map[string]string{"TARGETOS": "linux", "TARGETARCH": "amd64", "VERSION": testVersion, "SOURCE_DATE_EPOCH": testEpoch}
	const run = "go run ./hack/operator-image rootfs "
	for _, in := range builder.instrs {
		switch in.cmd {
		case "COPY":
			ws := words(t, in.args, nil)
			for _, w := range ws[:len(ws)-1] {
				copied[strings.TrimSuffix(w, "/")] = true
			}
		case "RUN":
			if i := strings.Index(in.args, run); i >= 0 {
				rootfsArgs = words(t, in.args[i+len(run):], bvars)
			}
		}
	}
	for _, dir := range append(moduleDirs(t), "go.mod", "go.sum", "hack/operator-image") {
		if !copied[dir] {
			t.Errorf("the builder stage does not COPY %s (./cmd or the image program needs it)", dir)
		}
	}
	if rootfsArgs == nil {
		t.Fatalf("the builder stage has no RUN %s...", run)
	}
	flags := map[string]string{}
	for i := 0; i+1 < len(rootfsArgs); i += 2 {
		flags[rootfsArgs[i]] = rootfsArgs[i+1]
	}
	if flags["-out"] != "/rootfs" || flags["-platform"] != "linux/amd64" || flags["-version"] != testVersion || flags["-epoch"] != testEpoch {
		t.Fatalf("RUN %s%q: want -out /rootfs (the COPY's source), -platform ${TARGETOS}/${TARGETARCH}, -version ${VERSION}, -epoch ${SOURCE_DATE_EPOCH}", run, rootfsArgs)
	}

	// Run it as the Dockerfile does, here: another -out, the .deb from our
	// cache and the binary built already (the same flags build it).
	tree := filepath.Join(t.TempDir(), "rootfs")
	var cmdArgs []string
	for k, v := range flags {
		switch k {
		case "-out":
			v = tree
		case "-cache":
			v = filepath.Dir(caDeb)
		}
		cmdArgs = append(cmdArgs, k, v)
	}
	if _, err := command(tool, append(append([]string{"rootfs"}, cmdArgs...), "-binary", bins["amd64"], "-request-metrics-binary", sidecars["amd64"])...); err != nil {
		t.Fatal(err)
	}
	var got []string
	if err := filepath.WalkDir(tree, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == tree {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(tree, p)
		var data []byte
		if d.IsDir() {
			rel += "/"
		} else {
			data = mustRead(t, p)
		}
		got = append(got, describe(filepath.ToSlash(rel), int64(info.Mode().Perm()), info.ModTime(), data))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, e := range entries(t, platformImages(t, index(t, built))["amd64"]) {
		want = append(want, describe(e.name, e.mode, e.mtime, e.data))
	}
	sort.Strings(got)
	sort.Strings(want)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("the Dockerfile's files (name, mode, time, size, SHA-256):\n%s\nthe builder's:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func describe(name string, mode int64, mtime time.Time, data []byte) string {
	return fmt.Sprintf("%s %o %s %d %x", name, mode, mtime.UTC().Format(time.RFC3339), len(data), sha256.Sum256(data))
}
