// Package podnet stands in for the pod network of the local cluster. kwok
// gives pods IPs in 127.1.0.0/16 but runs no containers; podnet listens on
// 0.0.0.0:<serving port>, tells from each connection's local address which
// pod it was meant for, pulls that pod's image from the registry, extracts
// /opt/ml/model, and proxies the connection to a real `mlflow models serve`
// of exactly that model (one per image, started on first use). So a smoke
// test or a prediction sent to a pod IP is answered by the model the built
// image carries.
package podnet

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/mlflow-operator/mlflow-operator/test/harness/procs"
)

// PodNet is a running stand-in.
type PodNet struct {
	// Port it listens on, at every address.
	Port int
	// Client reads pods.
	Client client.Client
	// Python is the environment whose mlflow serves the models.
	Python string
	// Dir holds extracted models.
	Dir string

	listener net.Listener
	mu       sync.Mutex
	servers  map[string]*modelServer // by image reference
}

type modelServer struct {
	ready chan struct{}
	addr  string
	err   error
	proc  *procs.Process
}

// Start listens on 0.0.0.0:port.
func Start(c client.Client, port int, python, dir string) (*PodNet, error) {
	l, err := net.Listen("tcp", "0.0.0.0:"+strconv.Itoa(port))
	if err != nil {
		return nil, err
	}
	p := &PodNet{Port: port, Client: c, Python: python, Dir: dir, listener: l, servers: map[string]*modelServer{}}
	go p.accept()
	return p, nil
}

func (p *PodNet) accept() {
	for {
		conn, err := p.listener.Accept()
		if err != nil {
			return
		}
		go p.handle(conn)
	}
}

func (p *PodNet) handle(conn net.Conn) {
	defer conn.Close()
	local := conn.LocalAddr().(*net.TCPAddr).IP.String()
	image, err := p.imageOf(local)
	if err != nil {
		writeError(conn, http.StatusBadGateway, err)
		return
	}
	addr, err := p.server(image)
	if err != nil {
		writeError(conn, http.StatusBadGateway, err)
		return
	}
	backend, err := net.Dial("tcp", addr)
	if err != nil {
		writeError(conn, http.StatusBadGateway, err)
		return
	}
	defer backend.Close()
	// The client's bytes go to the model server until the client stops
	// sending; the answer comes back until the model server closes (its
	// keep-alive timeout, or after the answer). When the model server
	// closes, the client's connection closes too, as a pod's would: a
	// client must never keep a connection whose far end is gone, or its
	// next request (say, to a new pod that got this IP) waits forever.
	go func() {
		_, _ = io.Copy(backend, conn)
		_ = backend.(*net.TCPConn).CloseWrite()
	}()
	_, _ = io.Copy(conn, backend)
}

func writeError(conn net.Conn, code int, err error) {
	msg := err.Error()
	fmt.Fprintf(conn, "HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s",
		code, http.StatusText(code), len(msg), msg)
}

// imageOf finds the running pod with IP ip and its model image. A pod that
// is terminating still answers, as it would in its grace period, unless a
// live pod has its IP already.
func (p *PodNet) imageOf(ip string) (string, error) {
	pods := &corev1.PodList{}
	if err := p.Client.List(context.Background(), pods); err != nil {
		return "", err
	}
	terminating := ""
	for _, pod := range pods.Items {
		if pod.Status.PodIP != ip || pod.Status.Phase != corev1.PodRunning {
			continue
		}
		for _, c := range pod.Spec.Containers {
			if c.Name != "model" {
				continue
			}
			if pod.DeletionTimestamp.IsZero() {
				return c.Image, nil
			}
			terminating = c.Image
		}
	}
	if terminating != "" {
		return terminating, nil
	}
	return "", fmt.Errorf("no running model pod has IP %s", ip)
}

var pingClient = &http.Client{Timeout: 2 * time.Second}

// server returns the address of the scoring server of image, starting it.
func (p *PodNet) server(image string) (string, error) {
	p.mu.Lock()
	s, ok := p.servers[image]
	if !ok {
		s = &modelServer{ready: make(chan struct{})}
		p.servers[image] = s
		go p.startServer(image, s)
	}
	p.mu.Unlock()
	select {
	case <-s.ready:
		return s.addr, s.err
	case <-time.After(3 * time.Minute):
		return "", errors.New("the model server did not start within 3 minutes")
	}
}

func (p *PodNet) startServer(image string, s *modelServer) {
	defer close(s.ready)
	dir := filepath.Join(p.Dir, strings.NewReplacer("/", "_", ":", "_", "@", "_").Replace(image))
	if err := extractModel(image, dir); err != nil {
		s.err = err
		return
	}
	port, err := procs.FreePort()
	if err != nil {
		s.err = err
		return
	}
	cmd := exec.Command(filepath.Join(p.Python, "bin", "mlflow"), "models", "serve", "-m", filepath.Join(dir, "opt", "ml", "model"),
		"-h", "127.0.0.1", "-p", strconv.Itoa(port), "--env-manager", "local")
	// mlflow starts uvicorn by name: the environment's bin must be on PATH.
	cmd.Env = append(os.Environ(), "MLFLOW_DISABLE_ENV_CREATION=true",
		"PATH="+filepath.Join(p.Python, "bin")+string(os.PathListSeparator)+os.Getenv("PATH"))
	proc, err := procs.Start(cmd)
	if err != nil {
		s.err = err
		return
	}
	s.proc = proc
	s.addr = "127.0.0.1:" + strconv.Itoa(port)
	deadline := time.Now().Add(150 * time.Second)
	for time.Now().Before(deadline) {
		if proc.Exited() {
			s.err = fmt.Errorf("mlflow models serve exited: %s", proc.Logs.String())
			return
		}
		resp, err := pingClient.Get("http://" + s.addr + "/ping")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	s.err = fmt.Errorf("mlflow models serve did not answer /ping: %s", proc.Logs.String())
}

// extractModel pulls image and writes its files under dir (the whole
// flattened filesystem is small here: the model layer on a test base).
func extractModel(image, dir string) error {
	ref, err := name.ParseReference(image, name.Insecure)
	if err != nil {
		return err
	}
	img, err := remote.Image(ref)
	if err != nil {
		return fmt.Errorf("pull %s: %w", image, err)
	}
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if !strings.HasPrefix(h.Name, "opt/ml/model/") {
			continue
		}
		target := filepath.Join(dir, filepath.FromSlash(h.Name))
		if !strings.HasPrefix(target, filepath.Clean(dir)+string(os.PathSeparator)) {
			return fmt.Errorf("unsafe entry %s", h.Name)
		}
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(target, 0o755); err != nil {
				return err
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
				return err
			}
			f, err := os.OpenFile(target, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
			if err != nil {
				return err
			}
			if _, err := io.Copy(f, tr); err != nil {
				f.Close()
				return err
			}
			f.Close()
		case tar.TypeSymlink:
			if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
				return err
			}
			if err := os.Symlink(h.Linkname, target); err != nil {
				return err
			}
		}
	}
}

// Close stops listening and every model server.
func (p *PodNet) Close() {
	p.listener.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, s := range p.servers {
		select {
		case <-s.ready:
		case <-time.After(5 * time.Second):
		}
		if s.proc != nil {
			s.proc.Stop(10 * time.Second)
		}
	}
}

// PIDs of the model servers started so far (their process groups).
func (p *PodNet) PIDs() []int {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []int
	for _, s := range p.servers {
		if s.proc != nil {
			out = append(out, s.proc.Cmd.Process.Pid)
		}
	}
	return out
}
