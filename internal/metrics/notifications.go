package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	crmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
)

// Notifications are the metrics of internal/notify. Their labels are the
// administrator's service names and the fixed triggers and drop reasons,
// never a tenant's text. A set is its own type (not package variables like
// the others) so that notify's tests count on a registry of their own.
type Notifications struct {
	sent, failed *prometheus.CounterVec
	retries      *prometheus.CounterVec
	dropped      *prometheus.CounterVec
	pending      prometheus.Gauge
}

// NewNotifications registers a set of notification metrics in reg.
func NewNotifications(reg prometheus.Registerer) *Notifications {
	m := &Notifications{
		sent: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "notifications_sent_total",
			Help: "Notifications delivered, by service and trigger.",
		}, []string{"service", "trigger"}),
		failed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "notifications_failed_total",
			Help: "Notifications given up on (refused, or still failing after the last retry), by service and trigger.",
		}, []string{"service", "trigger"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "notifications_retries_total",
			Help: "Delivery attempts that failed and were retried, by service.",
		}, []string{"service"}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "notifications_dropped_total",
			Help: "Notifications not attempted, by reason: queue_full, shutdown, config_unavailable, not_configured, invalid_subscription, too_many_deliveries, template_error.",
		}, []string{"reason"}),
		pending: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: Namespace, Name: "notifications_pending",
			Help: "Notifications queued, being delivered or waiting for a retry.",
		}),
	}
	reg.MustRegister(m.sent, m.failed, m.retries, m.dropped, m.pending)
	return m
}

// DefaultNotifications are served with the manager's metrics.
var DefaultNotifications = NewNotifications(crmetrics.Registry)

// Sent counts a delivered notification.
func (m *Notifications) Sent(service, trigger string) { m.sent.WithLabelValues(service, trigger).Inc() }

// Failed counts a notification given up on.
func (m *Notifications) Failed(service, trigger string) {
	m.failed.WithLabelValues(service, trigger).Inc()
}

// Retried counts a failed attempt that will be retried.
func (m *Notifications) Retried(service string) { m.retries.WithLabelValues(service).Inc() }

// Dropped counts a notification not attempted.
func (m *Notifications) Dropped(reason string) { m.dropped.WithLabelValues(reason).Inc() }

// Pending sets how many notifications are queued or in flight.
func (m *Notifications) Pending(n int64) { m.pending.Set(float64(n)) }
