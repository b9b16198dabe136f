package mlflow

import (
	"context"
	"net"
	"slices"
	"sync"
	"testing"
	"time"
)

// TestRequestObserver: every try is observed with the endpoint's fixed name
// and the answer's status, or 0 when no answer came.
func TestRequestObserver(t *testing.T) {
	srv := fakeRegistry(t)
	type seen struct {
		op     string
		status int
	}
	var mu sync.Mutex
	var got []seen
	observe := func(op string, status int, d time.Duration) {
		if d < 0 {
			t.Errorf("negative duration %v", d)
		}
		mu.Lock()
		got = append(got, seen{op, status})
		mu.Unlock()
	}
	take := func() []seen {
		mu.Lock()
		defer mu.Unlock()
		out := got
		got = nil
		return out
	}
	c, err := New(srv.URL, WithRequestObserver(observe), WithRetries(1, time.Millisecond, time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := c.Resolve(ctx, Reference{Name: "iris", Alias: "champion"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Resolve(ctx, Reference{Name: "down", Version: "1"}); err == nil {
		t.Fatal("a 503 resolved")
	}
	want := []seen{{"registered-models/alias", 200}, {"model-versions/get", 503}, {"model-versions/get", 503}}
	if o := take(); !slices.Equal(o, want) {
		t.Errorf("observed %v, want %v", o, want)
	}

	// No answer at all: status 0.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	c, err = New("http://"+addr, WithRequestObserver(observe), WithRetries(0, time.Millisecond, time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Resolve(ctx, Reference{Name: "iris", Version: "1"})
	if o := take(); err == nil || !slices.Equal(o, []seen{{"model-versions/get", 0}}) {
		t.Errorf("closed port: %v, observed %v", err, o)
	}
}

func TestOperationNames(t *testing.T) {
	for path, want := range map[string]string{
		"/api/2.0/mlflow/registered-models/alias":                 "registered-models/alias",
		"/prefix/api/2.0/mlflow/model-versions/get-download-uri":  "model-versions/get-download-uri",
		"/api/2.0/mlflow/logged-models/m-0123":                    "logged-models/get",
		"/api/2.0/mlflow/experiments/search":                      "other",
		"/api/2.0/mlflow-artifacts/artifacts":                     "artifacts/list",
		"/api/2.0/mlflow-artifacts/artifacts/1/abc/model.pkl":     "artifacts/download",
		"/model-versions/get-artifact":                            "model-versions/get-artifact",
		"/somewhere/else/a-name-that-must-not-become-a-label.bin": "other",
	} {
		got := operation(path)
		if got != want {
			t.Errorf("operation(%q) = %q, want %q", path, got, want)
		}
		if !slices.Contains(Operations, got) {
			t.Errorf("operation(%q) = %q is not in Operations", path, got)
		}
	}
}
