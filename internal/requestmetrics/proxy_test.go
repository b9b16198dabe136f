package requestmetrics

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// proxyTo starts the proxy in front of upstream and returns its URL.
func proxyTo(t *testing.T, upstream string, m *Metrics) string {
	t.Helper()
	u, err := url.Parse(upstream)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(NewProxy(u, m, quiet))
	t.Cleanup(srv.Close)
	return srv.URL
}

func requests(m *Metrics, path, code string) float64 {
	return testutil.ToFloat64(m.requests.WithLabelValues(path, code))
}

// histogram is the duration histogram of path.
func histogram(t *testing.T, m *Metrics, path string) *dto.Histogram {
	t.Helper()
	families, err := m.registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != "mlflow_model_request_duration_seconds" {
			continue
		}
		for _, s := range f.GetMetric() {
			if s.GetLabel()[0].GetValue() == path {
				return s.GetHistogram()
			}
		}
	}
	t.Fatalf("no duration histogram for path %q", path)
	return nil
}

func do(t *testing.T, method, u, body string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

func TestCountsAndTimesRequestsByPathAndCode(t *testing.T) {
	var gotHost string
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		gotHost = r.Host
		switch r.URL.Path {
		case "/invocations":
			time.Sleep(30 * time.Millisecond)
			w.Write([]byte(`{"predictions":[` + string(body) + `]}`))
		case "/ping":
			w.WriteHeader(http.StatusOK)
		default:
			http.Error(w, "no", http.StatusNotFound)
		}
	}))
	defer upstream.Close()
	m := NewMetrics()
	p := proxyTo(t, upstream.URL, m)

	for range 2 {
		resp, body := do(t, http.MethodPost, p+"/invocations", "12345")
		if resp.StatusCode != 200 || body != `{"predictions":[12345]}` {
			t.Fatalf("POST /invocations: %d %q", resp.StatusCode, body)
		}
	}
	do(t, http.MethodGet, p+"/ping", "")
	// Invented paths share one label value.
	do(t, http.MethodGet, p+"/a", "")
	do(t, http.MethodGet, p+"/b/c?d=e", "")

	if n := testutil.CollectAndCount(m.requests); n != 3 {
		t.Errorf("%d request series, want 3 (an invented path must not make its own)", n)
	}
	for _, c := range []struct {
		path, code string
		want       float64
	}{
		{"/invocations", "200", 2}, {"/ping", "200", 1}, {"other", "404", 2}, {"/invocations", "502", 0},
	} {
		if got := requests(m, c.path, c.code); got != c.want {
			t.Errorf("requests_total{path=%q,code=%q} = %v, want %v", c.path, c.code, got, c.want)
		}
	}
	h := histogram(t, m, "/invocations")
	if h.GetSampleCount() != 2 || h.GetSampleSum() < 0.06 {
		t.Errorf("/invocations histogram: count %d sum %v, want 2 and at least 0.06 s", h.GetSampleCount(), h.GetSampleSum())
	}
	// 30 ms requests are above the 25 ms bucket and within the 50 ms one.
	for _, b := range h.GetBucket() {
		if b.GetUpperBound() == 0.025 && b.GetCumulativeCount() != 0 || b.GetUpperBound() == 30 && b.GetCumulativeCount() != 2 {
			t.Errorf("bucket le=%v holds %d", b.GetUpperBound(), b.GetCumulativeCount())
		}
	}
	if h := histogram(t, m, "/version"); h.GetSampleCount() != 0 {
		t.Errorf("/version histogram: %d samples, want 0 (it exists from the start)", h.GetSampleCount())
	}
	if got := testutil.ToFloat64(m.reqBytes); got != 10 {
		t.Errorf("request bytes %v, want 10", got)
	}
	// Two bodies of 23 bytes and the 404s' "no\n".
	if got := testutil.ToFloat64(m.respBytes); got != 2*23+2*3 {
		t.Errorf("response bytes %v, want %d", got, 2*23+2*3)
	}
	if testutil.ToFloat64(m.inFlight) != 0 {
		t.Errorf("in flight %v after every request ended", testutil.ToFloat64(m.inFlight))
	}
	if gotHost != strings.TrimPrefix(p, "http://") {
		t.Errorf("the model server saw Host %q, want the client's %q", gotHost, strings.TrimPrefix(p, "http://"))
	}
}

func TestUpstreamDownIsA502(t *testing.T) {
	// A port nobody listens on.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	m := NewMetrics()
	p := proxyTo(t, "http://"+addr, m)

	resp, _ := do(t, http.MethodPost, p+"/invocations", `{"inputs":[1]}`)
	if resp.StatusCode != http.StatusBadGateway {
		t.Fatalf("status %d, want 502", resp.StatusCode)
	}
	if got := requests(m, "/invocations", "502"); got != 1 {
		t.Errorf("requests_total{/invocations,502} = %v, want 1", got)
	}
	if h := histogram(t, m, "/invocations"); h.GetSampleCount() != 1 {
		t.Errorf("the 502 is not timed: %d samples", h.GetSampleCount())
	}
}

// A streamed response reaches the client chunk by chunk, and a request body
// reaches the model before the client has sent all of it: nothing is
// buffered.
func TestStreamsBothWays(t *testing.T) {
	release := make(chan struct{})
	firstRead := make(chan string, 1)
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		br := bufio.NewReader(r.Body)
		line, _ := br.ReadString('\n')
		firstRead <- line
		rest, _ := io.ReadAll(br)
		w.Write([]byte("first " + string(rest) + "\n"))
		http.NewResponseController(w).Flush()
		<-release
		w.Write([]byte("second"))
	}))
	defer upstream.Close()
	m := NewMetrics()
	p := proxyTo(t, upstream.URL, m)

	pr, pw := io.Pipe()
	req, _ := http.NewRequest(http.MethodPost, p+"/invocations", pr)
	done := make(chan *http.Response, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Error(err)
			close(done)
			return
		}
		done <- resp
	}()
	pw.Write([]byte("row1\n"))
	select {
	case line := <-firstRead:
		if line != "row1\n" {
			t.Fatalf("the model read %q first", line)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the model did not get the first part of the body before the rest was sent: the proxy buffers requests")
	}
	// The rest of the body, then the answer.
	pw.Write([]byte("row2"))
	pw.Close()
	var resp *http.Response
	select {
	case resp = <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("no response headers while the model streams")
	}
	if resp == nil {
		return
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	got := make(chan string, 1)
	go func() { l, _ := br.ReadString('\n'); got <- l }()
	select {
	case l := <-got:
		if l != "first row2\n" {
			t.Fatalf("first chunk %q", l)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the first chunk did not reach the client before the model finished: the proxy buffers responses")
	}
	if v := testutil.ToFloat64(m.inFlight); v != 1 {
		t.Errorf("in flight %v during the request, want 1", v)
	}
	close(release)
	rest, _ := io.ReadAll(br)
	if string(rest) != "second" {
		t.Errorf("rest %q", rest)
	}
	resp.Body.Close()
	// The request is recorded once its handler returns.
	deadline := time.Now().Add(5 * time.Second)
	for requests(m, "/invocations", "200") != 1 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if got := requests(m, "/invocations", "200"); got != 1 {
		t.Errorf("requests_total{/invocations,200} = %v, want 1", got)
	}
	if got := testutil.ToFloat64(m.reqBytes); got != 9 {
		t.Errorf("request bytes %v, want 9", got)
	}
}

func TestLabels(t *testing.T) {
	for in, want := range map[string]string{"/invocations": "/invocations", "/ping": "/ping", "/health": "/health",
		"/version": "/version", "/invocations/": "other", "/": "other", "/PING": "other"} {
		if got := pathLabel(in); got != want {
			t.Errorf("pathLabel(%q) = %q, want %q", in, got, want)
		}
	}
	for in, want := range map[int]string{200: "200", 502: "502", 99: "other", 1000: "other"} {
		if got := codeLabel(in); got != want {
			t.Errorf("codeLabel(%d) = %q, want %q", in, got, want)
		}
	}
}

func TestClientGoneIsNotA502(t *testing.T) {
	started := make(chan struct{})
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Read the body: the server notices a closed connection only then.
		io.ReadAll(r.Body)
		close(started)
		<-r.Context().Done()
	}))
	defer upstream.Close()
	m := NewMetrics()
	p := proxyTo(t, upstream.URL, m)
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, p+"/invocations", strings.NewReader("x"))
	go func() { <-started; cancel() }()
	if _, err := http.DefaultClient.Do(req); err == nil {
		t.Fatal("the request was answered")
	}
	deadline := time.Now().Add(5 * time.Second)
	for requests(m, "/invocations", CodeClientGone) != 1 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if got, bad := requests(m, "/invocations", CodeClientGone), requests(m, "/invocations", "502"); got != 1 || bad != 0 {
		t.Errorf("client gone: %v counted as 499 and %v as 502, want 1 and 0", got, bad)
	}
}
