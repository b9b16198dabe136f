package eventrecorder

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	v1alpha1 "github.com/mlflow-operator/mlflow-operator/api/v1alpha1"
)

func newScheme(t *testing.T) *runtime.Scheme {
	t.Helper()
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	if err := v1alpha1.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	return s
}

func md() *v1alpha1.ModelDeployment {
	return &v1alpha1.ModelDeployment{ObjectMeta: metav1.ObjectMeta{Name: "iris", Namespace: "team-a", UID: "u-1"}}
}

func TestEventIsWrittenAsRecorded(t *testing.T) {
	s := newScheme(t)
	c := fake.NewClientBuilder().WithScheme(s).Build()
	var dropped []string
	r := New(c, s, "mlflow-operator", 4, logr.Discard(), func(reason string) { dropped = append(dropped, reason) })
	r.Eventf(md(), nil, "Normal", "Promoted", "Promote", "version %s serves", "3")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- r.Start(ctx) }()

	var list eventsv1.EventList
	deadline := time.Now().Add(5 * time.Second)
	for len(list.Items) == 0 && time.Now().Before(deadline) {
		if err := c.List(context.Background(), &list, client.InNamespace("team-a")); err != nil {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-done
	if len(list.Items) != 1 {
		t.Fatalf("%d events written, want 1", len(list.Items))
	}
	e := list.Items[0]
	if e.Regarding.Kind != "ModelDeployment" || e.Regarding.Name != "iris" || e.Regarding.UID != "u-1" ||
		e.Regarding.APIVersion != v1alpha1.GroupVersion.String() {
		t.Errorf("regarding %+v", e.Regarding)
	}
	if e.Reason != "Promoted" || e.Action != "Promote" || e.Type != "Normal" || e.Note != "version 3 serves" {
		t.Errorf("reason %q action %q type %q note %q", e.Reason, e.Action, e.Type, e.Note)
	}
	if e.ReportingController != "mlflow-operator" || !strings.HasPrefix(e.ReportingInstance, "mlflow-operator-") ||
		!strings.HasPrefix(e.Name, "iris.") || e.EventTime.IsZero() {
		t.Errorf("controller %q instance %q name %q time %v", e.ReportingController, e.ReportingInstance, e.Name, e.EventTime)
	}
	if len(dropped) != 0 {
		t.Errorf("dropped %v", dropped)
	}
}

func TestFullQueueDropsWithoutBlocking(t *testing.T) {
	s := newScheme(t)
	var dropped []string
	r := New(fake.NewClientBuilder().WithScheme(s).Build(), s, "mlflow-operator", 2, logr.Discard(),
		func(reason string) { dropped = append(dropped, reason) })
	// Not started: nothing drains the queue.
	for range 5 {
		r.Eventf(md(), nil, "Normal", "Promoted", "Promote", "x")
	}
	if len(r.queue) != 2 || len(dropped) != 3 || dropped[0] != "queue_full" {
		t.Fatalf("queued %d, dropped %v; want 2 queued and 3 queue_full", len(r.queue), dropped)
	}
}

func TestNoteIsCutToWhatTheAPIServerAccepts(t *testing.T) {
	s := newScheme(t)
	r := New(fake.NewClientBuilder().WithScheme(s).Build(), s, "mlflow-operator", 1, logr.Discard(), nil)
	r.Eventf(md(), nil, "Warning", strings.Repeat("R", 300), "Reconcile", "%s", strings.Repeat("é", 1000))
	e := <-r.queue
	if len(e.Note) > maxNote || len(e.Reason) > maxReason || !strings.HasSuffix(e.Note, "é...") {
		t.Fatalf("note %d bytes, reason %d bytes", len(e.Note), len(e.Reason))
	}
}

func TestRefusedWriteIsCountedAndBusyRetried(t *testing.T) {
	s := newScheme(t)
	var dropped []string
	calls := 0
	answers := []error{
		apierrors.NewForbidden(schema.GroupResource{Group: "events.k8s.io", Resource: "events"}, "x", errors.New("no")),
		apierrors.NewTooManyRequests("busy", 1),
		nil,
	}
	c := fake.NewClientBuilder().WithScheme(s).WithInterceptorFuncs(interceptor.Funcs{
		Create: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.CreateOption) error {
			err := answers[calls]
			calls++
			if err != nil {
				return err
			}
			return c.Create(ctx, obj, opts...)
		},
	}).Build()
	r := New(c, s, "mlflow-operator", 2, logr.Discard(), func(reason string) { dropped = append(dropped, reason) })
	r.Eventf(md(), nil, "Normal", "Promoted", "Promote", "refused")
	r.write(context.Background(), <-r.queue)
	if calls != 1 || len(dropped) != 1 || dropped[0] != "refused" {
		t.Fatalf("a refusal: %d tries, dropped %v; want 1 try and [refused]", calls, dropped)
	}
	r.Eventf(md(), nil, "Normal", "Promoted", "Promote", "busy, then written")
	r.write(context.Background(), <-r.queue)
	var list eventsv1.EventList
	if err := c.List(context.Background(), &list); err != nil {
		t.Fatal(err)
	}
	if calls != 3 || len(dropped) != 1 || len(list.Items) != 1 || list.Items[0].Note != "busy, then written" {
		t.Fatalf("a busy API server: %d tries in all, dropped %v, %d written; want 3, [refused], 1", calls, dropped, len(list.Items))
	}
}
