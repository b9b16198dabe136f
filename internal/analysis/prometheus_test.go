package analysis

import (
	"context"
	"math"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// secretQuery is the query of every test: no error may quote it, since the
// answers served here never do (Prometheus' own parse errors may).
const secretQuery = `sum(rate(tenant_requests_total{code="500"}[1m]))`

// canned serves status and body as JSON, whatever is asked.
func canned(status int, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
	}
}

// serve runs h and returns a Prometheus client for it and a count of the
// requests it got.
func serve(t *testing.T, h http.Handler) (*Prometheus, *atomic.Int32) {
	t.Helper()
	n := &atomic.Int32{}
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(ts.Close)
	return &Prometheus{URL: ts.URL}, n
}

func success(resultType, result string) string {
	return `{"status":"success","data":{"resultType":"` + resultType + `","result":` + result + `}}`
}

func TestValueAnswers(t *testing.T) {
	long := "parse error: unexpected character " + strings.Repeat("x", 2000) + "TAIL"
	for _, tc := range []struct {
		name   string
		status int
		body   string
		want   float64
		// errs: what the error must contain; none: a value is expected.
		errs []string
	}{
		{name: "scalar", status: 200, body: success("scalar", `[1700000000.123,"0.75"]`), want: 0.75},
		{name: "one-sample vector", status: 200, body: success("vector", `[{"metric":{"job":"m"},"value":[1700000000,"0.97"]}]`), want: 0.97},
		{name: "+Inf is a value", status: 200, body: success("vector", `[{"metric":{},"value":[1,"+Inf"]}]`), want: math.Inf(1)},
		{name: "-Inf is a value", status: 200, body: success("scalar", `[1,"-Inf"]`), want: math.Inf(-1)},
		{name: "empty vector", status: 200, body: success("vector", `[]`), errs: []string{"the query returned no sample"}},
		{name: "three samples", status: 200, body: success("vector", `[{"metric":{"a":"1"},"value":[1,"1"]},{"metric":{"a":"2"},"value":[1,"2"]},{"metric":{"a":"3"},"value":[1,"3"]}]`),
			errs: []string{"the query returned 3 samples, one is needed (aggregate it, e.g. with sum() or max())"}},
		{name: "matrix", status: 200, body: success("matrix", `[{"metric":{},"values":[[1,"1"],[2,"2"]]}]`), errs: []string{"range vector (matrix)", "rate(x[5m])"}},
		{name: "string", status: 200, body: success("string", `[1,"hello"]`), errs: []string{"the query returned a string"}},
		{name: "NaN", status: 200, body: success("vector", `[{"metric":{},"value":[1,"NaN"]}]`), errs: []string{"the query's value is NaN (e.g. a division by zero with no traffic)"}},
		{name: "NaN scalar", status: 200, body: success("scalar", `[1,"NaN"]`), errs: []string{"is NaN"}},
		{name: "value not a number", status: 200, body: success("scalar", `[1,"abc"]`), errs: []string{`the query's value "abc" is not a number`}},
		{name: "value not a pair", status: 200, body: success("scalar", `[1]`), errs: []string{"not a [time, \"value\"] pair"}},
		{name: "native histogram", status: 200, body: success("vector", `[{"metric":{},"histogram":[1,{"count":"3","sum":"1"}]}]`), errs: []string{"native histogram"}},
		{name: "unknown result type", status: 200, body: success("streams", `[]`), errs: []string{`result of type "streams"`}},
		{name: "error with a long error", status: 400, body: `{"status":"error","errorType":"bad_data","error":"` + long + `"}`,
			errs: []string{"Prometheus answered 400 Bad Request (bad_data): parse error: unexpected character xxx", "..."}},
		{name: "execution error", status: 422, body: `{"status":"error","errorType":"execution","error":"query processing would load too many samples"}`,
			errs: []string{"422 Unprocessable Entity (execution): query processing would load too many samples"}},
		{name: "400 without JSON", status: 400, body: "bad request\n\tsee the docs", errs: []string{"Prometheus answered 400 Bad Request, not JSON: bad request see the docs"}},
		{name: "502 without JSON, long", status: 502, body: "<html>" + long + "</html>", errs: []string{"Prometheus answered 502 Bad Gateway, not JSON: <html>parse error", "..."}},
		{name: "404 without JSON", status: 404, body: "404 page not found", errs: []string{"404 Not Found (is --analysis-prometheus-url the server's base URL?)"}},
		{name: "200 without JSON", status: 200, body: "<html>hello</html>", errs: []string{"the answer of Prometheus (200 OK) is not the JSON of its HTTP API"}},
		{name: "200 JSON of something else", status: 200, body: `{"hello":"world"}`, errs: []string{"not the JSON of its HTTP API"}},
		{name: "success with an error status", status: 500, body: success("scalar", `[1,"1"]`), errs: []string{"500 Internal Server Error with a successful result"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, _ := serve(t, canned(tc.status, tc.body))
			v, err := p.Value(context.Background(), secretQuery)
			if tc.errs == nil {
				if err != nil || v != tc.want {
					t.Fatalf("got %v, %v; want %v", v, err, tc.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("got %v, want an error", v)
			}
			for _, want := range tc.errs {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not say %q", err, want)
				}
			}
			if strings.Contains(err.Error(), "tenant_requests_total") {
				t.Errorf("error %q quotes the query", err)
			}
			if strings.Contains(err.Error(), "TAIL") || len(err.Error()) > maxDetailChars+100 || strings.ContainsAny(err.Error(), "\n\t") {
				t.Errorf("error of %d bytes not bounded to one line of Prometheus' first %d characters: %q", len(err.Error()), maxDetailChars, err)
			}
		})
	}
}

// TestValueRequest: a POST form to <URL>/api/v1/query, the path prefix of
// URL kept, with the query, a time of now and a timeout from ctx's
// deadline; the query never in the URL.
func TestValueRequest(t *testing.T) {
	for _, base := range []string{"/prometheus", "/prometheus/"} {
		var got *http.Request
		p, _ := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if err := r.ParseForm(); err != nil {
				t.Error(err)
			}
			got = r
			canned(200, success("scalar", `[1,"1"]`))(w, r)
		}))
		p.URL += base
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		before := time.Now()
		_, err := p.Value(ctx, secretQuery)
		cancel()
		if err != nil {
			t.Fatalf("URL %s: %v", p.URL, err)
		}
		if got.Method != http.MethodPost || got.URL.Path != "/prometheus/api/v1/query" || got.URL.RawQuery != "" {
			t.Errorf("URL %s: %s %s, want POST /prometheus/api/v1/query with nothing in the URL", p.URL, got.Method, got.URL)
		}
		if ct := got.Header.Get("Content-Type"); ct != "application/x-www-form-urlencoded" {
			t.Errorf("Content-Type %q", ct)
		}
		if q := got.PostForm.Get("query"); q != secretQuery {
			t.Errorf("query %q, want %q", q, secretQuery)
		}
		ts, err := strconv.ParseFloat(got.PostForm.Get("time"), 64)
		if at := time.UnixMilli(int64(ts * 1000)); err != nil || at.Before(before.Add(-10*time.Millisecond)) || at.After(time.Now()) {
			t.Errorf("time %q is not now", got.PostForm.Get("time"))
		}
		ms, err := strconv.Atoi(strings.TrimSuffix(got.PostForm.Get("timeout"), "ms"))
		if err != nil || ms <= 2000 || ms > 5000 {
			t.Errorf("timeout %q, want the 5 s left of ctx", got.PostForm.Get("timeout"))
		}
	}
}

// TestValueTimeout: without a deadline, the own client's 10 s timeout is
// the query's; a client without a timeout and a ctx without a deadline send
// none; a ctx past its deadline sends nothing.
func TestValueTimeout(t *testing.T) {
	var timeout string
	p, n := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		timeout = r.PostForm.Get("timeout")
		canned(200, success("scalar", `[1,"1"]`))(w, r)
	}))
	if _, err := p.Value(context.Background(), "1"); err != nil || timeout != "10000ms" {
		t.Errorf("own client: timeout %q, %v; want 10000ms", timeout, err)
	}
	p.Client = &http.Client{}
	if _, err := p.Value(context.Background(), "1"); err != nil || timeout != "" {
		t.Errorf("client without a timeout: timeout %q, %v; want none", timeout, err)
	}
	ctx, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel()
	before := n.Load()
	if _, err := p.Value(ctx, "1"); err == nil || n.Load() != before {
		t.Errorf("ctx past its deadline: %v, %d requests", err, n.Load()-before)
	}
}

// TestValueOversize: an answer of 1 MiB is read, one byte more is "too
// large".
func TestValueOversize(t *testing.T) {
	body := success("scalar", `[1,"2"]`)
	for _, tc := range []struct {
		size    int
		tooMuch bool
	}{{maxBodyBytes, false}, {maxBodyBytes + 1, true}, {10 * maxBodyBytes, true}} {
		p, _ := serve(t, canned(200, body+strings.Repeat(" ", tc.size-len(body))))
		v, err := p.Value(context.Background(), secretQuery)
		if tc.tooMuch && (err == nil || !strings.Contains(err.Error(), "too large")) {
			t.Errorf("%d bytes: %v, %v; want too large", tc.size, v, err)
		}
		if !tc.tooMuch && (err != nil || v != 2) {
			t.Errorf("%d bytes: %v, %v; want 2", tc.size, v, err)
		}
	}
}

// TestValueRedirect: a redirect is an error naming its status and is never
// followed, neither by the own client nor by a given one that follows them.
func TestValueRedirect(t *testing.T) {
	var followed atomic.Int32
	mux := http.NewServeMux()
	mux.HandleFunc("/elsewhere/", func(w http.ResponseWriter, r *http.Request) {
		followed.Add(1)
		canned(200, success("scalar", `[1,"1"]`))(w, r)
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/elsewhere"+r.URL.Path, http.StatusTemporaryRedirect)
	})
	p, _ := serve(t, mux)
	for _, c := range []*http.Client{nil, http.DefaultClient} {
		p.Client = c
		_, err := p.Value(context.Background(), secretQuery)
		if err == nil || !strings.Contains(err.Error(), "307 Temporary Redirect, a redirect, which is not followed (to /elsewhere/api/v1/query)") {
			t.Errorf("client %v: %v, want the redirect refused", c, err)
		}
	}
	if followed.Load() != 0 {
		t.Errorf("the redirect was followed %d times", followed.Load())
	}
	if http.DefaultClient.CheckRedirect != nil {
		t.Error("the given client was changed")
	}
}

// TestValueRefusedBeforeAsking: a query over 4096 bytes, an empty one and a
// URL that is not http(s) are refused without a request.
func TestValueRefusedBeforeAsking(t *testing.T) {
	p, n := serve(t, canned(200, success("scalar", `[1,"1"]`)))
	if _, err := p.Value(context.Background(), strings.Repeat("1", MaxQueryBytes)); err != nil || n.Load() != 1 {
		t.Fatalf("a query of %d bytes: %v, %d requests", MaxQueryBytes, err, n.Load())
	}
	if _, err := p.Value(context.Background(), strings.Repeat("1", MaxQueryBytes+1)); err == nil || !strings.Contains(err.Error(), "the query is 4097 bytes long, at most 4096 are allowed") {
		t.Errorf("a query of %d bytes: %v", MaxQueryBytes+1, err)
	}
	if _, err := p.Value(context.Background(), " \n"); err == nil || !strings.Contains(err.Error(), "the query is empty") {
		t.Errorf("an empty query: %v", err)
	}
	for _, u := range []string{"", "prometheus:9090", "ftp://prometheus", "http://user:s3cret@[::1"} {
		_, err := (&Prometheus{URL: u}).Value(context.Background(), secretQuery)
		if err == nil || !strings.Contains(err.Error(), "--analysis-prometheus-url") || strings.Contains(err.Error(), "s3cret") {
			t.Errorf("URL %q: %v, want an error naming the flag and no password", u, err)
		}
	}
	if n.Load() != 1 {
		t.Errorf("%d requests, want only the first", n.Load())
	}
}

// TestValueUnreachable: a server that is not there is an error naming the
// URL without its password, and never the query.
func TestValueUnreachable(t *testing.T) {
	ts := httptest.NewServer(http.NotFoundHandler())
	ts.Close()
	p := &Prometheus{URL: strings.Replace(ts.URL, "http://", "http://admin:s3cret@", 1)}
	_, err := p.Value(context.Background(), secretQuery)
	if err == nil || !strings.Contains(err.Error(), "asking Prometheus") || strings.Contains(err.Error(), "s3cret") || strings.Contains(err.Error(), "tenant_requests_total") {
		t.Errorf("got %v", err)
	}
}
