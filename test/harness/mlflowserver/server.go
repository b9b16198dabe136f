// Package mlflowserver runs a real MLflow tracking server for tests, from the
// Python environment hack/python-env.sh creates, with a sqlite store and
// served artifacts in a temporary folder, and drives it with fixture.py
// (real scikit-learn models, versions, aliases, stages, webhooks).
package mlflowserver

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mlflow-operator/mlflow-operator/test/harness/procs"
)

// PythonEnv is the folder of the Python environment: $MLFLOW_PYTHON_ENV
// (which `make test` sets), else what hack/python-env.sh names.
func PythonEnv() (string, error) {
	if dir := os.Getenv("MLFLOW_PYTHON_ENV"); dir != "" {
		return dir, nil
	}
	out, err := exec.Command(filepath.Join(procs.RepoRoot(), "hack", "python-env.sh"), "--print-dir").Output()
	if err != nil {
		return "", fmt.Errorf("hack/python-env.sh --print-dir: %w", err)
	}
	return strings.TrimSpace(string(out)), nil
}

// Options of a server.
type Options struct {
	// BasicAuth starts the server with MLflow's basic-auth app; the admin is
	// AdminUser with AdminPassword.
	BasicAuth bool
	// Webhooks allows webhooks to loopback http URLs and delivers them
	// without caching the webhook list.
	Webhooks bool
	// IP is the address the server listens on and its URL names;
	// 127.0.0.1 when empty. Pods reach the real node's IP.
	IP string
}

// Admin credentials of a BasicAuth server.
const (
	AdminUser     = "admin"
	AdminPassword = "operator-test-admin-pw-1"
)

// Server is a running `mlflow server`.
type Server struct {
	// URL is the tracking URI, http://127.0.0.1:<port>.
	URL  string
	Dir  string
	Port int
	opts Options
	py   string

	mu   sync.Mutex
	proc *procs.Process
	logs string // of the last run, once stopped
}

// Start starts a server on a free loopback port. Call Close to stop it and
// remove its files.
func Start(opts Options) (*Server, error) {
	env, err := PythonEnv()
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(filepath.Join(env, "bin", "mlflow")); err != nil {
		return nil, fmt.Errorf("no MLflow in %s: run `make test`, or hack/python-env.sh", env)
	}
	dir, err := os.MkdirTemp("", "mlflow-server-")
	if err != nil {
		return nil, err
	}
	port, err := procs.FreePort()
	if err != nil {
		return nil, err
	}
	if opts.IP == "" {
		opts.IP = "127.0.0.1"
	}
	s := &Server{URL: fmt.Sprintf("http://%s:%d", opts.IP, port), Dir: dir, Port: port, opts: opts, py: env}
	if err := s.Restart(); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// Restart starts the server again after Stop, on the same port with the same
// data.
func (s *Server) Restart() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc != nil {
		return errors.New("the server is running")
	}
	args := []string{"server", "--host", s.opts.IP, "--port", strconv.Itoa(s.Port),
		"--backend-store-uri", "sqlite:///" + filepath.Join(s.Dir, "mlflow.db"),
		"--artifacts-destination", filepath.Join(s.Dir, "artifacts"),
		"--workers", "1"}
	env := append(os.Environ(),
		"MLFLOW_SERVER_ALLOWED_HOSTS="+s.opts.IP+":"+strconv.Itoa(s.Port)+",localhost:"+strconv.Itoa(s.Port)+","+s.opts.IP+",localhost",
		"PYTHONUNBUFFERED=1",
	)
	if s.opts.BasicAuth {
		ini := filepath.Join(s.Dir, "basic_auth.ini")
		conf := fmt.Sprintf("[mlflow]\ndefault_permission = READ\ndatabase_uri = sqlite:///%s\nadmin_username = %s\nadmin_password = %s\nauthorization_function = mlflow.server.auth:authenticate_request_basic_auth\n",
			filepath.Join(s.Dir, "basic_auth.db"), AdminUser, AdminPassword)
		if err := os.WriteFile(ini, []byte(conf), 0o600); err != nil {
			return err
		}
		args = append(args, "--app-name", "basic-auth")
		env = append(env, "MLFLOW_AUTH_CONFIG_PATH="+ini, "MLFLOW_FLASK_SERVER_SECRET_KEY=operator-tests-csrf-key")
	}
	if s.opts.Webhooks {
		key, err := fernetKey(s.Dir)
		if err != nil {
			return err
		}
		env = append(env,
			"MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS=true",
			"MLFLOW_WEBHOOK_ALLOWED_SCHEMES=http,https",
			"MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY="+key,
			"MLFLOW_WEBHOOK_CACHE_TTL=0",
			"MLFLOW_WEBHOOK_REQUEST_MAX_RETRIES=1",
			"MLFLOW_WEBHOOK_REQUEST_TIMEOUT=5",
		)
	}
	cmd := exec.Command(filepath.Join(s.py, "bin", "mlflow"), args...)
	cmd.Env = env
	cmd.Dir = s.Dir
	proc, err := procs.Start(cmd)
	if err != nil {
		return err
	}
	s.proc = proc

	deadline := time.Now().Add(120 * time.Second)
	for time.Now().Before(deadline) {
		if proc.Exited() {
			s.proc = nil
			return fmt.Errorf("mlflow server exited at start:\n%s", proc.Logs.String())
		}
		resp, err := http.Get(s.URL + "/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	s.stopLocked()
	return fmt.Errorf("mlflow server did not answer /health within 120s:\n%s", proc.Logs.String())
}

// fernetKey is the key MLflow encrypts webhook secrets with; kept in dir so
// a restarted server can read what it stored.
func fernetKey(dir string) (string, error) {
	path := filepath.Join(dir, "fernet.key")
	if b, err := os.ReadFile(path); err == nil {
		return string(b), nil
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return "", err
	}
	key := base64.URLEncoding.EncodeToString(raw)
	return key, os.WriteFile(path, []byte(key), 0o600)
}

// Stop stops the server (the whole process group: gunicorn or uvicorn
// workers too) and waits for it.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stopLocked()
}

func (s *Server) stopLocked() {
	if s.proc == nil {
		return
	}
	s.logs = s.proc.Logs.String()
	s.proc.Stop(15 * time.Second)
	s.proc = nil
}

// Close stops the server and removes its files.
func (s *Server) Close() {
	s.Stop()
	_ = os.RemoveAll(s.Dir)
}

// Logs is what the server printed since its last start (or, stopped, in
// its last run).
func (s *Server) Logs() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc == nil {
		return s.logs
	}
	return s.proc.Logs.String()
}

// IrisRows is a scoring request the fixture's models answer: the first
// three rows of the iris data set (their input example), in MLflow's
// dataframe_split format.
const IrisRows = `{"dataframe_split": {"columns": ["sepal length (cm)", "sepal width (cm)", "petal length (cm)", "petal width (cm)"], "data": [[5.1, 3.5, 1.4, 0.2], [4.9, 3.0, 1.4, 0.2], [4.7, 3.2, 1.3, 0.2]]}}`

// Op is one fixture operation (see fixture.py).
type Op map[string]any

// Result is one fixture result.
type Result struct {
	Version   string `json:"version"`
	RunID     string `json:"run_id"`
	Source    string `json:"source"`
	ModelID   string `json:"model_id"`
	WebhookID string `json:"webhook_id"`
	// Predictions of an iris model for its input example (the first three
	// rows of the iris data set).
	Predictions []int `json:"predictions"`
	// Done is when the operation finished (unix seconds).
	Done float64 `json:"t"`
}

// DoneTime is Done as a time.
func (r Result) DoneTime() time.Time {
	return time.Unix(0, int64(r.Done*1e9))
}

// Fixture runs operations with the MLflow Python client, as the admin on a
// basic-auth server.
func (s *Server) Fixture(ctx context.Context, ops ...Op) ([]Result, error) {
	in, err := json.Marshal(ops)
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, filepath.Join(s.py, "bin", "python"), filepath.Join(procs.RepoRoot(), "test", "harness", "mlflowserver", "fixture.py"))
	cmd.Env = append(os.Environ(), "MLFLOW_TRACKING_URI="+s.URL, "PYTHONUNBUFFERED=1")
	if s.opts.BasicAuth {
		cmd.Env = append(cmd.Env, "MLFLOW_TRACKING_USERNAME="+AdminUser, "MLFLOW_TRACKING_PASSWORD="+AdminPassword)
	}
	cmd.Stdin = bytes.NewReader(in)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("fixture.py: %w\n%s", err, lastLines(stderr.String(), 30))
	}
	var out []Result
	if err := json.Unmarshal(stdout.Bytes(), &out); err != nil {
		return nil, fmt.Errorf("fixture.py printed %q: %w", stdout.String(), err)
	}
	return out, nil
}

// ArtifactsDir is where the server stores artifacts.
func (s *Server) ArtifactsDir() string { return filepath.Join(s.Dir, "artifacts") }

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// PID of the running server process (its process group), 0 when stopped.
func (s *Server) PID() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc == nil {
		return 0
	}
	return s.proc.Cmd.Process.Pid
}
