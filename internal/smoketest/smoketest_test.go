package smoketest

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	corev1 "k8s.io/api/core/v1"
)

// TestHTTPSmokeTester sends smoke tests to a real HTTP server on the pod IP
// 127.0.0.1: the answers it accepts and refuses, and one new connection per
// test (pod IPs are reused; a kept connection could reach another pod).
func TestHTTPSmokeTester(t *testing.T) {
	var answer atomic.Value
	var conns atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a := answer.Load().([2]string)
		code, _ := strconv.Atoi(a[0])
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		_, _ = w.Write([]byte(a[1]))
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	port := srv.Listener.Addr().(*net.TCPAddr).Port
	pod := &corev1.Pod{Status: corev1.PodStatus{PodIP: "127.0.0.1"}}
	pod.Name = "candidate-0"
	test := func() error {
		return HTTP{}.Test(context.Background(), pod, int32(port), "/invocations", []byte(`{"inputs": [[1]]}`), 5*time.Second)
	}

	for _, tc := range []struct {
		code, body string
		wantErr    string
	}{
		{"200", `{"predictions": [0, 2]}`, ""},
		{"500", `{"error_code": "INTERNAL_ERROR"}`, "answered HTTP 500"},
		{"200", `not json`, "something other than JSON"},
		{"200", `{"outputs": [1]}`, "without predictions"},
	} {
		answer.Store([2]string{tc.code, tc.body})
		err := test()
		switch {
		case tc.wantErr == "" && err != nil:
			t.Errorf("%s %s: %v", tc.code, tc.body, err)
		case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
			t.Errorf("%s %s: error %v, want one saying %q", tc.code, tc.body, err, tc.wantErr)
		}
	}
	if n := conns.Load(); n != 4 {
		t.Errorf("%d connections for 4 smoke tests, want a new one each", n)
	}

	pod.Status.PodIP = ""
	if err := test(); err == nil || !strings.Contains(err.Error(), "has no IP") {
		t.Errorf("a pod without an IP: %v", err)
	}
}

// TestQuotedAnswerKeepsCharactersWhole: an error quotes at most 300 bytes of
// the answer, and never half a character (a condition message must be valid
// UTF-8, or the API server refuses the status).
func TestQuotedAnswerKeepsCharactersWhole(t *testing.T) {
	body := strings.Repeat("é", 400) // 800 bytes, two per character
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = w.Write([]byte("x" + body))
	}))
	defer srv.Close()
	port := srv.Listener.Addr().(*net.TCPAddr).Port
	pod := &corev1.Pod{Status: corev1.PodStatus{PodIP: "127.0.0.1"}}
	err := HTTP{}.Test(context.Background(), pod, int32(port), "/invocations", []byte(`{}`), 5*time.Second)
	if err == nil {
		t.Fatal("a 500 passed")
	}
	if !utf8.ValidString(err.Error()) {
		t.Fatalf("the message is not valid UTF-8: %q", err.Error())
	}
	if !strings.HasSuffix(err.Error(), "...") || len(err.Error()) > 350 {
		t.Fatalf("the answer is not shortened to about 300 bytes: %d bytes", len(err.Error()))
	}
}

// TestConcurrentTests: the reconcile workers smoke-test several candidates
// at once through the one default client.
func TestConcurrentTests(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"predictions": [1]}`))
	}))
	defer srv.Close()
	port := srv.Listener.Addr().(*net.TCPAddr).Port
	pod := &corev1.Pod{Status: corev1.PodStatus{PodIP: "127.0.0.1"}}
	errs := make(chan error, 16)
	for range 16 {
		go func() {
			errs <- HTTP{}.Test(context.Background(), pod, int32(port), "/invocations", []byte(`{}`), 5*time.Second)
		}()
	}
	for range 16 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}
