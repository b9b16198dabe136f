package mlflow

import (
	"errors"
	"net/http"
	"strconv"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"
)

// Unit tests of webhook deliveries: the signature MLflow computes, the
// verifier's window and replay memory, and payload parsing.

func TestSignMatchesMLflow(t *testing.T) {
	// Computed with MLflow 3.17's own _generate_hmac_signature:
	//   _generate_hmac_signature("s3cret", "d-1", "1700000000", '{"a": 1}')
	want := "v1,cXba7k2h2S9JgnqN7BcpWvnFMfMoFMqAonfzn9WFZBg="
	if got := Sign([]byte("s3cret"), "d-1", "1700000000", []byte(`{"a": 1}`)); got != want {
		t.Errorf("Sign = %s, want %s", got, want)
	}
}

func TestWebhookVerifier(t *testing.T) {
	secret := []byte("webhook-secret")
	now := time.Unix(1_800_000_000, 0)
	body := []byte(`{"entity":"model_version_alias","action":"created","data":{"name":"iris","alias":"champion","version":"2"}}`)
	headers := func(id string, ts int64, sig string) http.Header {
		h := http.Header{}
		h.Set(HeaderDeliveryID, id)
		h.Set(HeaderTimestamp, strconv.FormatInt(ts, 10))
		h.Set(HeaderSignature, sig)
		return h
	}
	good := func(id string, ts int64) http.Header {
		return headers(id, ts, Sign(secret, id, strconv.FormatInt(ts, 10), body))
	}
	tests := []struct {
		name string
		h    http.Header
		body []byte
		want error
	}{
		{"valid", good("a", now.Unix()), body, nil},
		{"valid, a little in the future", good("b", now.Unix()+30), body, nil},
		{"replayed", good("a", now.Unix()), body, ErrWebhookReplayed},
		{"forged signature", headers("c", now.Unix(), Sign([]byte("guess"), "c", strconv.FormatInt(now.Unix(), 10), body)), body, ErrWebhookBadSignature},
		{"body changed", good("d", now.Unix()), append([]byte(" "), body...), ErrWebhookBadSignature},
		{"timestamp changed", headers("e", now.Unix()-1, Sign(secret, "e", strconv.FormatInt(now.Unix(), 10), body)), body, ErrWebhookBadSignature},
		{"stale", good("f", now.Add(-6*time.Minute).Unix()), body, ErrWebhookStale},
		{"far future", good("g", now.Add(6*time.Minute).Unix()), body, ErrWebhookStale},
		{"no signature", headers("h", now.Unix(), ""), body, ErrWebhookMissingHeader},
		{"no delivery id", headers("", now.Unix(), "v1,x"), body, ErrWebhookMissingHeader},
		{"signature without version", headers("i", now.Unix(), Sign(secret, "i", strconv.FormatInt(now.Unix(), 10), body)[3:]), body, ErrWebhookBadSignature},
	}
	v := NewWebhookVerifier(secret, 5*time.Minute, 100, clocktesting.NewFakePassiveClock(now))
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := v.Verify(tc.h, tc.body)
			if !errors.Is(err, tc.want) && !(err == nil && tc.want == nil) {
				t.Fatalf("Verify = %v, want %v", err, tc.want)
			}
		})
	}

	// A forged delivery does not use up the id of a later genuine one.
	_ = v.Verify(headers("j", now.Unix(), "v1,forged"), body)
	if err := v.Verify(good("j", now.Unix()), body); err != nil {
		t.Errorf("genuine delivery after a forged one with its id: %v", err)
	}
}

func TestWebhookVerifierForgetsAfterWindowAndBounds(t *testing.T) {
	secret := []byte("k")
	now := time.Unix(1_800_000_000, 0)
	clock := clocktesting.NewFakePassiveClock(now)
	v := NewWebhookVerifier(secret, time.Minute, 2, clock)
	sign := func(id string) http.Header {
		h := http.Header{}
		ts := strconv.FormatInt(clock.Now().Unix(), 10)
		h.Set(HeaderDeliveryID, id)
		h.Set(HeaderTimestamp, ts)
		h.Set(HeaderSignature, Sign(secret, id, ts, []byte("{}")))
		return h
	}
	for _, id := range []string{"1", "2"} {
		if err := v.Verify(sign(id), []byte("{}")); err != nil {
			t.Fatal(err)
		}
	}
	// A new, valid delivery over the bound is refused as busy (the sender
	// retries it), never answered as already received (it would be lost).
	if err := v.Verify(sign("3"), []byte("{}")); !errors.Is(err, ErrWebhookBusy) || errors.Is(err, ErrWebhookReplayed) {
		t.Fatalf("over the bound: %v, want ErrWebhookBusy", err)
	}
	clock.SetTime(clock.Now().Add(2 * time.Minute))
	if err := v.Verify(sign("3"), []byte("{}")); err != nil {
		t.Fatalf("after the window the memory is freed: %v", err)
	}
	if len(v.seen) != 1 || v.expiry.Len() != 1 {
		t.Errorf("%d ids remembered (%d in the expiry order), want 1", len(v.seen), v.expiry.Len())
	}
}

// TestWebhookVerifierForgetsInExpiryOrder: ids are forgotten when their own
// timestamps leave the window, whatever order they arrived in.
func TestWebhookVerifierForgetsInExpiryOrder(t *testing.T) {
	secret := []byte("k")
	now := time.Unix(1_800_000_000, 0)
	clock := clocktesting.NewFakePassiveClock(now)
	v := NewWebhookVerifier(secret, time.Minute, 100, clock)
	deliver := func(id string, ts time.Time) error {
		h := http.Header{}
		t := strconv.FormatInt(ts.Unix(), 10)
		h.Set(HeaderDeliveryID, id)
		h.Set(HeaderTimestamp, t)
		h.Set(HeaderSignature, Sign(secret, id, t, []byte("{}")))
		return v.Verify(h, []byte("{}"))
	}
	// "late" was sent 50 s ago, "early" 10 s ago: late expires first.
	if err := deliver("early", now.Add(-10*time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := deliver("late", now.Add(-50*time.Second)); err != nil {
		t.Fatal(err)
	}
	clock.SetTime(now.Add(20 * time.Second))
	if err := deliver("fresh", clock.Now()); err != nil {
		t.Fatal(err)
	}
	if _, ok := v.seen["late"]; ok {
		t.Error("an id whose timestamp left the window is still remembered")
	}
	if _, ok := v.seen["early"]; !ok {
		t.Error("an id still inside the window was forgotten: it could be replayed")
	}
}

func TestParseWebhookEvent(t *testing.T) {
	tests := []struct {
		body    string
		event   string
		name    string
		wantErr bool
	}{
		{`{"entity":"model_version_alias","action":"created","timestamp":"2026-11-25T10:00:00+00:00","data":{"name":"iris","alias":"champion","version":"2"}}`, "model_version_alias.created", "iris", false},
		{`{"entity":"model_version","action":"created","data":{"name":"iris","version":"3","source":"models:/m-1","run_id":"r","tags":{"a":"b"},"description":null}}`, "model_version.created", "iris", false},
		{`{"entity":"model_version_tag","action":"set","data":{"name":"iris","version":"3","key":"k","value":"v"}}`, "model_version_tag.set", "iris", false},
		{`{"entity":"model_version","action":"created","data":{}}`, "", "", true},
		{`{"data":{"name":"iris"}}`, "", "", true},
		{`not json`, "", "", true},
		{`{"entity":"model_version","action":"created","data":{"name":5}}`, "", "", true},
	}
	for _, tc := range tests {
		e, err := ParseWebhookEvent([]byte(tc.body))
		if tc.wantErr {
			if err == nil {
				t.Errorf("%s: accepted", tc.body)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tc.body, err)
			continue
		}
		if e.Event() != tc.event || e.Data.Name != tc.name {
			t.Errorf("%s: event %s name %s", tc.body, e.Event(), e.Data.Name)
		}
	}
}

func FuzzParseWebhookEvent(f *testing.F) {
	f.Add([]byte(`{"entity":"model_version_alias","action":"created","data":{"name":"iris","alias":"champion","version":"2"}}`))
	f.Add([]byte(`{"entity":"x","action":"y","data":{"name":""}}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, body []byte) {
		e, err := ParseWebhookEvent(body)
		if err == nil && (e.Entity == "" || e.Action == "" || e.Data.Name == "") {
			t.Fatalf("accepted an event without entity, action or name: %q", body)
		}
	})
}

func FuzzWebhookVerify(f *testing.F) {
	secret := []byte("fuzz-secret")
	now := time.Unix(1_800_000_000, 0)
	f.Add("id-1", "1800000000", "v1,abc", []byte(`{}`))
	f.Add("", "", "", []byte(nil))
	f.Add("id-2", "-1", Sign(secret, "id-2", "-1", []byte("x")), []byte("x"))
	f.Fuzz(func(t *testing.T, id, ts, sig string, body []byte) {
		v := NewWebhookVerifier(secret, 5*time.Minute, 10, clocktesting.NewFakePassiveClock(now))
		h := http.Header{}
		h.Set(HeaderDeliveryID, id)
		h.Set(HeaderTimestamp, ts)
		h.Set(HeaderSignature, sig)
		err := v.Verify(h, body)
		if err == nil && sig != Sign(secret, h.Get(HeaderDeliveryID), h.Get(HeaderTimestamp), body) {
			t.Fatalf("accepted a delivery whose signature is not ours: id=%q ts=%q sig=%q", id, ts, sig)
		}
	})
}
