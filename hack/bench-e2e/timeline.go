package main

import (
	"fmt"
	"slices"
	"time"
)

// The pure part: a run is a start (the MLflow alias change) and the times
// at which named marks were first seen; a breakdown turns them into
// phases, and medians sum the runs up.

// timeline is one run.
type timeline struct {
	start time.Time
	// at is when each mark was first seen; a mark never seen is absent.
	at map[string]time.Time
}

// phase is one mark of a breakdown.
type phase struct {
	name string
	seen bool
	// since is the time from the start to the mark.
	since time.Duration
	// delta is the time from the latest earlier mark that was seen (the
	// start when none was) to this one; never negative: two marks seen
	// in the other order than listed (one reconcile pass writing both)
	// give the second one 0.
	delta time.Duration
}

// breakdown is the phases of t for the marks in order.
func breakdown(t timeline, marks []string) []phase {
	out := make([]phase, 0, len(marks))
	last := t.start
	for _, m := range marks {
		at, ok := t.at[m]
		if !ok {
			out = append(out, phase{name: m})
			continue
		}
		p := phase{name: m, seen: true, since: at.Sub(t.start), delta: max(at.Sub(last), 0)}
		if at.After(last) {
			last = at
		}
		out = append(out, p)
	}
	return out
}

// between is the time from mark a (or the start when a is "") to mark b,
// and whether both were seen.
func (t timeline) between(a, b string) (time.Duration, bool) {
	from := t.start
	if a != "" {
		at, ok := t.at[a]
		if !ok {
			return 0, false
		}
		from = at
	}
	to, ok := t.at[b]
	if !ok {
		return 0, false
	}
	return to.Sub(from), true
}

// medianPhases is, for each mark, the median of since and of delta over
// the runs that saw it (seen false when none did). The medians of the
// deltas need not add up to the median of the total.
func medianPhases(runs [][]phase) []phase {
	if len(runs) == 0 {
		return nil
	}
	out := make([]phase, len(runs[0]))
	for i := range out {
		out[i].name = runs[0][i].name
		var since, delta []time.Duration
		for _, r := range runs {
			if r[i].seen {
				since = append(since, r[i].since)
				delta = append(delta, r[i].delta)
			}
		}
		if len(since) > 0 {
			out[i].seen = true
			out[i].since, _ = median(since)
			out[i].delta, _ = median(delta)
		}
	}
	return out
}

// median of d (the mean of the two middle values for an even count);
// false when d is empty.
func median(d []time.Duration) (time.Duration, bool) {
	if len(d) == 0 {
		return 0, false
	}
	s := slices.Clone(d)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2], true
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2, true
}

// medianOf is the median of f over the runs where it is known, as text
// ("n/a" when none).
func medianOf(runs []timeline, f func(timeline) (time.Duration, bool)) string {
	var d []time.Duration
	for _, r := range runs {
		if v, ok := f(r); ok {
			d = append(d, v)
		}
	}
	m, ok := median(d)
	if !ok {
		return "n/a"
	}
	return secs(m)
}

// lastMarkBefore is the mark of t seen last at or before at ("" when at
// comes before them all): where in a run a failed request fell.
func lastMarkBefore(t timeline, at time.Time) string {
	name, when := "", time.Time{}
	for m, seen := range t.at {
		if !seen.After(at) && (name == "" || seen.After(when) || (seen.Equal(when) && m < name)) {
			name, when = m, seen
		}
	}
	return name
}

// secs is a duration in seconds, to the hundredth: watch timestamps are
// that precise, and some steps take a few tens of milliseconds.
func secs(d time.Duration) string { return fmt.Sprintf("%.2f s", d.Seconds()) }
