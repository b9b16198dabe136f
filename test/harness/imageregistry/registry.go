// Package imageregistry runs Debian's build of the CNCF distribution registry
// server (docker-registry) on a free loopback port for tests, optionally with
// htpasswd authentication.
package imageregistry

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/mlflow-operator/mlflow-operator/test/harness/procs"
)

// Registry is a running registry server.
type Registry struct {
	// Host is <Options.IP>:<port>.
	Host string
	Dir  string
	proc *procs.Process
}

// Options of a registry.
type Options struct {
	// User and Password, when set, are required for every request (htpasswd).
	User, Password string
	// IP is the address the registry listens on and its Host names;
	// 127.0.0.1 when empty. Pods reach the real node's IP.
	IP string
}

// Start starts a registry. Close stops it and removes its storage.
func Start(o Options) (*Registry, error) {
	bin, err := exec.LookPath("docker-registry")
	if err != nil {
		return nil, fmt.Errorf("docker-registry not found: run `make test` or hack/registry.sh (apt-get install docker-registry)")
	}
	dir, err := os.MkdirTemp("", "registry-")
	if err != nil {
		return nil, err
	}
	port, err := procs.FreePort()
	if err != nil {
		return nil, err
	}
	if o.IP == "" {
		o.IP = "127.0.0.1"
	}
	host := fmt.Sprintf("%s:%d", o.IP, port)
	conf := fmt.Sprintf("version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: %s\n  delete:\n    enabled: true\nhttp:\n  addr: %s\n",
		filepath.Join(dir, "data"), host)
	if o.User != "" {
		hash, err := bcrypt.GenerateFromPassword([]byte(o.Password), bcrypt.MinCost)
		if err != nil {
			return nil, err
		}
		if err := os.WriteFile(filepath.Join(dir, "htpasswd"), []byte(o.User+":"+string(hash)+"\n"), 0o600); err != nil {
			return nil, err
		}
		conf += fmt.Sprintf("auth:\n  htpasswd:\n    realm: test\n    path: %s\n", filepath.Join(dir, "htpasswd"))
	}
	if err := os.WriteFile(filepath.Join(dir, "config.yml"), []byte(conf), 0o600); err != nil {
		return nil, err
	}
	proc, err := procs.Start(exec.Command(bin, "serve", filepath.Join(dir, "config.yml")))
	if err != nil {
		return nil, err
	}
	r := &Registry{Host: host, Dir: dir, proc: proc}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get("http://" + host + "/v2/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusUnauthorized {
				return r, nil
			}
		}
		if proc.Exited() {
			return nil, fmt.Errorf("docker-registry exited: %s", proc.Logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	r.Close()
	return nil, fmt.Errorf("docker-registry did not answer within 30s: %s", proc.Logs.String())
}

// Close stops the registry and removes its storage.
func (r *Registry) Close() {
	r.proc.Stop(10 * time.Second)
	_ = os.RemoveAll(r.Dir)
}

// Logs is what the server printed.
func (r *Registry) Logs() string { return r.proc.Logs.String() }

// BlobCount counts the blobs stored, to tell whether a push uploaded any.
func (r *Registry) BlobCount() int {
	n := 0
	_ = filepath.WalkDir(filepath.Join(r.Dir, "data", "docker", "registry", "v2", "blobs"), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && d.Name() == "data" {
			n++
		}
		return nil
	})
	return n
}

// PID of the registry process (its process group).
func (r *Registry) PID() int { return r.proc.Cmd.Process.Pid }

// Manifests lists the digests of every manifest pushed to repo (each one
// the registry stored, tagged or not), to tell whether a push made a new
// image.
func (r *Registry) Manifests(repo string) []string {
	var out []string
	entries, _ := os.ReadDir(filepath.Join(r.Dir, "data", "docker", "registry", "v2", "repositories",
		filepath.FromSlash(repo), "_manifests", "revisions", "sha256"))
	for _, e := range entries {
		out = append(out, "sha256:"+e.Name())
	}
	return out
}

// UploadingBytes is how many bytes of unfinished blob uploads the registry
// holds for repo: more than zero while a push is sending a layer.
func (r *Registry) UploadingBytes(repo string) int64 {
	var n int64
	_ = filepath.WalkDir(filepath.Join(r.Dir, "data", "docker", "registry", "v2", "repositories",
		filepath.FromSlash(repo), "_uploads"), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && d.Name() == "data" {
			if info, err := d.Info(); err == nil {
				n += info.Size()
			}
		}
		return nil
	})
	return n
}
