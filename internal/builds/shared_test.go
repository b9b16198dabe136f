package builds

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"sigs.k8s.io/controller-runtime/pkg/event"

	v1alpha1 "github.com/mlflow-operator/mlflow-operator/api/v1alpha1"
)

// TestSameBuildIsShared: objects of one namespace following the same model
// version with the same image settings get the first one's image without a
// build of their own, queued or asked later; another namespace, another
// version or other settings build for themselves.
func TestSameBuildIsShared(t *testing.T) {
	var runs atomic.Int32
	release := make(chan struct{})
	done := make(chan event.GenericEvent, 16)
	p := &Pool{Log: logr.Discard(), Done: done, Workers: 1, PerNamespace: 1, run: func(ctx context.Context, j *job) (*Result, error) {
		runs.Add(1)
		<-release
		return &Result{Image: "reg/models/iris@sha256:" + j.version.Version, PushedBytes: 100}, nil
	}}
	same := func(ns, name string) *v1alpha1.ModelDeployment {
		m := md(name)
		m.Namespace = ns
		m.Spec.Model.Name = "iris"
		m.Spec.Image.Repository = "reg/models/iris"
		return m
	}
	ctx := context.Background()
	// Three of the same build queued before any finished (one worker).
	for _, name := range []string{"a", "b", "c"} {
		if _, err := p.Image(ctx, same("team-a", name), version("1")); err != nil {
			t.Fatal(err)
		}
	}
	other := same("team-b", "a")
	if _, err := p.Image(ctx, other, version("1")); err != nil {
		t.Fatal(err)
	}
	started(t, p)
	close(release)
	for range 4 {
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("a build did not finish")
		}
	}
	if n := runs.Load(); n != 2 {
		t.Fatalf("%d builds ran, want 2: one in team-a, one in team-b", n)
	}
	for _, name := range []string{"b", "c"} {
		res, err := p.Image(ctx, same("team-a", name), version("1"))
		if err != nil || res.Image != "reg/models/iris@sha256:1" || !res.Reused || res.PushedBytes != 0 {
			t.Errorf("%s: %+v, %v: want the shared image, reused", name, res, err)
		}
	}
	// Asked later: answered at once.
	res, err := p.Image(ctx, same("team-a", "d"), version("1"))
	if err != nil || res.Image != "reg/models/iris@sha256:1" {
		t.Errorf("a later object: %+v, %v", res, err)
	}
	// Another version, or other image settings: a build of its own.
	if res, _ := p.Image(ctx, same("team-a", "e"), version("2")); res.Image != "" {
		t.Errorf("version 2 shared version 1's build: %+v", res)
	}
	tagged := same("team-a", "f")
	tagged.Spec.Image.TagTemplate = "custom-{{.Version}}"
	if res, _ := p.Image(ctx, tagged, version("1")); res.Image != "" {
		t.Errorf("another tag shared the build: %+v", res)
	}
	waitFor(t, "the two other builds", func() bool { return runs.Load() == 4 })
}
