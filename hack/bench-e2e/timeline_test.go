package main

import (
	"strings"
	"testing"
	"time"

	v1alpha1 "github.com/mlflow-operator/mlflow-operator/api/v1alpha1"
)

func at(start time.Time, ms int) time.Time { return start.Add(time.Duration(ms) * time.Millisecond) }

func TestBreakdown(t *testing.T) {
	start := time.Unix(1000, 0)
	tl := timeline{start: start, at: map[string]time.Time{
		"a": at(start, 300),
		"b": at(start, 250), // written in the same pass as a, seen just before it
		"d": at(start, 6200),
		"e": at(start, 31200),
	}}
	got := breakdown(tl, []string{"a", "b", "c", "d", "e"})
	want := []phase{
		{name: "a", seen: true, since: 300 * time.Millisecond, delta: 300 * time.Millisecond},
		{name: "b", seen: true, since: 250 * time.Millisecond, delta: 0},
		{name: "c"},
		{name: "d", seen: true, since: 6200 * time.Millisecond, delta: 5900 * time.Millisecond},
		{name: "e", seen: true, since: 31200 * time.Millisecond, delta: 25 * time.Second},
	}
	if len(got) != len(want) {
		t.Fatalf("%d phases, want %d", len(got), len(want))
	}
	var sum time.Duration
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("phase %d = %+v, want %+v", i, got[i], want[i])
		}
		sum += got[i].delta
	}
	// The steps add up to the total.
	if total, ok := tl.between("", "e"); !ok || total != sum {
		t.Errorf("total %v (%v), steps add up to %v", total, ok, sum)
	}
	if d, ok := tl.between("a", "d"); !ok || d != 5900*time.Millisecond {
		t.Errorf("a -> d = %v %v", d, ok)
	}
	for ms, want := range map[int]string{-5: "", 260: "b", 300: "a", 6199: "a", 40000: "e"} {
		if got := lastMarkBefore(tl, at(start, ms)); got != want {
			t.Errorf("lastMarkBefore(+%d ms) = %q, want %q", ms, got, want)
		}
	}
	if _, ok := tl.between("c", "d"); ok {
		t.Error("between a mark never seen and another: want not ok")
	}
}

func TestMedians(t *testing.T) {
	if m, ok := median([]time.Duration{3, 1, 2}); !ok || m != 2 {
		t.Errorf("median odd = %v", m)
	}
	if m, ok := median([]time.Duration{4, 1, 3, 2}); !ok || m != 2 {
		t.Errorf("median even = %v, want (2+3)/2 = 2", m)
	}
	if _, ok := median(nil); ok {
		t.Error("median of nothing: want not ok")
	}
	start := time.Unix(0, 0)
	runs := [][]phase{
		breakdown(timeline{start: start, at: map[string]time.Time{"a": at(start, 1000), "b": at(start, 3000)}}, []string{"a", "b"}),
		breakdown(timeline{start: start, at: map[string]time.Time{"a": at(start, 2000), "b": at(start, 7000)}}, []string{"a", "b"}),
		breakdown(timeline{start: start, at: map[string]time.Time{"b": at(start, 4000)}}, []string{"a", "b"}),
	}
	m := medianPhases(runs)
	if !m[0].seen || m[0].delta != 1500*time.Millisecond || m[0].since != 1500*time.Millisecond {
		t.Errorf("a: %+v, want the median of the two runs that saw it (1.5 s)", m[0])
	}
	// b's deltas: 2 s, 5 s, 4 s (from the start, a unseen).
	if !m[1].seen || m[1].delta != 4*time.Second || m[1].since != 4*time.Second {
		t.Errorf("b: %+v, want delta 4 s, since 4 s", m[1])
	}
	if got := medianOf([]timeline{{start: start}}, func(tl timeline) (time.Duration, bool) { return tl.between("", "x") }); got != "n/a" {
		t.Errorf("medianOf nothing seen = %q", got)
	}
}

func TestPickStrategies(t *testing.T) {
	known := []strategy{{name: "RollingUpdate"}, {name: "BlueGreen"}}
	for env, want := range map[string]string{
		"":                            "RollingUpdate,BlueGreen",
		"bluegreen":                   "BlueGreen",
		" BlueGreen , rollingupdate":  "BlueGreen,RollingUpdate",
		"RollingUpdate,rollingUpdate": "RollingUpdate",
	} {
		got, err := pickStrategies(env, known)
		if err != nil {
			t.Errorf("%q: %v", env, err)
			continue
		}
		var names []string
		for _, s := range got {
			names = append(names, s.name)
		}
		if s := strings.Join(names, ","); s != want {
			t.Errorf("%q: %s, want %s", env, s, want)
		}
	}
	for _, env := range []string{"Recreate", ",", "RollingUpdate,Recreate"} {
		if _, err := pickStrategies(env, known); err == nil {
			t.Errorf("%q: want an error", env)
		}
	}
	if len(strategies) == 0 || strategies[0].name != "RollingUpdate" {
		t.Errorf("the strategies must start with RollingUpdate: %+v", strategies)
	}
	// Every strategy the API has is measured, each by its own entry.
	for _, want := range []v1alpha1.RolloutStrategy{v1alpha1.StrategyRollingUpdate, v1alpha1.StrategyBlueGreen, v1alpha1.StrategyCanary} {
		got, err := pickStrategies(string(want), strategies)
		if err != nil || len(got) != 1 {
			t.Errorf("BENCH_STRATEGIES=%s: %v, %v", want, got, err)
			continue
		}
		md := &v1alpha1.ModelDeployment{}
		got[0].apply(md)
		if s := md.Spec.Rollout.Strategy; s != want && (s != "" || want != v1alpha1.StrategyRollingUpdate) {
			t.Errorf("BENCH_STRATEGIES=%s sets strategy %q", want, s)
		}
	}
}
