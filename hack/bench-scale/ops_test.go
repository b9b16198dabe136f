package main

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func mustParse(t *testing.T, s string) scrape {
	t.Helper()
	sc, err := parseMetrics(strings.NewReader(s))
	if err != nil {
		t.Fatal(err)
	}
	return sc
}

const opsBefore = `controller_runtime_reconcile_total{controller="modeldeployment",result="success"} 10
controller_runtime_reconcile_total{controller="other",result="success"} 5
controller_runtime_reconcile_time_seconds_bucket{controller="modeldeployment",le="0.005"} 2
controller_runtime_reconcile_time_seconds_sum{controller="modeldeployment"} 1
controller_runtime_reconcile_time_seconds_count{controller="modeldeployment"} 10
controller_runtime_reconcile_time_seconds_sum{controller="other"} 50
controller_runtime_max_concurrent_reconciles{controller="modeldeployment"} 4
workqueue_queue_duration_seconds_sum{controller="modeldeployment",name="modeldeployment"} 2
workqueue_queue_duration_seconds_count{controller="modeldeployment",name="modeldeployment"} 10
workqueue_queue_duration_seconds_sum{controller="other",name="other"} 100
workqueue_adds_total{controller="modeldeployment",name="modeldeployment"} 10
mlflow_operator_builds_total{result="pushed"} 0
mlflow_operator_builds_total{result="reused"} 0
mlflow_operator_mlflow_requests_total{code="200",operation="registered-models/alias"} 3
mlflow_operator_mlflow_request_duration_seconds_sum{operation="registered-models/alias"} 0.3
process_cpu_seconds_total 2
`

const opsAfter = `controller_runtime_reconcile_total{controller="modeldeployment",result="success"} 110
controller_runtime_reconcile_total{controller="modeldeployment",result="requeue_after"} 100
controller_runtime_reconcile_total{controller="other",result="success"} 500
controller_runtime_reconcile_time_seconds_bucket{controller="modeldeployment",le="0.005"} 20
controller_runtime_reconcile_time_seconds_sum{controller="modeldeployment"} 41
controller_runtime_reconcile_time_seconds_count{controller="modeldeployment"} 210
controller_runtime_reconcile_time_seconds_sum{controller="other"} 500
controller_runtime_reconcile_errors_total{controller="modeldeployment"} 3
controller_runtime_max_concurrent_reconciles{controller="modeldeployment"} 4
controller_runtime_active_workers{controller="modeldeployment"} 3
workqueue_depth{controller="modeldeployment",name="modeldeployment",priority=""} 40
workqueue_depth{controller="modeldeployment",name="modeldeployment",priority="-100"} 2
workqueue_depth{controller="other",name="other",priority=""} 1000
workqueue_queue_duration_seconds_sum{controller="modeldeployment",name="modeldeployment"} 402
workqueue_queue_duration_seconds_count{controller="modeldeployment",name="modeldeployment"} 210
workqueue_queue_duration_seconds_sum{controller="other",name="other"} 1e6
workqueue_adds_total{controller="modeldeployment",name="modeldeployment"} 250
workqueue_retries_total{controller="modeldeployment",name="modeldeployment"} 100
mlflow_operator_builds_total{result="pushed"} 5
mlflow_operator_builds_total{result="reused"} 95
mlflow_operator_build_duration_seconds_sum{result="pushed"} 50
mlflow_operator_build_duration_seconds_count{result="pushed"} 5
mlflow_operator_build_duration_seconds_sum{result="reused"} 0.5
mlflow_operator_mlflow_requests_total{code="200",operation="registered-models/alias"} 103
mlflow_operator_mlflow_requests_total{code="error",operation="model-versions/get"} 2
mlflow_operator_mlflow_request_duration_seconds_sum{operation="registered-models/alias"} 2.3
mlflow_operator_mlflow_request_duration_seconds_sum{operation="model-versions/get"} 1
mlflow_operator_resolutions_total{result="resolved",source="mlflow"} 5
mlflow_operator_resolutions_total{result="resolved",source="cache"} 95
rest_client_requests_total{code="200",host="h",method="GET"} 70
mlflow_operator_events_dropped_total{reason="queue_full"} 4
mlflow_operator_events_dropped_total{reason="refused"} 1
process_cpu_seconds_total 22
`

func TestOpsBetween(t *testing.T) {
	before, after := mustParse(t, opsBefore), mustParse(t, opsAfter)
	o := opsBetween(before, after, 100*time.Second)
	if o.reconcileCount != 200 || o.reconcileSeconds != 40 || o.workers != 4 || o.reconcileErrors != 3 {
		t.Errorf("reconciles: %+v", o)
	}
	if len(o.reconciles) != 2 || o.reconciles["success"] != 100 || o.reconciles["requeue_after"] != 100 {
		t.Errorf("reconciles by result: %v", o.reconciles)
	}
	// 40 worker-seconds of 4 workers x 100 s.
	if b := o.reconcileBusy(); b != 0.1 {
		t.Errorf("reconcile busy = %v, want 0.1", b)
	}
	// 400 s of waiting over 200 items.
	if w := o.queueWait(); w != 2*time.Second || o.adds != 240 || o.retries != 100 {
		t.Errorf("queue: wait %s, %+v", w, o)
	}
	if o.builds["pushed"] != 5 || o.builds["reused"] != 95 || total(o.buildSeconds) != 50.5 {
		t.Errorf("builds: %v %v", o.builds, o.buildSeconds)
	}
	// 50.5 s of building: of 2 workers x 100 s, of the 1 a namespace may use.
	if all, ns := o.buildBusy(nil); all != 50.5/200 || ns != 50.5/100 {
		t.Errorf("build busy = %v, %v", all, ns)
	}
	if all, ns := o.buildBusy([]string{"--build-workers=4", "--builds-per-namespace", "4"}); all != 50.5/400 || ns != 50.5/400 {
		t.Errorf("build busy of 4 = %v, %v", all, ns)
	}
	if total(o.mlflow) != 102 || o.mlflowFailed != 2 || total(o.mlflowSeconds) != 3 || o.resolutions["resolved/cache"] != 95 {
		t.Errorf("MLflow: %+v", o)
	}
	if o.apiClient != 70 || o.cpu != 20 || o.eventsDropped != 5 {
		t.Errorf("client %v, cpu %v, Events dropped %v", o.apiClient, o.cpu, o.eventsDropped)
	}
	s := sampleOf(3*time.Second, before, after)
	if s.depth != 42 || s.active != 3 || s.builds != 100 || s.mlflow != 102 || s.reconciles != 200 || s.apiClient != 70 {
		t.Errorf("sample = %+v", s)
	}
	if d, a := deepest([]opsSample{s, {depth: 50, active: 1}}); d != 50 || a != 3 {
		t.Errorf("deepest = %v, %v", d, a)
	}
}

func TestBusyAndMean(t *testing.T) {
	if busy(10, 0, time.Second) != 0 || busy(10, 2, 0) != 0 || busy(10, 2, 10*time.Second) != 0.5 {
		t.Error("busy")
	}
	if mean(1, 0) != 0 || mean(3, 2) != 1.5 {
		t.Error("mean")
	}
}

func TestBuildWorkersFlags(t *testing.T) {
	for _, c := range []struct {
		args        []string
		workers, ns int
	}{
		{nil, 2, 1},
		{[]string{"--build-workers=8"}, 8, 4},
		{[]string{"-build-workers", "3"}, 3, 1},
		{[]string{"--build-workers=8", "--build-workers=6", "--builds-per-namespace=6"}, 6, 6},
		{[]string{"--max-concurrent-reconciles=8", "build-workers=9"}, 2, 1},
		{[]string{"--build-workers=x", "--builds-per-namespace=0"}, 2, 1},
	} {
		w, ns := buildWorkers(c.args)
		if w != c.workers || ns != c.ns {
			t.Errorf("%v: %d, %d; want %d, %d", c.args, w, ns, c.workers, c.ns)
		}
	}
	if v, ok := flagValue([]string{"--a", "1", "-b=2"}, "b"); !ok || v != "2" {
		t.Errorf("flagValue b = %q, %v", v, ok)
	}
	if _, ok := flagValue([]string{"--a"}, "a"); ok {
		t.Error("a flag without its value counted")
	}
}

// TestReportBlocks prints the creation blocks of a made-up run: they must
// not fail on a run without samples or builds.
func TestReportBlocks(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	r := &result{n: 1, allReady: 12 * time.Second}
	cond := []map[string]trueAt{{"ModelResolved": {seen: start.Add(time.Second), transition: start}}}
	r.creation = creation{objects: stepsOf(start, []time.Time{start}, cond, []time.Time{start.Add(12 * time.Second)}), conditions: cond,
		ops: opsBetween(mustParse(t, opsBefore), mustParse(t, opsAfter), 13*time.Second)}
	var b bytes.Buffer
	printSteps(&b, r)
	printTimeWent(&b, config{}, r)
	out := b.String()
	for _, want := range []string{"create -> ModelResolved         | 1       | 1.0 s", "ImageReady        | 0       | -", "12.0 s             | 1",
		"reconcile workers: 77% busy of 4 x 13.0 s", "mean wait 2.0 s", "mean 200 ms", "mean 29 ms",
		"pushed 5 (mean 10.0 s)", "resolved/cache 95"} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in\n%s", want, out)
		}
	}
	if s := r.creation.summary(config{}); !strings.Contains(s, "mean queue wait 2.0 s") {
		t.Errorf("summary = %q", s)
	}
}
