// Package eventrecorder writes the operator's Kubernetes Events
// (events.k8s.io/v1): one Event per call, created in the background from a
// bounded queue.
//
// client-go's events broadcaster (what controller-runtime's
// GetEventRecorder returns) keeps a copy of every Event it sent for six to
// twelve minutes, to fold repeats into a series. The operator records an
// Event on a transition only (a condition that changed, a build that
// finished), so repeats are rare and a series buys nothing; the copies,
// though, were a tenth of the operator's heap while a thousand
// ModelDeployments were created (issue 15's bench-scale). This recorder
// keeps nothing once an Event is written.
package eventrecorder

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/reference"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/mlflow-operator/mlflow-operator/internal/metrics"
	"github.com/mlflow-operator/mlflow-operator/internal/text"
)

// Limits of an Event's fields the API server enforces (events.k8s.io/v1
// validation): a longer note or reason would be refused.
const (
	maxNote     = 1024
	maxReason   = 128
	maxAction   = 128
	maxInstance = 128
)

// DefaultQueue is how many Events may wait to be written. A full queue
// drops the newest (counted, logged once a minute at most): Events are
// for people, and the operator never waits on them.
const DefaultQueue = 1024

// Recorder records Events. Start it (it is a manager Runnable) to write
// them; before that, they wait in the queue.
type Recorder struct {
	client     client.Client
	scheme     *runtime.Scheme
	controller string
	instance   string
	queue      chan *eventsv1.Event
	log        logr.Logger
	// dropped is called for every Event not written, with why
	// (metrics.EventQueueFull or metrics.EventRefused).
	dropped func(reason string)
	// lastLog is when a full queue was last logged (Unix nanoseconds).
	lastLog atomic.Int64
}

// New returns a recorder that writes Events through c, reported by
// controller (the reportingController; the instance is controller-hostname,
// as client-go's recorder names it). dropped (metrics.EventDropped in the
// operator) may be nil.
func New(c client.Client, scheme *runtime.Scheme, controller string, queue int, log logr.Logger, dropped func(reason string)) *Recorder {
	host, _ := os.Hostname()
	if queue <= 0 {
		queue = DefaultQueue
	}
	if dropped == nil {
		dropped = func(string) {}
	}
	return &Recorder{client: c, scheme: scheme, controller: controller, instance: text.Shorten(controller+"-"+host, maxInstance),
		queue: make(chan *eventsv1.Event, queue), log: log, dropped: dropped}
}

// Eventf queues an Event about regarding (related may be nil). It never
// blocks.
func (r *Recorder) Eventf(regarding runtime.Object, related runtime.Object, eventtype, reason, action, note string, args ...any) {
	ref, err := reference.GetReference(r.scheme, regarding)
	if err != nil {
		r.log.Error(err, "Not recording an event: no reference to its object", "reason", reason)
		r.dropped(metrics.EventRefused)
		return
	}
	now := time.Now()
	e := &eventsv1.Event{
		ObjectMeta: metav1.ObjectMeta{
			Name:      fmt.Sprintf("%s.%x", ref.Name, now.UnixNano()),
			Namespace: ref.Namespace,
		},
		EventTime:           metav1.NewMicroTime(now),
		ReportingController: r.controller,
		ReportingInstance:   r.instance,
		Action:              text.Shorten(action, maxAction),
		Reason:              text.Shorten(reason, maxReason),
		Regarding:           *ref,
		Note:                text.Shorten(fmt.Sprintf(note, args...), maxNote),
		Type:                eventtype,
	}
	if related != nil {
		if rel, err := reference.GetReference(r.scheme, related); err == nil {
			e.Related = rel
		}
	}
	if e.Namespace == "" {
		e.Namespace = metav1.NamespaceDefault
	}
	select {
	case r.queue <- e:
	default:
		r.dropped(metrics.EventQueueFull)
		if last := r.lastLog.Load(); now.UnixNano()-last > int64(time.Minute) && r.lastLog.CompareAndSwap(last, now.UnixNano()) {
			r.log.Info("Event queue full: dropping events until the API server catches up", "queue", cap(r.queue))
		}
	}
}

// writers is how many Events are written at once: at a thousand new
// ModelDeployments the operator records about 20 a second, and a write
// waits on an API server that may take 100 ms to answer.
const writers = 8

// writeTimeout bounds each write.
const writeTimeout = 10 * time.Second

// Start writes queued Events until ctx is done; what is still queued then
// is dropped.
func (r *Recorder) Start(ctx context.Context) error {
	var wg sync.WaitGroup
	for range writers {
		wg.Go(func() {
			for {
				select {
				case <-ctx.Done():
					return
				case e := <-r.queue:
					r.write(ctx, e)
				}
			}
		})
	}
	wg.Wait()
	return nil
}

// NeedLeaderElection is false: every replica writes the Events it records
// (only the leader's reconcilers record any).
func (r *Recorder) NeedLeaderElection() bool { return false }

// write creates e, trying again twice (after 1 s, then 2 s) when the API
// server was busy or did not answer; a refusal is final.
func (r *Recorder) write(ctx context.Context, e *eventsv1.Event) {
	var err error
	for attempt := range 3 {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Duration(attempt) * time.Second):
			}
		}
		wctx, cancel := context.WithTimeout(ctx, writeTimeout)
		err = r.client.Create(wctx, e)
		cancel()
		if err == nil || !transient(err) {
			break
		}
	}
	if err != nil {
		r.dropped(metrics.EventRefused)
		r.log.V(1).Info("Event not written", "reason", e.Reason, "regarding", e.Regarding.Name, "error", err.Error())
	}
}

// transient: the API server was overloaded, timed out or did not answer.
func transient(err error) bool {
	return apierrors.IsTooManyRequests(err) || apierrors.IsServerTimeout(err) || apierrors.IsTimeout(err) ||
		apierrors.IsServiceUnavailable(err) || apierrors.IsInternalError(err) || !isAPIStatus(err)
}

// isAPIStatus: the API server answered (anything else is the network).
func isAPIStatus(err error) bool {
	var s apierrors.APIStatus
	return errors.As(err, &s)
}
