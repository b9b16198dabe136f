package notify

import (
	"github.com/prometheus/client_golang/prometheus"
	crmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
)

// metrics of the notifications. Labels are the administrator's service
// names and the fixed triggers and reasons: never a tenant's text.
type metrics struct {
	sent, failed *prometheus.CounterVec
	retries      *prometheus.CounterVec
	dropped      *prometheus.CounterVec
	queue        prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		sent: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mlflow_operator_notifications_sent_total",
			Help: "Notifications delivered, by service and trigger.",
		}, []string{"service", "trigger"}),
		failed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mlflow_operator_notifications_failed_total",
			Help: "Notifications given up on (refused, or still failing after the last retry), by service and trigger.",
		}, []string{"service", "trigger"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mlflow_operator_notifications_retries_total",
			Help: "Delivery attempts that failed and were retried, by service.",
		}, []string{"service"}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mlflow_operator_notifications_dropped_total",
			Help: "Notifications not attempted, by reason: queue_full, shutdown, config_unavailable, not_configured, invalid_subscription, too_many_deliveries, template_error.",
		}, []string{"reason"}),
		queue: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "mlflow_operator_notifications_pending",
			Help: "Notifications queued, being delivered or waiting for a retry.",
		}),
	}
	reg.MustRegister(m.sent, m.failed, m.retries, m.dropped, m.queue)
	return m
}

// defaultMetrics are served with the manager's metrics.
var defaultMetrics = newMetrics(crmetrics.Registry)
