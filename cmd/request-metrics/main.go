// Command request-metrics is the request-metrics sidecar of the model pods
// (internal/requestmetrics): a reverse proxy in front of the model server
// that counts and times its requests and serves the counts on /metrics, on
// a port of its own. The operator image ships it next to /manager.
//
// It must stay small and start fast in every model pod: it imports neither
// controller-runtime nor client-go (test/architecture checks).
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/mlflow-operator/mlflow-operator/internal/requestmetrics"
)

func main() {
	var (
		listen, metricsListen, upstream string
		drainDelay, shutdownTimeout     time.Duration
	)
	flag.StringVar(&listen, "listen", ":9101", "Address the proxy takes the model's traffic on.")
	flag.StringVar(&metricsListen, "metrics-listen", ":9102", "Address /metrics is served on; never the traffic address.")
	flag.StringVar(&upstream, "upstream", "http://127.0.0.1:8080", "The model server, on the pod's loopback.")
	// 5s: the model container's preStop sleep (internal/resources).
	flag.DurationVar(&drainDelay, "drain-delay", 5*time.Second,
		"How long the proxy keeps serving after SIGTERM before it stops taking connections, so that the endpoints and the last scrape catch up.")
	flag.DurationVar(&shutdownTimeout, "shutdown-timeout", 20*time.Second, "Longest wait, after the drain delay, for requests under way.")
	flag.Parse()

	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	if err := run(log, listen, metricsListen, upstream, drainDelay, shutdownTimeout); err != nil {
		log.Error("request-metrics failed", "error", err)
		os.Exit(1)
	}
}

func run(log *slog.Logger, listen, metricsListen, upstream string, drainDelay, shutdownTimeout time.Duration) error {
	u, err := url.Parse(upstream)
	if err != nil || u.Scheme != "http" || u.Host == "" || (u.Path != "" && u.Path != "/") {
		return fmt.Errorf("--upstream %q: want http://HOST:PORT, e.g. http://127.0.0.1:8080", upstream)
	}
	if listen == metricsListen {
		return fmt.Errorf("--listen and --metrics-listen are both %q: the metrics must have a port of their own", listen)
	}
	if drainDelay < 0 {
		return fmt.Errorf("--drain-delay %s: must not be negative", drainDelay)
	}
	srv, err := requestmetrics.Listen(requestmetrics.Config{
		Listen: listen, MetricsListen: metricsListen, Upstream: u,
		DrainDelay: drainDelay, ShutdownTimeout: shutdownTimeout, Log: log,
	}, requestmetrics.NewMetrics())
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	log.Info("serving", "listen", srv.TrafficAddr(), "metrics", srv.MetricsAddr(), "upstream", u.String())
	return srv.Serve(ctx)
}
