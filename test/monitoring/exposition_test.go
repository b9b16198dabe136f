package monitoring

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
	crmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	// What the operator's binary registers: the controllers and everything
	// they import (controller-runtime's own metrics included).
	_ "github.com/mlflow-operator/mlflow-operator/controllers"
	"github.com/mlflow-operator/mlflow-operator/internal/failure"
	"github.com/mlflow-operator/mlflow-operator/internal/metrics"
	"github.com/mlflow-operator/mlflow-operator/internal/mlflow"
)

// touchEverything records every metric of internal/metrics with every
// value its labels can take, so that every family has series to expose.
func touchEverything() {
	for _, r := range []string{metrics.BuildPushed, metrics.BuildReused, metrics.BuildFailed, metrics.BuildCanceled} {
		metrics.BuildFinished(r, 42*time.Second, 1<<20)
	}
	for _, err := range []error{nil, errors.New("other"), failure.New(failure.NotFound, failure.Alias, "", nil),
		failure.New(failure.NotReady, failure.Version, "", nil), failure.New(failure.Unauthorized, failure.MLflow, "", nil),
		failure.New(failure.Unreachable, failure.MLflow, "", nil), failure.New(failure.Invalid, failure.MLflow, "", nil),
		failure.New(failure.Refused, failure.MLflow, "", nil)} {
		for _, s := range []string{metrics.SourceMLflow, metrics.SourceCache, metrics.SourceConfig} {
			metrics.Resolved(err, s)
		}
	}
	for _, op := range mlflow.Operations {
		metrics.MLflowRequest(op, 200, 20*time.Millisecond)
		metrics.MLflowRequest(op, 0, 30*time.Second)
	}
	for _, r := range []string{metrics.DeliveryAccepted, metrics.DeliveryUnknownModel, metrics.DeliveryRelayed, metrics.DeliveryIgnored,
		metrics.DeliveryBadSignature, metrics.DeliveryStale, metrics.DeliveryReplayed, metrics.DeliveryBusy, metrics.DeliveryInvalid, metrics.DeliveryError} {
		metrics.Delivery(r)
	}
	for _, o := range []string{metrics.RolloutSucceeded, metrics.RolloutFailed, metrics.RolloutRolledBack} {
		metrics.RolloutEnded(o)
	}
	metrics.RolledBack("PodsFailing")
	metrics.VersionHeld("SmokeTestFailed")
	metrics.Promoted(metrics.TriggerWebhook, 40*time.Second)
	metrics.Promoted(metrics.TriggerPoll, 70*time.Second)
	metrics.Observe(metrics.State{Namespace: "team-a", Name: "iris", Model: "iris", Version: "3", ImageDigest: "sha256:0123", Ready: true})
	metrics.Observe(metrics.State{Namespace: "team-b", Name: "wine", Model: "wine", Stalled: true})
	n := metrics.DefaultNotifications
	n.Sent("slack", "on-rolled-back")
	n.Failed("teams", "on-build-failed")
	n.Retried("teams")
	for _, r := range []string{"queue_full", "shutdown", "config_unavailable", "not_configured", "invalid_subscription", "too_many_deliveries", "template_error"} {
		n.Dropped(r)
	}
	n.Pending(2)
}

// exposition is what the operator's metrics endpoint serves: the
// controller-runtime registry through promhttp, as its metrics server does.
func exposition(t *testing.T) []byte {
	t.Helper()
	return scrape(t, promhttp.HandlerFor(crmetrics.Registry, promhttp.HandlerOpts{ErrorHandling: promhttp.HTTPErrorOnError}))
}

// scrape is what a metrics handler serves to a scraper asking for the text
// format.
func scrape(t *testing.T, h http.Handler) []byte {
	t.Helper()
	srv := httptest.NewServer(h)
	defer srv.Close()
	req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
	// The text format promtool reads (not protobuf, not OpenMetrics).
	req.Header.Set("Accept", "text/plain")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("metrics endpoint: HTTP %d %v\n%s", resp.StatusCode, err, body)
	}
	return body
}

// ourFamilies are the operator's own metric families and their types, as
// the registry gathers them (after touchEverything).
func ourFamilies(t *testing.T) map[string]dto.MetricType {
	t.Helper()
	touchEverything()
	families, err := crmetrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]dto.MetricType{}
	for _, f := range families {
		if strings.HasPrefix(f.GetName(), metrics.Namespace+"_") {
			out[f.GetName()] = f.GetType()
		}
	}
	return out
}

// TestExpositionPassesPromtool: `promtool check metrics` finds nothing to
// say about the operator's metrics in what its endpoint serves, with every
// metric touched. What it says about controller-runtime's and client-go's
// own metrics is logged, not ours to fix.
func TestExpositionPassesPromtool(t *testing.T) {
	requirePromtool(t)
	touchEverything()
	body := exposition(t)
	for _, name := range []string{"mlflow_operator_builds_total", "mlflow_operator_modeldeployment_info", "mlflow_operator_promotion_duration_seconds_bucket"} {
		if !strings.Contains(string(body), "\n"+name+"{") {
			t.Fatalf("the exposition lacks %s:\n%s", name, body)
		}
	}
	out, err := promtool(t, "", body, "check", "metrics")
	var ours, theirs []string
	for _, line := range strings.Split(out, "\n") {
		switch {
		case line == "":
		case strings.HasPrefix(line, metrics.Namespace+"_"):
			ours = append(ours, line)
		default:
			theirs = append(theirs, line)
		}
	}
	if len(theirs) > 0 {
		t.Logf("promtool on controller-runtime's and client-go's metrics:\n%s", strings.Join(theirs, "\n"))
	}
	if len(ours) > 0 {
		t.Errorf("promtool check metrics on the operator's metrics:\n%s", strings.Join(ours, "\n"))
	}
	if err != nil && len(theirs) == 0 {
		t.Errorf("promtool check metrics failed without saying why: %v\n%s", err, out)
	}
}

// TestEveryMetricIsDocumented: docs/operations.md names every metric the
// operator defines.
func TestEveryMetricIsDocumented(t *testing.T) {
	doc := string(repoFile(t, "docs/operations.md"))
	families := ourFamilies(t)
	if len(families) < 14 {
		t.Fatalf("only %d families gathered: %v", len(families), families)
	}
	var missing []string
	for name := range families {
		if !strings.Contains(doc, "`"+name+"`") {
			missing = append(missing, name)
		}
	}
	slices.Sort(missing)
	if len(missing) > 0 {
		t.Errorf("docs/operations.md does not list %v", missing)
	}
}
