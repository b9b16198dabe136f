// Package serviceload is a client of a model: it sends predictions through
// a ModelDeployment's Service (its ClusterIP, routed by kube-proxy to the
// ready pods), one after another, until stopped, and counts what was
// answered. It is what a client of the model sees during a promotion or a
// rollback; the end-to-end suite and `make bench-e2e` both use it. It needs
// kube-proxy, so the real node only: on kwok nodes Service IPs route
// nowhere.
package serviceload

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Pause is the time between the end of one request and the next.
const Pause = 20 * time.Millisecond

// Load is a running client.
type Load struct {
	URL        string
	ok, failed atomic.Int64
	mu         sync.Mutex
	failures   []Failure
	stop       chan struct{}
	done       chan struct{}
}

// Result is what a Load counted.
type Result struct {
	OK, Failed int64
	// Failures are the first ten failed requests.
	Failures []Failure
}

// Failure is a failed request: when it ended, and how.
type Failure struct {
	At  time.Time
	Err string
}

func (f Failure) String() string { return f.At.Format("15:04:05.000") + " " + f.Err }

// Sent is every request sent.
func (r Result) Sent() int64 { return r.OK + r.Failed }

// Start reads the Service key names (a ModelDeployment's has its name) and
// starts sending body to its /invocations, through the ClusterIP and the
// Service's first port.
func Start(ctx context.Context, c client.Client, key client.ObjectKey, body string) (*Load, error) {
	svc := &corev1.Service{}
	if err := c.Get(ctx, key, svc); err != nil {
		return nil, fmt.Errorf("the Service to send predictions through: %w", err)
	}
	if svc.Spec.ClusterIP == "" || len(svc.Spec.Ports) == 0 {
		return nil, fmt.Errorf("the Service %s has no ClusterIP or no port", key)
	}
	l := &Load{
		URL:  fmt.Sprintf("http://%s:%d/invocations", svc.Spec.ClusterIP, svc.Spec.Ports[0].Port),
		stop: make(chan struct{}), done: make(chan struct{}),
	}
	hc := &http.Client{Timeout: 10 * time.Second}
	go func() {
		defer close(l.done)
		for {
			select {
			case <-l.stop:
				return
			default:
			}
			l.send(hc, body)
			time.Sleep(Pause)
		}
	}()
	return l, nil
}

func (l *Load) send(hc *http.Client, body string) {
	resp, err := hc.Post(l.URL, "application/json", bytes.NewReader([]byte(body)))
	if err == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			err = fmt.Errorf("HTTP %d", resp.StatusCode)
		}
	}
	if err == nil {
		l.ok.Add(1)
		return
	}
	l.failed.Add(1)
	l.mu.Lock()
	if len(l.failures) < 10 {
		l.failures = append(l.failures, Failure{At: time.Now(), Err: err.Error()})
	}
	l.mu.Unlock()
}

// Stop stops sending (after the request in flight) and returns the counts.
func (l *Load) Stop() Result {
	close(l.stop)
	<-l.done
	l.mu.Lock()
	defer l.mu.Unlock()
	return Result{OK: l.ok.Load(), Failed: l.failed.Load(), Failures: append([]Failure(nil), l.failures...)}
}
