package resolver

import (
	"math/rand/v2"
	"time"
)

// NextPoll is how long until a ModelDeployment polls the registry again,
// from when the answer it holds was given (answeredAt; zero means now): one
// interval after it, plus r (0 <= r < 1) times a tenth of the interval, so
// that the objects sharing one answer do not all ask at once. The first of
// them to come finds the answer expired and asks the registry; the others,
// within the tenth, reuse the new answer. Scheduling from the answer's time
// rather than from the reconcile keeps a change in the registry from going
// unseen for more than 1.1 intervals, however often events reconcile the
// object in between.
func NextPoll(answeredAt, now time.Time, interval time.Duration, r float64) time.Duration {
	if answeredAt.IsZero() || answeredAt.After(now) {
		answeredAt = now
	}
	d := answeredAt.Add(interval + time.Duration(r*0.1*float64(interval))).Sub(now)
	if d < interval/10 {
		d = interval / 10
	}
	return d
}

// Jitter spreads a wait of many objects over +-10% of d.
func Jitter(d time.Duration) time.Duration {
	return d + time.Duration((rand.Float64()*0.2-0.1)*float64(d))
}
