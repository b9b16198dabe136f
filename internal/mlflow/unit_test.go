package mlflow

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"
	"time"
)

// Unit tests of pure logic: signatures, path safety, error classification and
// the retry loop. What the client does against MLflow is tested against a
// real server in integration_test.go.

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
	v := NewWebhookVerifier(secret, 5*time.Minute, 100, func() time.Time { return now })
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
	clock := now
	v := NewWebhookVerifier(secret, time.Minute, 2, func() time.Time { return clock })
	sign := func(id string) http.Header {
		h := http.Header{}
		ts := strconv.FormatInt(clock.Unix(), 10)
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
	if err := v.Verify(sign("3"), []byte("{}")); !errors.Is(err, ErrWebhookReplayed) {
		t.Fatalf("over the bound: %v, want refusal", err)
	}
	clock = clock.Add(2 * time.Minute)
	if err := v.Verify(sign("3"), []byte("{}")); err != nil {
		t.Fatalf("after the window the memory is freed: %v", err)
	}
	if len(v.seen) != 1 {
		t.Errorf("%d ids remembered, want 1", len(v.seen))
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

func TestSafeJoin(t *testing.T) {
	for _, tc := range []struct {
		rel string
		ok  bool
	}{
		{"MLmodel", true}, {"data/model.pkl", true}, {"a/./b", true},
		{"../etc/passwd", false}, {"a/../../b", false}, {"/etc/passwd", false}, {"", false},
		{"..", false}, {"a\\..\\b", false}, {"a/..", false}, {"nul\x00", false},
	} {
		_, err := SafeJoin("/models", tc.rel)
		if (err == nil) != tc.ok {
			t.Errorf("SafeJoin(%q) err %v, want ok=%v", tc.rel, err, tc.ok)
		}
		if err != nil && !errors.Is(err, ErrUnsafePath) {
			t.Errorf("SafeJoin(%q) err %v is not ErrUnsafePath", tc.rel, err)
		}
	}
}

func TestFilesNamedBy(t *testing.T) {
	mlmodel := []byte(`artifact_path: mlflow-artifacts:/0/models/m-1/artifacts
flavors:
  python_function:
    env: {conda: conda.yaml, virtualenv: python_env.yaml}
    loader_module: mlflow.sklearn
    model_path: model.skops
  sklearn:
    pickled_model: model.skops
    code: null
  evil:
    data: ../../etc/shadow
saved_input_example_info:
  artifact_path: input_example.json
  serving_input_path: serving_input_example.json
`)
	got := filesNamedBy(mlmodel)
	want := map[string]bool{"model.skops": true, "requirements.txt": true, "serving_input_example.json": true}
	seen := map[string]bool{}
	for _, f := range got {
		seen[f] = true
		if f == "../../etc/shadow" {
			t.Error("an escaping path from MLmodel was kept")
		}
	}
	for f := range want {
		if !seen[f] {
			t.Errorf("%s missing from %v", f, got)
		}
	}
}

// TestRetries checks the retry loop's classification with a server that
// fails a set number of times first.
func TestRetries(t *testing.T) {
	tests := []struct {
		name     string
		failures int32
		status   int
		retries  int
		wantKind Kind
		wantOK   bool
		calls    int32
	}{
		{"503 then success", 2, http.StatusServiceUnavailable, 3, 0, true, 3},
		{"429 then success", 1, http.StatusTooManyRequests, 3, 0, true, 2},
		{"503 beyond retries is unreachable", 10, http.StatusServiceUnavailable, 2, KindUnreachable, false, 3},
		{"404 is not retried", 10, http.StatusNotFound, 3, KindNotFound, false, 1},
		{"401 is not retried", 10, http.StatusUnauthorized, 3, KindUnauthorized, false, 1},
		{"400 is not retried", 10, http.StatusBadRequest, 3, KindInvalid, false, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var calls atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if calls.Add(1) <= tc.failures {
					w.WriteHeader(tc.status)
					fmt.Fprint(w, `{"error_code":"X","message":"m"}`)
					return
				}
				json.NewEncoder(w).Encode(map[string]any{"model_version": map[string]any{"name": "m", "version": "1", "status": "READY"}})
			}))
			defer srv.Close()
			c, err := New(srv.URL, WithRetries(tc.retries, time.Millisecond, 5*time.Millisecond))
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.GetModelVersion(context.Background(), "m", "1")
			if tc.wantOK != (err == nil) {
				t.Fatalf("err %v", err)
			}
			if err != nil && KindOf(err) != tc.wantKind {
				t.Errorf("kind %v, want %v (%v)", KindOf(err), tc.wantKind, err)
			}
			if calls.Load() != tc.calls {
				t.Errorf("%d calls, want %d", calls.Load(), tc.calls)
			}
		})
	}
}

func TestResponseSizeLimit(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`{"model_version":{"name":"` + string(make([]byte, 4096)) + `"}}`))
	}))
	defer srv.Close()
	c, _ := New(srv.URL, WithMaxResponseBytes(1024), WithRetries(0, 0, 0))
	if _, err := c.GetModelVersion(context.Background(), "m", "1"); err == nil || !errors.Is(err, errBodyTooLarge) && KindOf(err) != KindOther {
		t.Fatalf("oversized answer: %v", err)
	}
}

func TestAuthHeaders(t *testing.T) {
	for _, tc := range []struct {
		auth Auth
		want string
	}{
		{Auth{Token: "tok"}, "Bearer tok"},
		{Auth{Username: "u", Password: "p"}, "Basic dTpw"},
		{Auth{Username: "u", Password: "p", Token: "tok"}, "Basic dTpw"},
		{Auth{}, ""},
	} {
		r, _ := http.NewRequest(http.MethodGet, "http://x", nil)
		tc.auth.apply(r)
		if got := r.Header.Get("Authorization"); got != tc.want {
			t.Errorf("%+v: Authorization %q, want %q", tc.auth, got, tc.want)
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
		v := NewWebhookVerifier(secret, 5*time.Minute, 10, func() time.Time { return now })
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

func FuzzDecodeModelVersion(f *testing.F) {
	f.Add([]byte(`{"model_version":{"name":"iris","version":"1","status":"READY","aliases":["a"],"tags":[{"key":"k","value":"v"}]}}`))
	f.Add([]byte(`{"error_code":"RESOURCE_DOES_NOT_EXIST","message":"x"}`))
	f.Add([]byte(`{"model_version":{"version":1}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(body) }))
		defer srv.Close()
		c, _ := New(srv.URL, WithRetries(0, 0, 0))
		mv, err := c.GetModelVersion(context.Background(), "m", "1")
		if err == nil && mv == nil {
			t.Fatal("nil version without error")
		}
		var e *Error
		if err != nil && !errors.As(err, &e) {
			t.Fatalf("error %v is not an *Error", err)
		}
	})
}
