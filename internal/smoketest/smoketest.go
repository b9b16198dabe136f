// Package smoketest sends a candidate pod the request it must answer before
// its model version is promoted: the model's own input example, POSTed to
// the pod's IP, answered with 2xx JSON that holds predictions.
package smoketest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/mlflow-operator/mlflow-operator/internal/text"
)

// maxAnswer bounds the answer read from a candidate; maxQuoted how much of
// it an error message quotes.
const (
	maxAnswer = 1 << 20
	maxQuoted = 300
)

// HTTP talks to the pod's IP directly (the operator must be allowed by the
// serving NetworkPolicy: see the operator peer the reconciler adds).
type HTTP struct {
	// Client sends the request; one that opens a new connection per test
	// when nil.
	Client *http.Client
}

// defaultClient opens a new connection for every smoke test. Pod IPs are
// reused as pods come and go, so a pooled connection to an IP may lead to a
// pod that no longer exists, or to a model that is not the candidate.
// No proxy either: pod IPs are reached directly. The request's context
// (spec.rollout.smokeTest.timeout) bounds the whole exchange.
var defaultClient = &http.Client{Transport: &http.Transport{
	DisableKeepAlives: true,
	DialContext:       (&net.Dialer{Timeout: 10 * time.Second}).DialContext,
}}

// Test POSTs body to path on the pod's port and returns nil when the pod
// answers 2xx JSON with predictions, within timeout.
func (h HTTP) Test(ctx context.Context, pod *corev1.Pod, port int32, path string, body []byte, timeout time.Duration) error {
	if pod.Status.PodIP == "" {
		return fmt.Errorf("pod %s has no IP", pod.Name)
	}
	c := h.Client
	if c == nil {
		c = defaultClient
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	url := "http://" + net.JoinHostPort(pod.Status.PodIP, strconv.Itoa(int(port))) + path
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		return fmt.Errorf("POST %s: %w", path, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	quoted := text.Shorten(string(data), maxQuoted)
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("POST %s answered HTTP %d: %s", path, resp.StatusCode, quoted)
	}
	var answer map[string]any
	if err := json.Unmarshal(data, &answer); err != nil {
		return fmt.Errorf("POST %s answered something other than JSON: %s", path, quoted)
	}
	if _, ok := answer["predictions"]; !ok {
		return fmt.Errorf("POST %s answered JSON without predictions: %s", path, quoted)
	}
	return nil
}
