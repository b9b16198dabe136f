package mlflow

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/mlflow-operator/mlflow-operator/internal/failure"
)

// Unit tests of the request machinery: error classification, retries and
// backoff, limits and credentials, against httptest servers. What the client
// does against a real MLflow server is tested in
// test/integration/mlflowclient.

// TestRetries checks the retry loop's classification with a server that
// fails a set number of times first.
func TestRetries(t *testing.T) {
	tests := []struct {
		name     string
		failures int32
		status   int
		retries  int
		wantKind failure.Kind
		wantOK   bool
		calls    int32
	}{
		{"503 then success", 2, http.StatusServiceUnavailable, 3, 0, true, 3},
		{"429 then success", 1, http.StatusTooManyRequests, 3, 0, true, 2},
		{"503 beyond retries is unreachable", 10, http.StatusServiceUnavailable, 2, failure.Unreachable, false, 3},
		{"404 is not retried", 10, http.StatusNotFound, 3, failure.NotFound, false, 1},
		{"401 is not retried", 10, http.StatusUnauthorized, 3, failure.Unauthorized, false, 1},
		// An MLflow 400 is not the spec being invalid: Other, which the
		// reconciler retries later.
		{"400 is not retried", 10, http.StatusBadRequest, 3, failure.Other, false, 1},
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
			if err != nil && failure.KindOf(err) != tc.wantKind {
				t.Errorf("kind %v, want %v (%v)", failure.KindOf(err), tc.wantKind, err)
			}
			if err != nil && failure.SubjectOf(err) != failure.MLflow {
				t.Errorf("subject %q, want MLflow (%v)", failure.SubjectOf(err), err)
			}
			if calls.Load() != tc.calls {
				t.Errorf("%d calls, want %d", calls.Load(), tc.calls)
			}
		})
	}
}

func TestErrorFromResponse(t *testing.T) {
	tests := []struct {
		name    string
		status  int
		body    string
		want    failure.Kind
		wantMsg string
	}{
		{"401", http.StatusUnauthorized, "You are not authenticated.", failure.Unauthorized, "GET x: HTTP 401: You are not authenticated."},
		{"403", http.StatusForbidden, `{"error_code":"PERMISSION_DENIED","message":"no"}`, failure.Unauthorized, "GET x: HTTP 403 PERMISSION_DENIED: no"},
		{"UNAUTHENTICATED code", http.StatusBadRequest, `{"error_code":"UNAUTHENTICATED","message":"who?"}`, failure.Unauthorized, "GET x: HTTP 400 UNAUTHENTICATED: who?"},
		{"404", http.StatusNotFound, `{"error_code":"RESOURCE_DOES_NOT_EXIST","message":"gone"}`, failure.NotFound, "GET x: HTTP 404 RESOURCE_DOES_NOT_EXIST: gone"},
		{"RESOURCE_DOES_NOT_EXIST as 400", http.StatusBadRequest, `{"error_code":"RESOURCE_DOES_NOT_EXIST","message":"gone"}`, failure.NotFound, "GET x: HTTP 400 RESOURCE_DOES_NOT_EXIST: gone"},
		{"400", http.StatusBadRequest, `{"error_code":"INVALID_PARAMETER_VALUE","message":"bad"}`, failure.Other, "GET x: HTTP 400 INVALID_PARAMETER_VALUE: bad"},
		{"429", http.StatusTooManyRequests, "", failure.Unreachable, "GET x: HTTP 429: Too Many Requests"},
		{"502 from a proxy", http.StatusBadGateway, "<html>bad gateway</html>\n", failure.Unreachable, "GET x: HTTP 502: <html>bad gateway</html>"},
		{"501 is not retried", http.StatusNotImplemented, "", failure.Other, "GET x: HTTP 501: Not Implemented"},
		{"418", http.StatusTeapot, "", failure.Other, "GET x: HTTP 418: I'm a teapot"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := errorFromResponse("GET x", &http.Response{StatusCode: tc.status}, []byte(tc.body))
			if err.Kind != tc.want || err.Subject != failure.MLflow {
				t.Errorf("kind %v subject %q, want %v MLflow", err.Kind, err.Subject, tc.want)
			}
			if err.Error() != tc.wantMsg {
				t.Errorf("message %q, want %q", err.Error(), tc.wantMsg)
			}
			if statusOf(err) != tc.status {
				t.Errorf("statusOf %d, want %d", statusOf(err), tc.status)
			}
		})
	}
}

// TestLongAnswerShortened checks that a long answer is cut on a character
// boundary, whether it is a proxy's page or MLflow's own message.
func TestLongAnswerShortened(t *testing.T) {
	long := strings.Repeat("é", 300) // 2 bytes each: byte 200 falls inside one
	for _, body := range []string{long, `{"error_code":"INTERNAL_ERROR","message":"` + long + `"}`} {
		err := errorFromResponse("GET x", &http.Response{StatusCode: http.StatusInternalServerError}, []byte(body))
		var he *httpStatusError
		if !errors.As(err, &he) {
			t.Fatalf("%v holds no answer detail", err)
		}
		if len(he.message) > maxMessage || !utf8.ValidString(he.message) || !strings.HasSuffix(he.message, "...") {
			t.Errorf("message of %d bytes, valid UTF-8 %v: %q", len(he.message), utf8.ValidString(he.message), he.message)
		}
		if !utf8.ValidString(err.Error()) {
			t.Errorf("error %q is not valid UTF-8", err.Error())
		}
	}
}

func TestResponseSizeLimit(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`{"model_version":{"name":"` + string(make([]byte, 4096)) + `"}}`))
	}))
	defer srv.Close()
	c, _ := New(srv.URL, WithMaxResponseBytes(1024), WithRetries(0, 0, 0))
	if _, err := c.GetModelVersion(context.Background(), "m", "1"); !errors.Is(err, errBodyTooLarge) || failure.KindOf(err) != failure.Other {
		t.Fatalf("oversized answer: %v", err)
	}
}

// recordSleeps makes c record its waits instead of sleeping.
func recordSleeps(c *Client) *[]time.Duration {
	var mu sync.Mutex
	var waits []time.Duration
	c.sleep = func(ctx context.Context, d time.Duration) error {
		mu.Lock()
		defer mu.Unlock()
		waits = append(waits, d)
		return ctx.Err()
	}
	return &waits
}

func TestRetryAfterHonouredUpToMax(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch calls.Add(1) {
		case 1:
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusTooManyRequests)
		case 2:
			w.Header().Set("Retry-After", "3600")
			w.WriteHeader(http.StatusServiceUnavailable)
		default:
			fmt.Fprint(w, `{"model_version":{"name":"m","version":"1"}}`)
		}
	}))
	defer srv.Close()
	c, _ := New(srv.URL, WithRetries(3, 10*time.Millisecond, 2*time.Second))
	waits := recordSleeps(c)
	if _, err := c.GetModelVersion(context.Background(), "m", "1"); err != nil {
		t.Fatal(err)
	}
	if want := []time.Duration{time.Second, 2 * time.Second}; fmt.Sprint(*waits) != fmt.Sprint(want) {
		t.Errorf("waits %v, want %v (Retry-After, capped at the maximum)", *waits, want)
	}
}

func TestBackoffSchedule(t *testing.T) {
	c, _ := New("http://mlflow", WithRetries(8, 100*time.Millisecond, time.Second))
	b := c.backoff()
	for i, step := range []time.Duration{100, 200, 400, 800, 1000, 1000, 1000, 1000, 1000} {
		step *= time.Millisecond
		if d := b.Step(); d < step/2 || d > step {
			t.Errorf("wait %d is %v, want between %v and %v", i, d, step/2, step)
		}
	}
	// A base above the maximum starts at the maximum.
	c, _ = New("http://mlflow", WithRetries(2, time.Minute, time.Second))
	b = c.backoff()
	if d := b.Step(); d < time.Second/2 || d > time.Second {
		t.Errorf("first wait %v, want at most the maximum", d)
	}
}

// TestRetriesAfterCap checks that reaching the cap does not end the retries
// early: WithRetries says how many.
func TestRetriesAfterCap(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.WriteHeader(http.StatusBadGateway)
	}))
	defer srv.Close()
	c, _ := New(srv.URL, WithRetries(6, time.Millisecond, 2*time.Millisecond))
	waits := recordSleeps(c)
	_, err := c.GetModelVersion(context.Background(), "m", "1")
	if failure.KindOf(err) != failure.Unreachable || calls.Load() != 7 || len(*waits) != 6 {
		t.Fatalf("err %v after %d calls and %d waits, want Unreachable after 7 and 6", err, calls.Load(), len(*waits))
	}
}

func TestRetryStopsWithContext(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	c, _ := New(srv.URL, WithRetries(5, time.Hour, time.Hour))
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := c.GetModelVersion(ctx, "m", "1")
	if !errors.Is(err, context.DeadlineExceeded) || failure.KindOf(err) != failure.Unreachable {
		t.Errorf("err %v, want an Unreachable deadline", err)
	}
	if calls.Load() != 1 || time.Since(start) > 10*time.Second {
		t.Errorf("%d calls in %v: the wait did not stop with the context", calls.Load(), time.Since(start))
	}

	// A cancelled context is not retried at all.
	cancelled, cancelNow := context.WithCancel(context.Background())
	cancelNow()
	if _, err := c.GetModelVersion(cancelled, "m", "1"); !errors.Is(err, context.Canceled) || failure.KindOf(err) != failure.Unreachable {
		t.Errorf("cancelled: %v", err)
	}
	if calls.Load() != 1 {
		t.Errorf("a cancelled request reached the server")
	}
}

func TestNetworkErrorsAreUnreachable(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	c, _ := New(url, WithRetries(2, time.Millisecond, time.Millisecond))
	waits := recordSleeps(c)
	_, err := c.GetModelVersion(context.Background(), "m", "1")
	if failure.KindOf(err) != failure.Unreachable || failure.SubjectOf(err) != failure.MLflow || statusOf(err) != 0 {
		t.Errorf("err %v, want Unreachable MLflow without a status", err)
	}
	if len(*waits) != 2 {
		t.Errorf("%d waits, want 2 (retried)", len(*waits))
	}
	if !strings.HasPrefix(err.Error(), "GET model-versions/get: ") {
		t.Errorf("message %q does not name the request", err.Error())
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
		if _, ok := failure.As(err); err != nil && !ok {
			t.Fatalf("error %v is not a *failure.Error", err)
		}
	})
}
