package resolver

import (
	"testing"
	"time"
)

func TestNextPoll(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	const interval = time.Minute
	for _, tc := range []struct {
		name     string
		answered time.Time
		r        float64
		want     time.Duration
	}{
		{"fresh answer, no spread", now, 0, time.Minute},
		{"fresh answer, most spread", now, 0.999, time.Minute + 5994*time.Millisecond},
		{"shared answer 30s old", now.Add(-30 * time.Second), 0.5, 33 * time.Second},
		{"shared answer 48s old (the oldest the cache gives)", now.Add(-48 * time.Second), 0, 12 * time.Second},
		{"zero means now", time.Time{}, 0.5, 63 * time.Second},
		{"a clock ahead of ours means now", now.Add(time.Hour), 0, time.Minute},
		{"an answer older than the interval: soon, not at once", now.Add(-2 * time.Minute), 0, 6 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := NextPoll(tc.answered, now, interval, tc.r); got != tc.want {
				t.Errorf("NextPoll = %s, want %s", got, tc.want)
			}
		})
	}
}
