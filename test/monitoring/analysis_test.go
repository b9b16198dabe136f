package monitoring

import (
	"context"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/mlflow-operator/mlflow-operator/internal/analysis"
	"github.com/mlflow-operator/mlflow-operator/test/harness/promserver"
	"github.com/mlflow-operator/mlflow-operator/test/harness/testenv"
)

// routePrefix is where the test's Prometheus serves (--web.route-prefix),
// as behind a proxy that maps it under a path: the client must keep the
// path of its URL.
const routePrefix = "/prometheus"

// TestAnalysisPrometheus asks a real Prometheus, through the client the
// Canary analysis uses, for the values and the failures a tenant's query
// can give: a one-sample vector, a scalar, no sample, two samples, a syntax
// error, NaN, and a metric of its self-scrape. Every query goes with a
// deadline, so Prometheus also parses the time and timeout the client
// sends.
func TestAnalysisPrometheus(t *testing.T) {
	base := promserver.Start(t, routePrefix)
	p := &analysis.Prometheus{URL: base}
	value := func(query string) (float64, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return p.Value(ctx, query)
	}

	for _, tc := range []struct {
		query string
		want  float64
	}{
		{`vector(0.97)`, 0.97},
		{`1 - 0.25`, 0.75},
		{`sum(vector(1) or label_replace(vector(2), "a", "x", "", ""))`, 3},
		{`vector(1) / 0`, math.Inf(1)},
	} {
		if v, err := value(tc.query); err != nil || v != tc.want {
			t.Errorf("%s: %v, %v; want %v", tc.query, v, err, tc.want)
		}
	}

	for _, tc := range []struct {
		query string
		err   string
	}{
		{`vector(1) > 2`, "the query returned no sample"},
		{`label_replace(vector(1), "a", "x", "", "") or label_replace(vector(2), "a", "y", "", "")`,
			"the query returned 2 samples, one is needed (aggregate it, e.g. with sum() or max())"},
		// Prometheus' own words, after the status and its error type.
		{`sum(`, `Prometheus answered 400 Bad Request (bad_data): invalid parameter "query": 1:5: parse error: unclosed left parenthesis`},
		{`0/0`, "the query's value is NaN (e.g. a division by zero with no traffic)"},
		{`vector(1)[5m:1m]`, "range vector (matrix)"},
		{`"text"`, "the query returned a string"},
	} {
		if v, err := value(tc.query); err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("%s: %v, %v; want an error saying %q", tc.query, v, err, tc.err)
		}
	}

	// Without the path prefix, the URL reaches no API.
	if v, err := (&analysis.Prometheus{URL: strings.TrimSuffix(base, routePrefix)}).Value(context.Background(), `vector(1)`); err == nil ||
		!strings.Contains(err.Error(), "404 Not Found (is --analysis-prometheus-url the server's base URL?)") {
		t.Errorf("URL without the path prefix: %v, %v; want a 404", v, err)
	}

	// The self-scrape's first samples, within a few scrape intervals.
	start := time.Now()
	testenv.Eventually(t, 15*time.Second, "up of the self-scrape", func() error {
		v, err := value(`up{job="prometheus"}`)
		if err != nil {
			return err
		}
		if v != 1 {
			return fmt.Errorf("up is %v", v)
		}
		return nil
	})
	t.Logf("up{job=\"prometheus\"} = 1 after %s", time.Since(start).Round(100*time.Millisecond))
}
