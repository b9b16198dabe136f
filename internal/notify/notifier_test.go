package notify

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/mlflow-operator/mlflow-operator/internal/metrics"
)

// webhookConfig is one generic webhook "hook" posting to url.
func webhookConfig(t *testing.T, url string) *Config {
	return mustParse(t, map[string]string{"service.webhook.hook": "url: $url\nsecret: $hmac\n"},
		map[string][]byte{"url": []byte(url), "hmac": []byte("hmac-key-never-logged")})
}

var subscribed = map[string]string{SubscribePrefix + "on-promoted.hook": ""}

func TestRetriesWithBackoffOnAFakeClock(t *testing.T) {
	hook := newReceiver(t, func(w http.ResponseWriter, n int) {
		if n <= 2 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		_, _ = io.WriteString(w, "ok")
	})
	clock := clocktesting.NewFakeClock(now)
	n := start(t, staticSource{cfg: webhookConfig(t, hook.URL)}, func(o *Options) {
		o.Clock, o.Backoff, o.MaxBackoff = clock, 2*time.Second, time.Minute
	})
	promote(n.Notifier, modelDeployment(subscribed))

	requests := func(want int, what string) {
		t.Helper()
		waitFor(t, what, func() bool { return len(hook.requests()) == want })
		waitFor(t, "a retry is scheduled", clock.HasWaiters)
	}
	requests(1, "the first attempt")
	// The first retry waits 2s ±20%: not before 1.6s, surely after 2.4s.
	clock.Step(1500 * time.Millisecond)
	time.Sleep(50 * time.Millisecond)
	if got := len(hook.requests()); got != 1 {
		t.Fatalf("%d attempts 1.5s after the first, want 1", got)
	}
	clock.Step(time.Second)
	requests(2, "the first retry")
	// The second waits 4s ±20%.
	clock.Step(3 * time.Second)
	time.Sleep(50 * time.Millisecond)
	if got := len(hook.requests()); got != 2 {
		t.Fatalf("%d attempts 3s after the second, want 2", got)
	}
	clock.Step(2 * time.Second)
	waitFor(t, "the third attempt is delivered", func() bool { return n.sent("hook", TriggerPromoted) == 1 })
	if r := n.retries("hook"); r != 2 {
		t.Errorf("%v retries counted, want 2", r)
	}
	// The retries keep the delivery's ID; the attempts are signed anew.
	got := hook.requests()
	if got[0].header.Get(HeaderDelivery) != got[2].header.Get(HeaderDelivery) {
		t.Errorf("a retry changed the delivery ID")
	}
}

func TestRetryAfterIsHonoured(t *testing.T) {
	hook := newReceiver(t, func(w http.ResponseWriter, n int) {
		if n == 1 {
			w.Header().Set("Retry-After", "30")
			w.WriteHeader(http.StatusTooManyRequests)
		}
	})
	clock := clocktesting.NewFakeClock(now)
	n := start(t, staticSource{cfg: webhookConfig(t, hook.URL)}, func(o *Options) {
		o.Clock, o.Backoff, o.MaxBackoff = clock, time.Second, time.Minute
	})
	promote(n.Notifier, modelDeployment(subscribed))
	waitFor(t, "a retry is scheduled", clock.HasWaiters)
	clock.Step(29 * time.Second)
	time.Sleep(50 * time.Millisecond)
	if got := len(hook.requests()); got != 1 {
		t.Fatalf("retried before Retry-After: %d attempts", got)
	}
	clock.Step(2 * time.Second)
	waitFor(t, "delivered after Retry-After", func() bool { return n.sent("hook", TriggerPromoted) == 1 })
}

func TestRefusedDeliveryIsNotRetried(t *testing.T) {
	hook := newReceiver(t, func(w http.ResponseWriter, _ int) { http.Error(w, "no such hook", http.StatusNotFound) })
	n := start(t, staticSource{cfg: webhookConfig(t, hook.URL)})
	promote(n.Notifier, modelDeployment(subscribed))
	waitFor(t, "counted as failed", func() bool { return n.failed("hook", TriggerPromoted) == 1 })
	if got := len(hook.requests()); got != 1 {
		t.Errorf("%d attempts, want 1", got)
	}
	if !strings.Contains(n.log.String(), "answered 404 Not Found: no such hook") {
		t.Errorf("log does not say why:\n%s", n.log)
	}
}

// A receiver that is down costs a metric and a log line: no reconcile
// waits, nothing else is delayed, no secret is logged.
func TestDownReceiverCostsAMetricAndALogLine(t *testing.T) {
	down := httptest.NewServer(http.NotFoundHandler())
	url := down.URL + "/services/T0/B0/secret-path"
	down.Close()
	cfg := mustParse(t, map[string]string{
		"service.slack":        "recipientURLs:\n  alerts: $slack-url\n",
		"service.webhook.hook": "url: $url\nsecret: $hmac\n",
	}, map[string][]byte{"slack-url": []byte(url), "url": []byte(url), "hmac": []byte("hmac-key-never-logged")})
	n := start(t, staticSource{cfg: cfg}, func(o *Options) { o.MaxAttempts = 3 })

	md := modelDeployment(map[string]string{SubscribePrefix + "on-promoted.slack": "alerts", SubscribePrefix + "on-promoted.hook": ""})
	began := time.Now()
	promote(n.Notifier, md)
	if d := time.Since(began); d > 200*time.Millisecond {
		t.Errorf("Notify took %s", d)
	}
	waitFor(t, "both given up", func() bool {
		return n.failed("slack", TriggerPromoted) == 1 && n.failed("hook", TriggerPromoted) == 1
	})
	if got := n.log.count("Notification not delivered"); got != 2 {
		t.Errorf("%d log lines, want one per delivery:\n%s", got, n.log)
	}
	if n.retries("slack") != 2 || n.retries("hook") != 2 {
		t.Errorf("retries: slack %v, hook %v; want 2 each", n.retries("slack"), n.retries("hook"))
	}
	log := n.log.String()
	for _, secret := range []string{"secret-path", "/services/", "hmac-key-never-logged"} {
		if strings.Contains(log, secret) {
			t.Errorf("the log holds %q:\n%s", secret, log)
		}
	}
	if !strings.Contains(log, "POST "+down.URL) {
		t.Errorf("the log does not name the receiver's host:\n%s", log)
	}
	waitFor(t, "nothing pending", func() bool { return n.pending() == 0 })
}

// A receiver that accepts connections and never answers holds an attempt
// for Timeout at most, and after a few attempts none at all.
func TestHangingReceiverIsBoundedAndSkipped(t *testing.T) {
	release := make(chan struct{})
	hook := newReceiver(t, func(http.ResponseWriter, int) { <-release })
	t.Cleanup(func() { close(release) })
	n := start(t, staticSource{cfg: webhookConfig(t, hook.URL)}, func(o *Options) {
		o.Timeout, o.MaxAttempts = 100*time.Millisecond, 10
	})
	promote(n.Notifier, modelDeployment(subscribed))
	waitFor(t, "given up", func() bool { return n.failed("hook", TriggerPromoted) == 1 })
	if got := len(hook.requests()); got != breakerFailures {
		t.Errorf("%d attempts reached the receiver, want %d (then the breaker skips it)", got, breakerFailures)
	}
	if !strings.Contains(n.log.String(), "not tried") || n.log.count("keeps failing") != 1 {
		t.Errorf("log:\n%s", n.log)
	}
}

func TestQueueOverflowDropsWithoutBlocking(t *testing.T) {
	release := make(chan struct{})
	hook := newReceiver(t, func(http.ResponseWriter, int) { <-release })
	n := start(t, staticSource{cfg: webhookConfig(t, hook.URL)}, func(o *Options) {
		o.Workers, o.QueueSize, o.Timeout = 1, 2, 5*time.Second
	})
	event := func(i int) {
		md := modelDeployment(subscribed)
		md.Name = fmt.Sprintf("iris-%d", i)
		began := time.Now()
		promote(n.Notifier, md)
		if d := time.Since(began); d > 200*time.Millisecond {
			t.Errorf("Notify took %s", d)
		}
	}
	event(0)
	waitFor(t, "the only worker is busy", func() bool { return len(hook.requests()) == 1 })
	for i := 1; i <= 5; i++ {
		event(i)
	}
	// One more fits (the delivery in flight is the other); four are dropped.
	if d := n.dropped("queue_full"); d != 4 {
		t.Errorf("%v dropped, want 4", d)
	}
	if got := n.log.count("queue full"); got != 4 {
		t.Errorf("%d log lines about the full queue, want 4", got)
	}
	close(release)
	waitFor(t, "the admitted events delivered", func() bool { return n.sent("hook", TriggerPromoted) == 2 })
}

func TestRedirectsStayOnTheHost(t *testing.T) {
	elsewhere := newReceiver(t, nil)
	hook := newReceiver(t, func(w http.ResponseWriter, _ int) {
		w.Header().Set("Location", elsewhere.URL+"/stolen")
		w.WriteHeader(http.StatusTemporaryRedirect)
	})
	n := start(t, staticSource{cfg: webhookConfig(t, hook.URL+"/hook")})
	promote(n.Notifier, modelDeployment(subscribed))
	waitFor(t, "refused", func() bool { return n.failed("hook", TriggerPromoted) == 1 })
	if len(elsewhere.requests()) != 0 || len(hook.requests()) != 1 {
		t.Errorf("followed a redirect to another host, or retried it")
	}

	// To the same host it is followed.
	same := newReceiver(t, func(w http.ResponseWriter, n int) {
		if n == 1 {
			w.Header().Set("Location", "/moved")
			w.WriteHeader(http.StatusPermanentRedirect)
		}
	})
	n2 := start(t, staticSource{cfg: webhookConfig(t, same.URL+"/hook")})
	promote(n2.Notifier, modelDeployment(subscribed))
	waitFor(t, "delivered", func() bool { return n2.sent("hook", TriggerPromoted) == 1 })
	if got := same.requests(); len(got) != 2 || got[1].path != "/moved" || got[1].body != got[0].body {
		t.Errorf("the redirect was not followed with the body: %+v", got)
	}
}

func TestHugeAnswerIsReadBounded(t *testing.T) {
	slack := newReceiver(t, func(w http.ResponseWriter, _ int) {
		_, _ = io.WriteString(w, `{"ok":false,"error":"`+strings.Repeat("x", 10<<20)+`"}`)
	})
	cfg := mustParse(t, map[string]string{"service.slack": "token: $t\napiURL: " + slack.URL + "\n"},
		map[string][]byte{"t": []byte("xoxb-never-logged")})
	n := start(t, staticSource{cfg: cfg}, func(o *Options) { o.MaxAttempts = 1 })
	promote(n.Notifier, modelDeployment(map[string]string{SubscribePrefix + "on-promoted.slack": "alerts"}))
	waitFor(t, "failed", func() bool { return n.failed("slack", TriggerPromoted) == 1 })
	log := n.log.String()
	if len(log) > 2000 || strings.Contains(log, "xoxb-never-logged") {
		t.Errorf("log of %d bytes:\n%s", len(log), head(log, 500))
	}
}

func head(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

func TestConfigurationProblemsDropAndLog(t *testing.T) {
	t.Run("unreadable", func(t *testing.T) {
		n := start(t, staticSource{err: errors.New("configmaps is forbidden")})
		promote(n.Notifier, modelDeployment(subscribed))
		waitFor(t, "dropped", func() bool { return n.dropped("config_unavailable") == 1 })
	})
	t.Run("absent", func(t *testing.T) {
		n := start(t, staticSource{})
		promote(n.Notifier, modelDeployment(subscribed))
		waitFor(t, "dropped", func() bool { return n.dropped("not_configured") == 1 })
	})
	t.Run("subscription refused", func(t *testing.T) {
		n := start(t, staticSource{cfg: webhookConfig(t, "http://127.0.0.1:1")})
		promote(n.Notifier, modelDeployment(map[string]string{
			SubscribePrefix + "on-promoted.pagerduty": "oncall",
			SubscribePrefix + "on-promotd.hook":       "",
			SubscribePrefix + "on-promoted.hook":      "https://evil.example/x",
		}))
		waitFor(t, "three refused", func() bool { return n.dropped("invalid_subscription") == 3 })
		for _, want := range []string{`service \"pagerduty\" is not configured`, `unknown trigger \"on-promotd\"`, `recipient \"https://evil.example/x\"`} {
			if !strings.Contains(n.log.String(), want) {
				t.Errorf("log does not say %s:\n%s", want, n.log)
			}
		}
	})
}

func TestNothingHappensWithoutASubscription(t *testing.T) {
	n := start(t, staticSource{err: errors.New("must not be read")})
	promote(n.Notifier, modelDeployment(nil))
	n.Notify(modelDeployment(subscribed), "Normal", "Resolved", "Resolve", "version 2")
	time.Sleep(50 * time.Millisecond)
	if d := n.dropped("config_unavailable"); d != 0 {
		t.Errorf("the configuration was read for an event nobody subscribed to")
	}
}

func TestShutdownDropsWhatIsLeft(t *testing.T) {
	lb := &logBuf{}
	reg := prometheus.NewRegistry()
	m := metrics.NewNotifications(reg)
	n := New(Options{Source: staticSource{}, Log: lb.logger(), metrics: m})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- n.Start(ctx) }()
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	promote(n, modelDeployment(subscribed))
	if d := value(reg, "mlflow_operator_notifications_dropped_total", "reason", "shutdown"); d != 1 {
		t.Errorf("%v dropped at shutdown, want 1", d)
	}
}
