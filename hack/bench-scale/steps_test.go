package main

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1alpha1 "github.com/mlflow-operator/mlflow-operator/api/v1alpha1"
)

func sec(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

func TestStepsReachedAndIntervals(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(s float64) time.Time { return start.Add(sec(s)) }
	seen := func(resolved, image, verified float64) map[string]trueAt {
		m := map[string]trueAt{}
		for typ, s := range map[string]float64{v1alpha1.ConditionModelResolved: resolved, v1alpha1.ConditionImageReady: image,
			v1alpha1.ConditionCandidateVerified: verified} {
			if s >= 0 {
				m[typ] = trueAt{seen: at(s), transition: at(s).Truncate(time.Second)}
			}
		}
		return m
	}
	createdAt := []time.Time{at(0), at(1), at(2)}
	cond := []map[string]trueAt{seen(1, 11, 13), seen(2, 21, 24), seen(3, -1, -1)}
	ready := []time.Time{at(14), at(30), {}}
	objs := stepsOf(start, createdAt, cond, ready)
	if objs[1].created != sec(1) || objs[1].at[3] != (stepTime{at: sec(30), ok: true}) || objs[2].at[1].ok || objs[2].at[3].ok {
		t.Fatalf("steps: %+v", objs)
	}
	r := reached(objs)
	want := []struct {
		name             string
		n                int
		first, last, p50 float64
	}{{"created", 3, 0, 2, 1}, {"ModelResolved", 3, 1, 3, 2}, {"ImageReady", 2, 11, 21, 11},
		{"CandidateVerified", 2, 13, 24, 13}, {"Ready", 2, 14, 30, 14}}
	for i, w := range want {
		if r[i].name != w.name || r[i].objects != w.n || r[i].first != sec(w.first) || r[i].max != sec(w.last) || r[i].p50 != sec(w.p50) {
			t.Errorf("reached[%d] = %+v, want %+v", i, r[i], w)
		}
	}
	iv := intervals(objs)
	// create -> resolved: 1, 1, 1; resolved -> image: 10, 19; image ->
	// verified: 2, 3; verified -> Ready: 1, 6.
	wantIv := []struct {
		name          string
		n             int
		p50, p90, max float64
	}{{"create -> ModelResolved", 3, 1, 1, 1}, {"ModelResolved -> ImageReady", 2, 10, 19, 19},
		{"ImageReady -> CandidateVerified", 2, 2, 3, 3}, {"CandidateVerified -> Ready", 2, 1, 6, 6}}
	for i, w := range wantIv {
		g := iv[i]
		if g.name != w.name || g.objects != w.n || g.p50 != sec(w.p50) || g.p90 != sec(w.p90) || g.max != sec(w.max) {
			t.Errorf("intervals[%d] = %+v, want %+v", i, g, w)
		}
		if intervalName(i) != w.name {
			t.Errorf("intervalName(%d) = %q", i, intervalName(i))
		}
	}
	// Seen 0 to 0.9 s after the whole second each was set in.
	lag := statusLag(cond)
	if lag.objects != 7 || lag.max > time.Second || lag.first < 0 {
		t.Errorf("lag = %+v", lag)
	}
}

func TestCurve(t *testing.T) {
	objs := []objectSteps{
		{created: sec(1), at: []stepTime{{sec(2), true}, {sec(12), true}, {sec(13), true}, {sec(25), true}}},
		{created: sec(2), at: []stepTime{{sec(3), true}, {}, {}, {}}},
	}
	samples := []opsSample{{at: sec(5), depth: 7}, {at: sec(10.5), depth: 3, builds: 1}, {at: sec(20.2), depth: 0, builds: 2}}
	rows := curve(objs, samples, 10*time.Second, sec(25))
	if len(rows) != 3 {
		t.Fatalf("rows = %+v", rows)
	}
	want := []struct {
		at      float64
		created int
		reached []int
		depth   float64
	}{{10, 2, []int{2, 0, 0, 0}, 7}, {20, 2, []int{2, 1, 1, 0}, 3}, {25, 2, []int{2, 1, 1, 1}, 0}}
	for i, w := range want {
		r := rows[i]
		if r.at != sec(w.at) || r.created != w.created || !r.sampled || r.sample.depth != w.depth || !slices.Equal(r.reached, w.reached) {
			t.Errorf("row %d = %+v, want %+v", i, r, w)
		}
	}
	if rows := curve(objs, nil, 10*time.Second, sec(5)); len(rows) != 1 || rows[0].sampled || rows[0].at != sec(5) {
		t.Errorf("short curve = %+v", rows)
	}
}

func TestTrackerNotesFirstTrue(t *testing.T) {
	tr := newTracker()
	tr.expect("a", "1")
	set := time.Date(2026, 1, 1, 0, 0, 5, 0, time.UTC)
	md := &v1alpha1.ModelDeployment{}
	md.Name = "a"
	md.Status.Conditions = []metav1.Condition{
		{Type: v1alpha1.ConditionModelResolved, Status: metav1.ConditionTrue, LastTransitionTime: metav1.NewTime(set)},
		{Type: v1alpha1.ConditionImageReady, Status: metav1.ConditionFalse, LastTransitionTime: metav1.NewTime(set)},
	}
	tr.seen(md, true)
	first := tr.conditionTimes([]string{"a"})[0]
	if len(first) != 1 || first[v1alpha1.ConditionModelResolved].transition != set {
		t.Fatalf("first = %+v", first)
	}
	md.Status.Conditions[1].Status = metav1.ConditionTrue
	md.Status.Conditions[0].LastTransitionTime = metav1.NewTime(set.Add(time.Hour))
	tr.seen(md, true)
	got := tr.conditionTimes([]string{"a", "b"})
	if len(got[0]) != 2 || got[0][v1alpha1.ConditionModelResolved] != first[v1alpha1.ConditionModelResolved] || got[1] != nil {
		t.Errorf("after the second change: %+v", got)
	}
}

func TestAuditServerTime(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	lines := `{"verb":"patch","stage":"ResponseComplete","requestReceivedTimestamp":"2026-01-01T00:00:01.000000Z","stageTimestamp":"2026-01-01T00:00:01.025000Z","objectRef":{"resource":"deployments"},"responseStatus":{"code":200}}
{"verb":"get","stage":"ResponseComplete","requestReceivedTimestamp":"2026-01-01T00:00:02.000000Z","stageTimestamp":"2026-01-01T00:00:02.005000Z","objectRef":{"resource":"services"},"responseStatus":{"code":200}}
{"verb":"watch","stage":"ResponseStarted","requestReceivedTimestamp":"2026-01-01T00:00:03.000000Z","stageTimestamp":"2026-01-01T00:00:03.001000Z","objectRef":{"resource":"pods"},"responseStatus":{"code":200}}
`
	if err := os.WriteFile(path, []byte(lines), 0o644); err != nil {
		t.Fatal(err)
	}
	a := &auditLog{path: path}
	from := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c := a.between(from, from.Add(time.Minute))
	l := c.latency()
	if c.all != 3 || l.objects != 2 || l.max != 25*time.Millisecond || l.first != 5*time.Millisecond || c.serverSeconds < 0.0299 || c.serverSeconds > 0.0301 {
		t.Errorf("counts %+v, latency %+v", c, l)
	}
}
