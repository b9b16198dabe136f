// Package metricstest reads the operator's metrics back from
// controller-runtime's registry, for the tests of the packages that record
// them.
package metricstest

import (
	"testing"

	dto "github.com/prometheus/client_model/go"
	crmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
)

// Value is the value of the series of family name with exactly labels:
// a counter's or gauge's value, a histogram's sample count. ok is false
// when there is no such series.
func Value(t testing.TB, name string, labels map[string]string) (value float64, ok bool) {
	t.Helper()
	families, err := crmetrics.Registry.Gather()
	if err != nil {
		t.Fatalf("gathering the metrics: %v", err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			if !sameLabels(m.GetLabel(), labels) {
				continue
			}
			switch {
			case m.Counter != nil:
				return m.Counter.GetValue(), true
			case m.Gauge != nil:
				return m.Gauge.GetValue(), true
			case m.Histogram != nil:
				return float64(m.Histogram.GetSampleCount()), true
			}
		}
	}
	return 0, false
}

// Sum is the sum of the observations of a histogram's series, 0 when
// there is no such series.
func Sum(t testing.TB, name string, labels map[string]string) float64 {
	t.Helper()
	families, err := crmetrics.Registry.Gather()
	if err != nil {
		t.Fatalf("gathering the metrics: %v", err)
	}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			if f.GetName() == name && m.Histogram != nil && sameLabels(m.GetLabel(), labels) {
				return m.Histogram.GetSampleSum()
			}
		}
	}
	return 0
}

// Series are the label sets of family name's series that hold every label
// of match.
func Series(t testing.TB, name string, match map[string]string) []map[string]string {
	t.Helper()
	families, err := crmetrics.Registry.Gather()
	if err != nil {
		t.Fatalf("gathering the metrics: %v", err)
	}
	var out []map[string]string
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	series:
		for _, m := range f.GetMetric() {
			l := map[string]string{}
			for _, p := range m.GetLabel() {
				l[p.GetName()] = p.GetValue()
			}
			for k, v := range match {
				if l[k] != v {
					continue series
				}
			}
			out = append(out, l)
		}
	}
	return out
}

// Total is the sum of the counter values of family name's series that hold
// every label of match (e.g. every status code of one method).
func Total(t testing.TB, name string, match map[string]string) float64 {
	t.Helper()
	families, err := crmetrics.Registry.Gather()
	if err != nil {
		t.Fatalf("gathering the metrics: %v", err)
	}
	total := 0.0
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	series:
		for _, m := range f.GetMetric() {
			for k, v := range match {
				found := false
				for _, p := range m.GetLabel() {
					if p.GetName() == k && p.GetValue() == v {
						found = true
					}
				}
				if !found {
					continue series
				}
			}
			total += m.GetCounter().GetValue()
		}
	}
	return total
}

// Count is Value, 0 when there is no such series (a counter never
// incremented).
func Count(t testing.TB, name string, labels map[string]string) float64 {
	t.Helper()
	v, _ := Value(t, name, labels)
	return v
}

func sameLabels(got []*dto.LabelPair, want map[string]string) bool {
	if len(got) != len(want) {
		return false
	}
	for _, l := range got {
		if v, ok := want[l.GetName()]; !ok || v != l.GetValue() {
			return false
		}
	}
	return true
}
