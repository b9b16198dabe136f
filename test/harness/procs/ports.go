package procs

import (
	"net"
	"path/filepath"
	"runtime"
)

// FreePort is a loopback TCP port nothing listens on right now, for a
// server the harness is about to start.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// RepoRoot is the repository's top folder (for hack/ scripts, config/ and
// test data), wherever the tests run from.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", "..", ".."))
}
