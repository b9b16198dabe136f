// Package procs holds what the test harnesses share to run servers as child
// processes: a goroutine-safe output buffer, starting and stopping a process
// with its whole process group, a free port to give it, and the repository's
// folder.
package procs

import (
	"bytes"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/mlflow-operator/mlflow-operator/test/harness/realnode"
)

// Buffer is a bytes.Buffer safe for concurrent writes and reads.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *Buffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *Buffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Process is a started command in its own process group.
type Process struct {
	Cmd *exec.Cmd
	// Done is closed when the process has exited.
	Done chan struct{}
	Logs *Buffer
}

// Start starts cmd in a new process group, its output going to Logs.
func Start(cmd *exec.Cmd) (*Process, error) {
	p := &Process{Cmd: cmd, Done: make(chan struct{}), Logs: &Buffer{}}
	cmd.Stdout, cmd.Stderr = p.Logs, p.Logs
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	// Inside a real node's namespaces, the teardown of a run that was
	// killed finds the process by its recorded PID (never by name).
	if ns := realnode.Current(); ns != nil {
		_ = ns.Record(cmd.Process.Pid, filepath.Base(cmd.Path))
	}
	go func() { _ = cmd.Wait(); close(p.Done) }()
	return p, nil
}

// Exited tells whether the process has exited.
func (p *Process) Exited() bool {
	select {
	case <-p.Done:
		return true
	default:
		return false
	}
}

// Stop sends SIGTERM to the process group, then SIGKILL after grace, and
// waits for the process.
func (p *Process) Stop(grace time.Duration) {
	_ = syscall.Kill(-p.Cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-p.Done:
	case <-time.After(grace):
		_ = syscall.Kill(-p.Cmd.Process.Pid, syscall.SIGKILL)
		<-p.Done
	}
}
