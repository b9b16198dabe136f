package requestmetrics

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"time"
)

// Config is what the sidecar serves.
type Config struct {
	// Listen is the traffic address, e.g. ":9101": the Service's target.
	Listen string
	// MetricsListen is the address of /metrics, e.g. ":9102". Never the
	// traffic address: the model's clients must not read it, nor reach the
	// model through it.
	MetricsListen string
	// Upstream is the model server, e.g. http://127.0.0.1:8080.
	Upstream *url.URL
	// DrainDelay is how long the proxy keeps taking requests after the
	// signal to stop, while the endpoints controller and the proxies of
	// the cluster stop sending it new ones (the model container's preStop
	// sleep, for the same reason).
	DrainDelay time.Duration
	// ShutdownTimeout bounds the wait for requests under way after the
	// drain delay.
	ShutdownTimeout time.Duration
	Log             *slog.Logger
}

// Limits of the traffic server. No limit on bodies: models take large
// batches, and the proxy streams them without holding them.
const (
	ReadHeaderTimeout = 10 * time.Second
	MaxHeaderBytes    = 64 << 10
	// IdleTimeout closes keep-alive connections nobody uses.
	IdleTimeout = 90 * time.Second
)

// Server is the sidecar's two listeners.
type Server struct {
	cfg     Config
	traffic *http.Server
	metrics *http.Server
	tl, ml  net.Listener
}

// Listen opens both addresses (so that a port taken fails at once, before
// anything is served) and prepares the servers.
func Listen(cfg Config, m *Metrics) (*Server, error) {
	if cfg.Listen == "" || cfg.MetricsListen == "" || cfg.Upstream == nil {
		return nil, errors.New("the traffic address, the metrics address and the upstream are required")
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	tl, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("cannot listen for traffic: %w", err)
	}
	ml, err := net.Listen("tcp", cfg.MetricsListen)
	if err != nil {
		tl.Close()
		return nil, fmt.Errorf("cannot listen for metrics: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", m.Handler())
	errLog := slog.NewLogLogger(cfg.Log.Handler(), slog.LevelWarn)
	return &Server{
		cfg: cfg, tl: tl, ml: ml,
		traffic: &http.Server{
			Handler:           NewProxy(cfg.Upstream, m, cfg.Log),
			ReadHeaderTimeout: ReadHeaderTimeout,
			MaxHeaderBytes:    MaxHeaderBytes,
			IdleTimeout:       IdleTimeout,
			ErrorLog:          errLog,
		},
		metrics: &http.Server{
			Handler:           mux,
			ReadHeaderTimeout: ReadHeaderTimeout,
			ReadTimeout:       10 * time.Second,
			WriteTimeout:      30 * time.Second,
			MaxHeaderBytes:    MaxHeaderBytes,
			IdleTimeout:       IdleTimeout,
			ErrorLog:          errLog,
		},
	}, nil
}

// TrafficAddr and MetricsAddr are the addresses listened on (tests listen
// on port 0).
func (s *Server) TrafficAddr() string { return s.tl.Addr().String() }
func (s *Server) MetricsAddr() string { return s.ml.Addr().String() }

// Serve serves until ctx ends, then keeps serving for the drain delay, then
// stops taking connections and waits for the requests under way (at most
// the shutdown timeout). Metrics are served until the very end, so that the
// last scrape sees the drained requests.
func (s *Server) Serve(ctx context.Context) error {
	errs := make(chan error, 2)
	go func() { errs <- s.traffic.Serve(s.tl) }()
	go func() { errs <- s.metrics.Serve(s.ml) }()
	select {
	case err := <-errs:
		s.traffic.Close()
		s.metrics.Close()
		return err
	case <-ctx.Done():
	}
	s.cfg.Log.Info("stopping: still serving during the drain delay", "drainDelay", s.cfg.DrainDelay)
	select {
	case err := <-errs:
		s.traffic.Close()
		s.metrics.Close()
		return err
	case <-time.After(s.cfg.DrainDelay):
	}
	timeout := s.cfg.ShutdownTimeout
	if timeout <= 0 {
		timeout = 20 * time.Second
	}
	sctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	err := s.traffic.Shutdown(sctx)
	if err != nil {
		s.traffic.Close()
		err = fmt.Errorf("requests still under way after %s: %w", timeout, err)
	}
	s.metrics.Shutdown(sctx) //nolint:errcheck // the traffic's error, if any, is the one to tell
	s.cfg.Log.Info("stopped")
	return err
}
