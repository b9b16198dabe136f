package imagebuild

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
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

// TestServeInitStartsTheScoringAppDirectly: given DefaultCommand's serve
// command and an MLflow whose scoring app reads the model's path from
// __pyfunc_model_path__, process 1 starts uvicorn with that app itself
// (one Python fewer per pod); with an MLflow that lacks it, it runs the
// command line as given. A fake mlflow package, uvicorn module and mlflow
// executable, on PYTHONPATH and PATH, record how they were started.
func TestServeInitStartsTheScoringAppDirectly(t *testing.T) {
	python, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("no python3 on this host (the images run it from their base)")
	}
	write := func(path, content string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	run := func(t *testing.T, withApp bool) string {
		dir := t.TempDir()
		out := filepath.Join(dir, "started")
		lib := filepath.Join(dir, "lib")
		write(filepath.Join(lib, "mlflow", "__init__.py"), "")
		write(filepath.Join(lib, "mlflow", "pyfunc", "__init__.py"), "")
		write(filepath.Join(lib, "mlflow", "pyfunc", "scoring_server", "__init__.py"), `_SERVER_MODEL_PATH = "__pyfunc_model_path__"`+"\n")
		if withApp {
			write(filepath.Join(lib, "mlflow", "pyfunc", "scoring_server", "app.py"),
				"import os\nfrom mlflow.pyfunc import scoring_server\nmodel = os.environ[scoring_server._SERVER_MODEL_PATH]\n")
		}
		write(filepath.Join(lib, "uvicorn", "__init__.py"), "")
		write(filepath.Join(lib, "uvicorn", "__main__.py"), "import os, sys\nwith open("+strconv.Quote(out)+", 'w') as f:\n"+
			"    f.write('uvicorn ' + ' '.join(sys.argv[1:]) + ' model=' + os.environ.get('__pyfunc_model_path__', ''))\n")
		write(filepath.Join(dir, "bin", "mlflow"), "#!/bin/sh\necho \"cli $*\" > "+out+"\n")
		cmd := exec.Command(python, append([]string{"-c", serveInit}, DefaultCommand(8080)[3:]...)...)
		cmd.Env = append(os.Environ(), "PYTHONPATH="+lib, "PATH="+filepath.Join(dir, "bin")+":"+os.Getenv("PATH"))
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("process 1: %v\n%s", err, b)
		}
		data, err := os.ReadFile(out)
		if err != nil {
			t.Fatalf("nothing was started: %v", err)
		}
		return string(data)
	}
	t.Run("MLflow with the scoring app: uvicorn directly", func(t *testing.T) {
		want := "uvicorn --host 0.0.0.0 --port 8080 mlflow.pyfunc.scoring_server.app:app model=file://" + ModelPath
		if got := run(t, true); got != want {
			t.Errorf("started %q, want %q", got, want)
		}
	})
	t.Run("MLflow without it: the command line", func(t *testing.T) {
		want := "cli models serve -m " + ModelPath + " -h 0.0.0.0 -p 8080 --env-manager local"
		if got := strings.TrimSpace(run(t, false)); got != want {
			t.Errorf("started %q, want %q", got, want)
		}
	})
}
