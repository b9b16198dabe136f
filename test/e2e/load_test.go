package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/mlflow-operator/mlflow-operator/api/v1alpha1"
)

// load sends predictions through a ModelDeployment's Service (its
// ClusterIP, routed by kube-proxy to the ready pods), one after another,
// until stopped, and counts what was answered: what a client of the model
// sees during a promotion or a rollback.
type load struct {
	ok, failed atomic.Int64
	mu         sync.Mutex
	errs       []string
	stop       chan struct{}
	done       chan struct{}
}

// startLoad starts sending to md's Service. It needs kube-proxy: the real
// node only.
func startLoad(t *testing.T, md *v1alpha1.ModelDeployment) *load {
	t.Helper()
	svc := &corev1.Service{}
	if err := k8s.Get(context.Background(), client.ObjectKeyFromObject(md), svc); err != nil {
		t.Fatal(err)
	}
	url := fmt.Sprintf("http://%s:%d/invocations", svc.Spec.ClusterIP, svc.Spec.Ports[0].Port)
	l := &load{stop: make(chan struct{}), done: make(chan struct{})}
	c := &http.Client{Timeout: 10 * time.Second}
	go func() {
		defer close(l.done)
		for {
			select {
			case <-l.stop:
				return
			default:
			}
			resp, err := c.Post(url, "application/json", bytes.NewReader([]byte(irisRows)))
			if err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					err = fmt.Errorf("HTTP %d", resp.StatusCode)
				}
			}
			if err != nil {
				l.failed.Add(1)
				l.mu.Lock()
				if len(l.errs) < 10 {
					l.errs = append(l.errs, time.Now().Format("15:04:05.000")+" "+err.Error())
				}
				l.mu.Unlock()
			} else {
				l.ok.Add(1)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	return l
}

// finish stops the load and fails the test on any failed request.
func (l *load) finish(t *testing.T, what string) {
	t.Helper()
	close(l.stop)
	<-l.done
	t.Logf("MEASURED %s: %d requests through the Service answered, %d failed", what, l.ok.Load(), l.failed.Load())
	if l.failed.Load() > 0 || l.ok.Load() == 0 {
		t.Errorf("%s: %d of %d requests failed: %v", what, l.failed.Load(), l.ok.Load()+l.failed.Load(), l.errs)
	}
}
