package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParseMetrics(t *testing.T) {
	in := `# HELP rest_client_requests_total Number of HTTP requests.
# TYPE rest_client_requests_total counter
rest_client_requests_total{code="200",host="127.0.0.1:6443",method="GET"} 12
rest_client_requests_total{code="200",host="127.0.0.1:6443",method="PATCH"} 3
mlflow_operator_builds_total{result="pushed"} 2
odd{msg="a \"quoted\" \\ value, with } and ,"} 1.5e+00
plain 7
`
	sc, err := parseMetrics(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if got := sc.sum("rest_client_requests_total", nil); got != 15 {
		t.Errorf("sum = %v, want 15", got)
	}
	if got := sc.by("rest_client_requests_total", "method")["PATCH"]; got != 3 {
		t.Errorf("PATCH = %v, want 3", got)
	}
	if got := sc.sum("odd", map[string]string{"msg": `a "quoted" \ value, with } and ,`}); got != 1.5 {
		t.Errorf("odd = %v, want 1.5 (labels %v)", got, sc)
	}
	if got := sc.sum("plain", nil); got != 7 {
		t.Errorf("plain = %v", got)
	}
}

func TestPercentile(t *testing.T) {
	var d []time.Duration
	for i := 1; i <= 10; i++ {
		d = append(d, time.Duration(i)*time.Second)
	}
	if p := percentile(d, 50); p != 5*time.Second {
		t.Errorf("p50 = %s", p)
	}
	if p := percentile(d, 90); p != 9*time.Second {
		t.Errorf("p90 = %s", p)
	}
	if p := percentile(d[:1], 90); p != time.Second {
		t.Errorf("p90 of one = %s", p)
	}
}

func TestAuditLogReadsGrowingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	patch := `{"verb":"patch","requestReceivedTimestamp":"2026-01-01T00:00:01.000000Z","objectRef":{"resource":"modeldeployments","subresource":"status"},"responseStatus":{"code":200}}`
	get := `{"verb":"get","requestReceivedTimestamp":"2026-01-01T00:00:02.000000Z","objectRef":{"resource":"modeldeployments"},"responseStatus":{"code":404}}`
	if err := os.WriteFile(path, []byte(patch+"\n"+get[:30]), 0o644); err != nil {
		t.Fatal(err)
	}
	a := &auditLog{path: path}
	from := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	if c := a.between(from, from.Add(time.Minute)); c.all != 1 || c.writes != 1 || c.byKey["PATCH modeldeployments/status"] != 1 {
		t.Fatalf("first read: %+v", c)
	}
	f, _ := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	_, _ = f.WriteString(get[30:] + "\n")
	f.Close()
	c := a.between(from, from.Add(time.Minute))
	if c.all != 2 || c.writes != 1 || c.byKey["GET modeldeployments"] != 1 || c.codes["GET modeldeployments -> 404"] != 1 {
		t.Fatalf("second read: %+v", c)
	}
	if c := a.between(from.Add(1500*time.Millisecond), from.Add(time.Minute)); c.all != 1 {
		t.Fatalf("window: %+v", c)
	}
}

func TestGoMemoryAndGCWork(t *testing.T) {
	before, err := parseMetrics(strings.NewReader(`go_gc_cycles_total_gc_cycles_total 2
go_cpu_classes_gc_total_cpu_seconds_total 1
go_cpu_classes_total_cpu_seconds_total 10
go_cpu_classes_idle_cpu_seconds_total 4
process_cpu_seconds_total 5
`))
	if err != nil {
		t.Fatal(err)
	}
	after, err := parseMetrics(strings.NewReader(`go_gc_cycles_total_gc_cycles_total 12
go_cpu_classes_gc_total_cpu_seconds_total 3
go_cpu_classes_total_cpu_seconds_total 30
go_cpu_classes_idle_cpu_seconds_total 14
process_cpu_seconds_total 12.5
go_gc_gogc_percent 50
go_gc_gomemlimit_bytes 4.83183821e+08
go_gc_heap_goal_bytes 4.194304e+06
go_memory_classes_heap_released_bytes 3.579904e+06
go_memory_classes_total_bytes 1.3474056e+07
go_memstats_heap_inuse_bytes 3.448832e+06
`))
	if err != nil {
		t.Fatal(err)
	}
	if got := gcBetween(before, after).String(); got != "10 / 20% / 7.5 s" {
		t.Errorf("gc work = %q, want 10 cycles, 2 s of GC in 10 s busy, 7.5 s CPU", got)
	}
	g := goMemoryOf(after, 100<<20)
	if g.mapped != 13474056-3579904 || g.heapInuse != 3448832 || g.goal != 4194304 || g.rss != 100<<20 {
		t.Errorf("go memory = %+v", g)
	}
	if got := g.settings(); got != "50 / 461 MiB" {
		t.Errorf("settings = %q", got)
	}
	none, _ := parseMetrics(strings.NewReader("go_gc_gogc_percent -1\ngo_gc_gomemlimit_bytes 9.223372036854776e+18\n"))
	if got := goMemoryOf(none, 0).settings(); got != "off / none" {
		t.Errorf("settings without limits = %q", got)
	}
}

func TestMemoryLimitFlag(t *testing.T) {
	c, err := parseFlags(nil)
	if err != nil || c.memoryLimit != 512<<20 || len(c.operatorEnv) != 1 || c.operatorEnv[0] != "GOGC=50" {
		t.Errorf("defaults: %+v, %v", c, err)
	}
	if c, err := parseFlags([]string{"-memory-limit", "0"}); err != nil || c.memoryLimit != 0 {
		t.Errorf("-memory-limit 0: %d, %v", c.memoryLimit, err)
	}
	for _, bad := range [][]string{{"-memory-limit", "lots"}, {"-operator-env", "GOGC"}} {
		if _, err := parseFlags(bad); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
}
