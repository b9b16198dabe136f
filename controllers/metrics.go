package controllers

import (
	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
)

// promotionSeconds is the time from a verified candidate's promotion to the
// production Deployment running it on every replica.
var promotionSeconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{
	Name:    "mlflow_operator_promotion_duration_seconds",
	Help:    "Time from promoting a verified model version to all production replicas serving it.",
	Buckets: prometheus.ExponentialBuckets(1, 2, 12),
}, []string{"namespace", "name"})

func init() { metrics.Registry.MustRegister(promotionSeconds) }
