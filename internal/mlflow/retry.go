package mlflow

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/mlflow-operator/mlflow-operator/internal/failure"
)

// tryFunc is one try of a request. again tells whether another try may
// help; after is how long the server asked to wait first (Retry-After), 0
// when it did not say.
type tryFunc func() (again bool, after time.Duration, err error)

// retry runs try until it succeeds, fails in a way another try cannot help,
// or the c.retries retries after the first try are used up, and returns the
// last try's error. Between tries it waits as c.backoff says, or as long as
// the server asked, at most retryMax: a server that asks for minutes should
// not hold a reconcile that long. It gives up as soon as ctx ends.
func (c *Client) retry(ctx context.Context, op string, try tryFunc) error {
	b := c.backoff()
	for attempt := 0; ; attempt++ {
		again, after, err := try()
		if err == nil || !again || attempt >= c.retries {
			return err
		}
		// Step also when the server said how long, so the backoff after
		// it is the one for this many tries.
		d := b.Step()
		if after > 0 {
			d = min(after, c.retryMax)
		}
		if serr := c.sleep(ctx, d); serr != nil {
			return failure.New(failure.Unreachable, failure.MLflow, op, serr)
		}
	}
}

// backoff is the schedule of waits between tries: exponential from
// retryBase, doubling, never over retryMax, each wait drawn between half the
// step and the step so that operators restarted together spread out.
// wait.Jitter only lengthens a step (to between d and d*(1+Jitter)), hence
// the halves: with Jitter 1 they give back waits between d/2 and d. Steps
// is not what stops the retries (reaching Cap zeroes it, after which Step
// keeps answering the capped wait); retry counts the tries itself.
func (c *Client) backoff() wait.Backoff {
	first := c.retryBase
	if first <= 0 || first > c.retryMax {
		first = c.retryMax
	}
	return wait.Backoff{Duration: first / 2, Factor: 2, Jitter: 1, Steps: c.retries + 1, Cap: c.retryMax / 2}
}

// sleepCtx waits d, or less when ctx ends first.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// retryable tells whether an answer with status is worth another try: the
// server is overloaded or failing, which passes. 501 does not.
func retryable(status int) bool {
	return status == http.StatusTooManyRequests || (status >= 500 && status != http.StatusNotImplemented)
}

// retryAfter is the wait a Retry-After header in seconds asks for, 0 when
// there is none (an HTTP date is not honoured: MLflow and its proxies send
// seconds).
func retryAfter(resp *http.Response) time.Duration {
	if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s > 0 {
		return time.Duration(s) * time.Second
	}
	return 0
}
