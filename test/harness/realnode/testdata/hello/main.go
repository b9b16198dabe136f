// Command hello is the real node test's workload: a static HTTP server, the
// single file of a one-layer image. It logs every request (for kubectl logs)
// and, for kubectl exec in an image with no shell, answers `hello id` with
// its identity and confinement.
package main

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "id" {
		fmt.Printf("uid=%d gid=%d\n", os.Getuid(), os.Getgid())
		status, _ := os.ReadFile("/proc/self/status")
		for _, l := range strings.Split(string(status), "\n") {
			if strings.HasPrefix(l, "Seccomp:") || strings.HasPrefix(l, "CapEff:") || strings.HasPrefix(l, "NoNewPrivs:") {
				fmt.Println(strings.ReplaceAll(l, "\t", " "))
			}
		}
		if err := os.WriteFile("/written", []byte("x"), 0o644); err != nil {
			fmt.Println("rootfs read-only:", err)
		}
		return
	}
	host, _ := os.Hostname()
	http.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "ok") })
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		log.Printf("%s %s from %s", r.Method, r.URL.Path, r.RemoteAddr)
		fmt.Fprintf(w, "hello from %s\n", host)
	})
	srv := &http.Server{Addr: ":8080"}
	go func() {
		// Exit 0 on SIGTERM: a stopped pod ends Completed, not Error.
		c := make(chan os.Signal, 1)
		signal.Notify(c, syscall.SIGTERM, syscall.SIGINT)
		<-c
		_ = srv.Shutdown(context.Background())
	}()
	log.Printf("listening on :8080 as uid %d", os.Getuid())
	if err := srv.ListenAndServe(); err != http.ErrServerClosed {
		log.Fatal(err)
	}
}
