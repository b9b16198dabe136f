package imagebuild

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestServeInitPassesStopSignalsOn runs the images' process 1 with the
// host's python3 over a shell that stands for the scoring server: a
// SIGTERM sent to process 1 reaches the server and its child (one process
// group), process 1 waits for the server's graceful exit (here 300 ms of
// "finishing requests") and exits with its status.
func TestServeInitPassesStopSignalsOn(t *testing.T) {
	python, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("no python3 on this host (the images run it from their base)")
	}
	dir := t.TempDir()
	server := `trap 'sleep 0.3; echo drained > ` + filepath.Join(dir, "server") + `; exit 7' TERM
sh -c 'trap "echo heard > ` + filepath.Join(dir, "worker") + `; exit 0" TERM; while :; do sleep 0.05; done' &
echo up > ` + filepath.Join(dir, "up") + `
while :; do sleep 0.05; done`
	cmd := exec.Command(python, "-c", serveInit, "sh", "-c", server)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat(filepath.Join(dir, "up")); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the server never started")
		}
		time.Sleep(20 * time.Millisecond)
	}
	start := time.Now()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err = <-done:
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		t.Fatal("process 1 did not exit after SIGTERM")
	}
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 7 {
		t.Errorf("process 1 exited with %v, want the server's status 7", err)
	}
	if waited := time.Since(start); waited < 300*time.Millisecond {
		t.Errorf("process 1 exited %s after SIGTERM, before the server had drained", waited)
	}
	for _, f := range []string{"server", "worker"} {
		data, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil || strings.TrimSpace(string(data)) == "" {
			t.Errorf("the %s did not hear SIGTERM: %v", f, err)
		}
	}
}
