package notify

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/utils/clock"

	v1alpha1 "github.com/mlflow-operator/mlflow-operator/api/v1alpha1"
	"github.com/mlflow-operator/mlflow-operator/internal/metrics"
)

// ConfigSource gives the current configuration; nil (and no error) when
// there is none, which turns notifications off.
type ConfigSource interface {
	Load(ctx context.Context) (*Config, error)
}

// Options configure a Notifier; zero values take the defaults.
type Options struct {
	Source ConfigSource
	Log    logr.Logger
	// Workers deliver at once; 2.
	Workers int
	// QueueSize bounds the events and deliveries waiting or being retried;
	// beyond it new ones are dropped. 256.
	QueueSize int
	// MaxAttempts per delivery; 5.
	MaxAttempts int
	// Backoff before the first retry, doubled after each one up to
	// MaxBackoff (with ±20% jitter); 2s and 1m.
	Backoff, MaxBackoff time.Duration
	// Timeout bounds one attempt; 10s.
	Timeout time.Duration
	// Transport carries the requests; a bounded one when nil.
	Transport http.RoundTripper
	// Clock; the real one when nil.
	Clock clock.WithDelayedExecution
	// DedupeWindow: the same trigger of the same object and version is sent
	// once within it (a reconcile retried after its status write failed
	// records its events again); 2m.
	DedupeWindow time.Duration

	metrics *metrics.Notifications
}

// Notifier queues events and delivers them: a manager Runnable.
type Notifier struct {
	o      Options
	log    logr.Logger
	m      *metrics.Notifications
	client *http.Client
	queue  chan *job
	// pending counts the jobs queued, being worked on or waiting for a
	// retry; at most QueueSize, so the queue never blocks.
	pending atomic.Int64
	stopped atomic.Bool

	mu       sync.Mutex
	recent   map[string]time.Time
	breakers map[string]*breaker
}

// job is an event to fan out into deliveries, or one delivery.
type job struct {
	event *eventJob
	d     *delivery
}

type eventJob struct {
	fields Fields
	subs   map[string]string
}

// delivery is one message to one recipient of one service.
type delivery struct {
	id        string
	service   string
	recipient string
	svc       service
	msg       message
	fields    Fields
	attempts  int
}

// New returns a Notifier; add it to the manager to start its workers.
func New(o Options) *Notifier {
	if o.Workers <= 0 {
		o.Workers = 2
	}
	if o.QueueSize <= 0 {
		o.QueueSize = 256
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = 5
	}
	if o.Backoff <= 0 {
		o.Backoff = 2 * time.Second
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = time.Minute
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	if o.Clock == nil {
		o.Clock = clock.RealClock{}
	}
	if o.DedupeWindow <= 0 {
		o.DedupeWindow = 2 * time.Minute
	}
	m := o.metrics
	if m == nil {
		m = metrics.DefaultNotifications
	}
	return &Notifier{o: o, log: o.Log, m: m, client: newClient(o.Transport, o.Timeout),
		queue: make(chan *job, o.QueueSize), recent: map[string]time.Time{}, breakers: map[string]*breaker{}}
}

// NeedLeaderElection: only the leader reconciles, so only it has events.
func (n *Notifier) NeedLeaderElection() bool { return true }

// Start runs the workers until ctx ends; what is still queued then is
// dropped.
func (n *Notifier) Start(ctx context.Context) error {
	var wg sync.WaitGroup
	for range n.o.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-ctx.Done():
					return
				case j := <-n.queue:
					n.work(ctx, j)
				}
			}
		}()
	}
	<-ctx.Done()
	n.stopped.Store(true)
	wg.Wait()
	for {
		select {
		case <-n.queue:
			n.drop("shutdown")
		default:
			return nil
		}
	}
}

// Notify queues an event the reconciler records on md when a subscription
// may ask for it. It never blocks: with the queue full, the event is
// dropped, counted and logged.
func (n *Notifier) Notify(md *v1alpha1.ModelDeployment, eventType string, reason v1alpha1.Reason, action v1alpha1.EventAction, note string) {
	trigger := Trigger(eventType, reason, action)
	if trigger == "" {
		return
	}
	subs := subscriptions(md.Annotations)
	if len(subs) == 0 {
		return
	}
	now := n.o.Clock.Now()
	f := fieldsOf(md, trigger, eventType, reason, action, note, now).bounded()
	if n.duplicate(f.UID+"/"+f.Namespace+"/"+f.Name+"/"+trigger+"/"+f.Reason+"/"+f.Version, now) {
		return
	}
	if !n.enqueue(&job{event: &eventJob{fields: f, subs: subs}}) {
		n.log.Info("Notification queue full; event dropped", "trigger", trigger, "modelDeployment", f.Namespace+"/"+f.Name)
	}
}

// duplicate tells whether key was seen within the dedupe window, and
// remembers it.
func (n *Notifier) duplicate(key string, now time.Time) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if at, ok := n.recent[key]; ok && now.Sub(at) < n.o.DedupeWindow {
		return true
	}
	if len(n.recent) >= 4096 {
		for k, at := range n.recent {
			if now.Sub(at) >= n.o.DedupeWindow {
				delete(n.recent, k)
			}
		}
		if len(n.recent) >= 4096 {
			n.recent = map[string]time.Time{}
		}
	}
	n.recent[key] = now
	return false
}

// enqueue admits a new job, or drops it (counted) when QueueSize jobs are
// pending.
func (n *Notifier) enqueue(j *job) bool {
	if n.stopped.Load() {
		n.m.Dropped("shutdown")
		return false
	}
	if n.pending.Add(1) > int64(n.o.QueueSize) {
		n.pending.Add(-1)
		n.m.Dropped("queue_full")
		return false
	}
	n.m.Pending(n.pending.Load())
	select {
	case n.queue <- j:
		return true
	default:
		n.drop("queue_full")
		return false
	}
}

// done ends a pending job.
func (n *Notifier) done() {
	n.m.Pending(n.pending.Add(-1))
}

func (n *Notifier) drop(reason string) {
	n.m.Dropped(reason)
	n.done()
}

func (n *Notifier) work(ctx context.Context, j *job) {
	if j.event != nil {
		n.fanOut(ctx, j.event)
		n.done()
		return
	}
	n.deliver(ctx, j.d)
}

// fanOut reads the configuration and queues one delivery per recipient
// and template.
func (n *Notifier) fanOut(ctx context.Context, e *eventJob) {
	f := e.fields
	log := n.log.WithValues("trigger", f.Trigger, "modelDeployment", f.Namespace+"/"+f.Name)
	loadCtx, cancel := context.WithTimeout(ctx, n.o.Timeout)
	cfg, err := n.o.Source.Load(loadCtx)
	cancel()
	if err != nil {
		n.m.Dropped("config_unavailable")
		log.Info("Notification dropped: the configuration could not be read", "error", err.Error())
		return
	}
	if cfg == nil {
		n.m.Dropped("not_configured")
		log.V(1).Info("Notification dropped: ConfigMap " + ConfigMapName + " does not exist")
		return
	}
	dests, problems := cfg.destinations(f.Trigger, e.subs)
	for _, p := range problems {
		n.m.Dropped("invalid_subscription")
		log.Info("Notification subscription refused", "problem", p)
	}
	count := 0
	for _, d := range dests {
		svc := cfg.services[d.service]
		for _, name := range cfg.triggers[f.Trigger] {
			if count == maxDeliveries {
				n.m.Dropped("too_many_deliveries")
				log.Info("Notification dropped: more than the deliveries one event may have", "max", maxDeliveries, "service", d.service)
				continue
			}
			msg, err := cfg.templates[name].render(svc.kind(), f)
			if err != nil {
				n.m.Dropped("template_error")
				log.Info("Notification dropped: its template failed", "template", name, "error", err.Error())
				continue
			}
			count++
			dl := &delivery{id: newID(), service: d.service, recipient: d.recipient, svc: svc, msg: msg, fields: f}
			if !n.enqueue(&job{d: dl}) {
				log.Info("Notification queue full; delivery dropped", "service", d.service, "recipient", d.recipient)
			}
		}
	}
}

func newID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// deliver makes one attempt; a failure worth retrying is queued again
// after a backoff, without holding a worker.
func (n *Notifier) deliver(ctx context.Context, d *delivery) {
	d.attempts++
	err := n.attempt(ctx, d)
	trigger := d.fields.Trigger
	if err == nil {
		n.m.Sent(d.service, trigger)
		n.done()
		return
	}
	if ctx.Err() != nil {
		// Stopping: the attempt was cut short, not refused.
		n.drop("shutdown")
		return
	}
	de, _ := err.(*deliveryError)
	retryable := de == nil || de.retryable
	if !retryable || d.attempts >= n.o.MaxAttempts {
		n.m.Failed(d.service, trigger)
		n.log.Info("Notification not delivered", "service", d.service, "recipient", d.recipient, "trigger", trigger,
			"modelDeployment", d.fields.Namespace+"/"+d.fields.Name, "attempts", d.attempts, "error", err.Error())
		n.done()
		return
	}
	wait := n.backoff(d.attempts)
	if de != nil && de.retryAfter > wait {
		wait = min(de.retryAfter, n.o.MaxBackoff)
	}
	n.m.Retried(d.service)
	n.log.V(1).Info("Notification attempt failed; retrying", "service", d.service, "trigger", trigger,
		"attempt", d.attempts, "after", wait.String(), "error", err.Error())
	n.o.Clock.AfterFunc(wait, func() {
		if n.stopped.Load() {
			n.drop("shutdown")
			return
		}
		select {
		case n.queue <- &job{d: d}:
		default:
			n.drop("queue_full")
		}
	})
}

// backoff is the wait after the attempt-th failed attempt.
func (n *Notifier) backoff(attempt int) time.Duration {
	d := n.o.Backoff
	for i := 1; i < attempt && d < n.o.MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, n.o.MaxBackoff)
	return jitter(d)
}
