package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/mlflow-operator/mlflow-operator/hack/internal/fetch"
	"github.com/mlflow-operator/mlflow-operator/test/harness/procs"
)

// heapProfiler takes the operator's heap profile through its
// --pprof-bind-address handlers (-heap-profile DIR).
type heapProfiler struct {
	dir  string
	addr string
}

// newHeapProfiler picks the address the operator's profiling handlers
// bind to; nil when no folder was asked for.
func newHeapProfiler(dir string) (*heapProfiler, error) {
	if dir == "" {
		return nil, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	port, err := procs.FreePort()
	if err != nil {
		return nil, err
	}
	return &heapProfiler{dir: dir, addr: fmt.Sprintf("127.0.0.1:%d", port)}, nil
}

// arg is the operator flag that turns the handlers on.
func (h *heapProfiler) arg() string { return "--pprof-bind-address=" + h.addr }

// take writes the heap profile of the run with n objects and prints its
// top entries by memory in use.
func (h *heapProfiler) take(n int) error {
	path := filepath.Join(h.dir, fmt.Sprintf("heap-%d.pb.gz", n))
	if err := fetch.ToFile("http://"+h.addr+"/debug/pprof/heap?gc=1", path, time.Minute, 256<<20); err != nil {
		return fmt.Errorf("the operator's heap profile: %w", err)
	}
	fmt.Printf("\nN=%d, heap profile (after a GC, at the end of the idle window): %s\n", n, path)
	out, err := exec.Command("go", "tool", "pprof", "-top", "-sample_index=inuse_space", "-nodecount=20", path).CombinedOutput()
	if err != nil {
		return fmt.Errorf("go tool pprof: %v: %s", err, out)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fmt.Println("  " + line)
	}
	return nil
}
