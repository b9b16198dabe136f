// Command pause is the pod sandbox process of the real test node, a static Go
// stand-in for Kubernetes' pause.c: registry.k8s.io cannot be reached from
// here, so hack/realnode.sh builds this and the harness pushes it, as a
// one-layer image, to the test registry that containerd pins as its sandbox
// image.
//
// It holds the pod's namespaces open and does nothing else: it reaps the
// zombies it inherits as the pod's PID 1 (when the pod shares its process
// namespace) and exits at once on SIGINT or SIGTERM, so a pod stops without
// waiting for a kill timeout.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	signals := make(chan os.Signal, 16)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM, syscall.SIGCHLD)
	for s := range signals {
		if s != syscall.SIGCHLD {
			os.Exit(0)
		}
		reap()
	}
}

// reap collects every exited child without blocking.
func reap() {
	for {
		pid, err := syscall.Wait4(-1, nil, syscall.WNOHANG, nil)
		if pid <= 0 || err != nil {
			return
		}
	}
}
