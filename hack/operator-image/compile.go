package main

// This file builds the image's programs, /manager and /request-metrics:
// static Linux binaries, the same bytes for the same sources and Go version
// wherever they are built.

import (
	"debug/buildinfo"
	"debug/elf"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// ldflags: no symbol table and no DWARF (-s -w: about a third smaller; panics
// still print function names and lines), an empty Go build ID (it hashes
// the inputs' paths and actions, not only the output). -X main.version
// stamps the version when cmd/main.go declares `var version string`; the Go
// linker ignores -X for a variable that does not exist, so the flag is
// harmless until then.
func ldflags(version string) string {
	f := "-s -w -buildid="
	if version != "" {
		f += " -X main.version=" + version
	}
	return f
}

// buildEnv is the environment of go build: the caller's (GOPATH, GOCACHE,
// GOPROXY, GOTOOLCHAIN...) with everything that changes the output fixed.
func buildEnv(arch string) []string {
	fixed := map[string]string{
		"CGO_ENABLED":  "0",
		"GOOS":         "linux",
		"GOARCH":       arch,
		"GOAMD64":      "v1",   // the default; an inherited v3 would change the code
		"GOARM64":      "v8.0", // the default
		"GOFLAGS":      "-mod=readonly",
		"GOWORK":       "off",
		"GOEXPERIMENT": "",
		"GOFIPS140":    "off",
	}
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if _, ok := fixed[k]; !ok {
			env = append(env, kv)
		}
	}
	for _, k := range []string{"CGO_ENABLED", "GOOS", "GOARCH", "GOAMD64", "GOARM64", "GOFLAGS", "GOWORK", "GOEXPERIMENT", "GOFIPS140"} {
		env = append(env, k+"="+fixed[k])
	}
	return env
}

// buildArgs are go build's arguments, also written into the image's history.
func buildArgs(version, out, pkg string) []string {
	return []string{"build", "-trimpath", "-buildvcs=false", "-ldflags", ldflags(version), "-o", out, pkg}
}

// compile builds pkg of the module in dir for linux/arch into out and checks
// that the result is static.
func compile(dir, pkg, arch, version, out string) error {
	t := time.Now()
	cmd := exec.Command("go", buildArgs(version, out, pkg)...)
	cmd.Dir = dir
	cmd.Env = buildEnv(arch)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build for linux/%s: %w", arch, err)
	}
	if err := checkStatic(out, arch); err != nil {
		return err
	}
	info, err := os.Stat(out)
	if err != nil {
		return err
	}
	logf("built %s for linux/%s (%s) in %s", pkg, arch, mib(info.Size()), time.Since(t).Round(100*time.Millisecond))
	return nil
}

var machines = map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}

// checkStatic fails unless p is a Linux ELF executable for arch with no
// program interpreter and no shared library: it must run on an image with
// nothing but itself.
func checkStatic(p, arch string) error {
	f, err := elf.Open(p)
	if err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	defer f.Close()
	if f.Machine != machines[arch] {
		return fmt.Errorf("%s: an ELF for %s, not for %s", p, f.Machine, arch)
	}
	for _, prog := range f.Progs {
		if prog.Type == elf.PT_INTERP || prog.Type == elf.PT_DYNAMIC {
			return fmt.Errorf("%s: dynamically linked (%s); build with CGO_ENABLED=0", p, prog.Type)
		}
	}
	libs, err := f.ImportedLibraries()
	if err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	if len(libs) > 0 {
		return fmt.Errorf("%s: needs shared libraries %v", p, libs)
	}
	return nil
}

// goVersion is the Go version that built the binary p.
func goVersion(p string) (string, error) {
	bi, err := buildinfo.ReadFile(p)
	if err != nil {
		return "", fmt.Errorf("%s: %w", p, err)
	}
	return bi.GoVersion, nil
}

// program is one binary of the image: its file name (at the image's root)
// and its main package.
type program struct{ name, pkg string }

// programs are the image's binaries: the operator, with its main package
// mainPkg, and the request-metrics sidecar of the model pods
// (cmd/request-metrics), which runs from the same image.
func programs(mainPkg string) []program {
	return []program{{"manager", mainPkg}, {"request-metrics", "./cmd/request-metrics"}}
}

// binaries returns, for each arch, program name -> path: the given ones,
// the others built into dir as NAME-linux-ARCH.
func binaries(archs []string, given map[string]map[string]string, moduleDir string, progs []program, version, dir string) (map[string]map[string]string, error) {
	out := map[string]map[string]string{}
	for _, arch := range archs {
		out[arch] = map[string]string{}
		for _, prog := range progs {
			if p, ok := given[arch][prog.name]; ok {
				if err := checkStatic(p, arch); err != nil {
					return nil, err
				}
				out[arch][prog.name] = p
				continue
			}
			p, err := filepath.Abs(filepath.Join(dir, prog.name+"-linux-"+arch))
			if err != nil {
				return nil, err
			}
			if err := compile(moduleDir, prog.pkg, arch, version, p); err != nil {
				return nil, err
			}
			out[arch][prog.name] = p
		}
	}
	return out, nil
}

func compileCmd(args []string) error {
	fs := flag.NewFlagSet("compile", flag.ContinueOnError)
	out := fs.String("out", "", "folder for the binaries (manager-linux-ARCH, request-metrics-linux-ARCH)")
	plats := fs.String("platforms", "linux/amd64,linux/arm64", "platforms to build for")
	moduleDir := fs.String("C", ".", "the operator's module folder")
	pkg := fs.String("pkg", "./cmd", "the operator's main package")
	version := fs.String("version", "", "-X main.version")
	if err := parse(fs, args, "out"); err != nil {
		return err
	}
	archs, err := platforms(*plats)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return err
	}
	progs := programs(*pkg)
	bins, err := binaries(archs, nil, *moduleDir, progs, *version, *out)
	if err != nil {
		return err
	}
	for _, arch := range archs {
		for _, prog := range progs {
			fmt.Println(bins[arch][prog.name])
		}
	}
	return nil
}
