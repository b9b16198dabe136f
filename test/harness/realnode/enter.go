package realnode

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"
)

// hostSysctls are the host-wide values the kubelet sets when they differ
// (its kernel tunables). Files holding exactly these values are
// bind-mounted over the /proc/sys entries in the private mount namespace:
// the kubelet reads what it wants and writes nothing to the host.
var hostSysctls = []struct{ path, value string }{
	{"vm/overcommit_memory", "1"},
	{"vm/panic_on_oom", "0"},
	{"kernel/panic", "10"},
	{"kernel/panic_on_oops", "1"},
	{"kernel/keys/root_maxkeys", "1000000"},
	{"kernel/keys/root_maxbytes", "25000000"},
}

// Supported says why this machine cannot run a real node, wrapping
// ErrUnsupported, or nil when it can.
func Supported() error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("%w: it needs root (namespaces, mounts, cgroups), and this runs as uid %d", ErrUnsupported, os.Geteuid())
	}
	for _, tool := range []string{"nsenter", "ip", "mount", "sleep"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("%w: %s is not installed", ErrUnsupported, tool)
		}
	}
	if _, _, err := cgroupHierarchies(); err != nil {
		return fmt.Errorf("%w: %v", ErrUnsupported, err)
	}
	return nil
}

// Enter runs the rest of the program inside a new network namespace and
// private mount namespace (see the package comment).
//
// Inside them (the program run again by Enter) it returns the Namespace.
// Outside, it sets them up, runs os.Args again inside them with the same
// environment, forwards SIGINT and SIGTERM to it, waits for it, tears down,
// checks that nothing is left, and exits with the program's exit code (1
// when it succeeded but something was left). It returns only with an error:
// one wrapping ErrUnsupported when the machine cannot do it (the caller may
// fall back to kwok nodes), another when setting up failed (nothing is left
// then either).
func Enter() (*Namespace, error) {
	if os.Getenv(envVar) != "" {
		n := Current()
		if n == nil {
			return nil, currentErr
		}
		return n, nil
	}
	if err := Supported(); err != nil {
		return nil, err
	}
	// The holder's Pdeathsig fires when the thread that started it ends,
	// not the process: keep this goroutine on its thread until os.Exit.
	runtime.LockOSThread()
	h, err := setUp()
	if err != nil {
		return nil, err
	}
	code := h.run()
	if problems := h.tearDown(); len(problems) > 0 {
		fmt.Fprintf(os.Stderr, "realnode: the teardown left:\n  %s\n", strings.Join(problems, "\n  "))
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
	return nil, nil // not reached
}

// holder is the host side of a namespace pair: what setUp made, for
// tearDown to undo.
type holder struct {
	ns         *Namespace
	cmd        *exec.Cmd // sleep infinity, the first process in the namespaces
	owner      *os.File  // locked while this run lives; a later run sweeps an unlocked one
	hostDirs   *hostDirs
	before     hostState
	cgroupMade bool
}

// setUp creates the namespaces and everything in them; on error it undoes
// what it did.
func setUp() (h *holder, err error) {
	h = &holder{before: snapshotHost()}
	defer func() {
		if err != nil {
			if problems := h.tearDown(); len(problems) > 0 {
				err = fmt.Errorf("%w (and the teardown left: %s)", err, strings.Join(problems, "; "))
			}
		}
	}()
	base := filepath.Join(os.TempDir(), "mlflow-operator-realnode")
	var dir string
	for try := 0; try < 3; try++ {
		// The last run removes base when it is empty: try again if it
		// vanished between the two calls.
		if err = os.MkdirAll(base, 0o700); err != nil {
			continue
		}
		if dir, err = os.MkdirTemp(base, "ns-"); err == nil {
			break
		}
	}
	if err != nil {
		return h, fmt.Errorf("realnode: create the namespace's folder: %w", err)
	}
	if h.owner, err = lockFile(filepath.Join(dir, "owner.lock"), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		return h, fmt.Errorf("realnode: lock the namespace's folder: %w", err)
	}
	sweepStale(base, dir)
	hier, tracking, err := cgroupHierarchies()
	if err != nil {
		return h, fmt.Errorf("realnode: %w", err)
	}
	h.ns = &Namespace{
		Dir:         dir,
		CgroupRoot:  "/mlflow-operator-realnode-" + strings.TrimPrefix(filepath.Base(dir), "ns-"),
		Hierarchies: hier,
		Tracking:    tracking,
	}
	if h.hostDirs, err = acquireHostDirs(base); err != nil {
		return h, fmt.Errorf("realnode: %w", err)
	}
	h.cgroupMade = true
	if err = h.ns.createCgroupRoot(); err != nil {
		return h, fmt.Errorf("realnode: %w", err)
	}

	// The holder: clone(2) puts it in a new network and mount namespace
	// before it runs anything, so there is no moment where it is half in.
	// It dies with this process (Pdeathsig) even if this one is killed; the
	// daemons inside then stay, and a later teardown cannot know them.
	h.cmd = exec.Command("sleep", "infinity")
	h.cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags: syscall.CLONE_NEWNET | syscall.CLONE_NEWNS,
		Setsid:     true,
		Pdeathsig:  syscall.SIGKILL,
	}
	if err = h.cmd.Start(); err != nil {
		return h, fmt.Errorf("realnode: start the namespace holder: %w", err)
	}
	h.ns.HolderPID = h.cmd.Process.Pid
	if h.ns.NetNS, err = os.Readlink(fmt.Sprintf("/proc/%d/ns/net", h.ns.HolderPID)); err == nil {
		h.ns.MntNS, err = os.Readlink(fmt.Sprintf("/proc/%d/ns/mnt", h.ns.HolderPID))
	}
	if err != nil {
		return h, fmt.Errorf("realnode: read the holder's namespaces: %w", err)
	}
	if err = h.configure(); err != nil {
		return h, err
	}
	return h, h.ns.save()
}

// configure sets up the inside of the namespaces, from the host, with
// nsenter (not `ip netns exec`, which remounts /sys and hides the cgroups).
func (h *holder) configure() error {
	dir := h.ns.Dir
	resolv := filepath.Join(dir, "resolv.conf")
	if err := os.WriteFile(resolv, []byte("nameserver 127.0.0.1\n"), 0o644); err != nil {
		return fmt.Errorf("realnode: %w", err)
	}
	steps := [][]string{
		// First of all: nothing mounted inside may propagate to the host.
		{"mount", "--make-rprivate", "/"},
		{"ip", "link", "set", "lo", "up"},
		// No dummy driver on this kernel, and the kubelet refuses a loopback
		// node IP: a veth pair whose both ends stay inside.
		{"ip", "link", "add", NodeLink, "type", "veth", "peer", "name", NodeLink + "-peer"},
		{"ip", "addr", "add", NodeIP + "/24", "dev", NodeLink},
		{"ip", "link", "set", NodeLink, "up"},
		{"ip", "link", "set", NodeLink + "-peer", "up"},
		// ClusterIPs need a route before kube-proxy's DNAT sees them; there
		// is no default route, so nothing leaves.
		{"ip", "route", "add", ServiceCIDR, "dev", NodeLink},
		{"sh", "-c", "echo 1 > /proc/sys/net/ipv4/ip_forward"},
		// The namespace's own resolver configuration: 127.0.0.1, nothing
		// reaches the host's resolver.
		{"mount", "--bind", resolv, "/etc/resolv.conf"},
	}
	for _, d := range shadowed {
		steps = append(steps, []string{"mount", "-t", "tmpfs", "-o", "mode=755", "tmpfs", d})
	}
	if err := os.Mkdir(filepath.Join(dir, "sysctl"), 0o700); err != nil {
		return fmt.Errorf("realnode: %w", err)
	}
	for _, s := range hostSysctls {
		file := filepath.Join(dir, "sysctl", strings.ReplaceAll(s.path, "/", "."))
		if err := os.WriteFile(file, []byte(s.value+"\n"), 0o644); err != nil {
			return fmt.Errorf("realnode: %w", err)
		}
		steps = append(steps, []string{"mount", "--bind", file, "/proc/sys/" + s.path})
	}
	for _, s := range steps {
		args := append([]string{"-t", fmt.Sprint(h.ns.HolderPID), "-n", "-m", "--"}, s...)
		if out, err := exec.Command("nsenter", args...).CombinedOutput(); err != nil {
			return fmt.Errorf("realnode: in the namespace, %s: %w: %s", strings.Join(s, " "), err, strings.TrimSpace(string(out)))
		}
	}
	return nil
}

// run runs this program again inside the namespaces and returns its exit
// code. nsenter execs the program (no pid namespace, so no fork): the child
// is the program itself, and signals reach it directly.
func (h *holder) run() int {
	exe, err := os.Executable()
	if err != nil {
		fmt.Fprintf(os.Stderr, "realnode: %v\n", err)
		return 1
	}
	wd, err := os.Getwd()
	if err != nil {
		fmt.Fprintf(os.Stderr, "realnode: %v\n", err)
		return 1
	}
	// Entering a mount namespace resets the working folder: --wd keeps it.
	args := append([]string{"-t", fmt.Sprint(h.ns.HolderPID), "-n", "-m", "--wd=" + wd, "--", exe}, os.Args[1:]...)
	cmd := exec.Command("nsenter", args...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	// Temporary folders made inside (t.TempDir, registries, clusters) go
	// below the namespace's folder, which the teardown removes even when
	// the program was killed.
	tmp := filepath.Join(h.ns.Dir, "tmp")
	if err := os.Mkdir(tmp, 0o700); err != nil {
		fmt.Fprintf(os.Stderr, "realnode: %v\n", err)
		return 1
	}
	cmd.Env = append(os.Environ(), envVar+"="+h.ns.Dir, "TMPDIR="+tmp)
	signals := make(chan os.Signal, 4)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(signals)
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(os.Stderr, "realnode: run %s in the namespaces: %v\n", exe, err)
		return 1
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	// The first SIGINT or SIGTERM is passed on, so the program can stop its
	// cluster; a second one, or 30 s without an exit, kills it (the
	// teardown stops what it left).
	var kill <-chan time.Time
	for {
		select {
		case s := <-signals:
			if kill != nil {
				_ = cmd.Process.Kill()
				continue
			}
			_ = cmd.Process.Signal(s)
			kill = time.After(30 * time.Second)
		case <-kill:
			_ = cmd.Process.Kill()
		case err := <-done:
			var exit *exec.ExitError
			switch {
			case err == nil:
				return 0
			case errors.As(err, &exit):
				if ws, ok := exit.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
					fmt.Fprintf(os.Stderr, "realnode: the program in the namespaces was killed by %v\n", ws.Signal())
					return 128 + int(ws.Signal())
				}
				return exit.ExitCode()
			default:
				fmt.Fprintf(os.Stderr, "realnode: %v\n", err)
				return 1
			}
		}
	}
}

// wait polls cond every 50 ms until it holds or timeout passes.
func wait(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
	return true
}
