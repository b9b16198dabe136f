package controllers

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

	v1alpha1 "github.com/mlflow-operator/mlflow-operator/api/v1alpha1"
	"github.com/mlflow-operator/mlflow-operator/internal/mlflow"
)

// ExampleSource gives the request a model version answers in its smoke
// test: the model's own serving_input_example.json.
type ExampleSource interface {
	// Example returns the example, or nil when the model has none.
	Example(ctx context.Context, md *v1alpha1.ModelDeployment, version string) ([]byte, error)
}

// Example implements ExampleSource with the MLflow registry.
func (r *MLflowResolver) Example(ctx context.Context, md *v1alpha1.ModelDeployment, version string) ([]byte, error) {
	c, err := r.ClientFor(ctx, md)
	if err != nil {
		return nil, err
	}
	data, err := c.ReadArtifact(ctx, md.Spec.Model.Name, version, "serving_input_example.json", 1<<20)
	if mlflow.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, asReasoned(err)
	}
	return data, nil
}

// SmokeTester sends a smoke test request to a candidate pod.
type SmokeTester interface {
	// Test POSTs body to path on the pod's serving port and returns nil
	// when it answers 2xx JSON with predictions.
	Test(ctx context.Context, pod *corev1.Pod, port int32, path string, body []byte, timeout time.Duration) error
}

// HTTPSmokeTester talks to the pod's IP directly (the operator must be
// allowed by the NetworkPolicy: see its operator peer).
type HTTPSmokeTester struct {
	Client *http.Client
}

// smokeClient opens a new connection for every smoke test. Pod IPs are
// reused as pods come and go, so a pooled connection to an IP may lead to a
// pod that no longer exists, or to a model that is not the candidate.
// No proxy either: pod IPs are reached directly. The request's context
// (spec.rollout.smokeTest.timeout) bounds the whole exchange.
var smokeClient = &http.Client{Transport: &http.Transport{
	DisableKeepAlives: true,
	DialContext:       (&net.Dialer{Timeout: 10 * time.Second}).DialContext,
}}

// Test implements SmokeTester.
func (h HTTPSmokeTester) Test(ctx context.Context, pod *corev1.Pod, port int32, path string, body []byte, timeout time.Duration) error {
	if pod.Status.PodIP == "" {
		return fmt.Errorf("pod %s has no IP", pod.Name)
	}
	c := h.Client
	if c == nil {
		c = smokeClient
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
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("POST %s answered HTTP %d: %s", path, resp.StatusCode, shorten(string(data), 300))
	}
	var answer map[string]any
	if err := json.Unmarshal(data, &answer); err != nil {
		return fmt.Errorf("POST %s answered something other than JSON: %s", path, shorten(string(data), 300))
	}
	if _, ok := answer["predictions"]; !ok {
		return fmt.Errorf("POST %s answered JSON without predictions: %s", path, shorten(string(data), 300))
	}
	return nil
}

func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
