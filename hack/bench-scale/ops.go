package main

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mlflow-operator/mlflow-operator/hack/internal/table"
)

// controllerName is the ModelDeployment controller's name: the controller
// label of controller-runtime's series, the name label of its work
// queue's.
const controllerName = "modeldeployment"

// creation is what the creation phase of one run (the first create to all
// Ready) is made of.
type creation struct {
	objects    []objectSteps
	conditions []map[string]trueAt // per object, first True of stepConditions
	samples    []opsSample         // the operator's metrics while waiting
	ops        opsWindow           // its counters, before the first create -> all Ready
	machine    machineWindow       // the machine's CPU, by part of the test bed, over the same window
}

// opsWindow is what the operator's own counters and histograms (sums and
// counts) grew by between two scrapes, elapsed apart.
type opsWindow struct {
	elapsed time.Duration
	// Reconciles of the ModelDeployment controller (controller-runtime).
	reconciles       map[string]float64 // by result
	reconcileSeconds float64            // controller_runtime_reconcile_time_seconds_sum
	reconcileCount   float64
	reconcileErrors  float64
	workers          float64 // max_concurrent_reconciles, at the end
	// Its work queue: time items waited before a worker took them, adds,
	// delayed adds (rate-limited requeues, RequeueAfter).
	queueSeconds, queueCount float64
	adds, retries            float64
	// Builds by result: finished, and the seconds they ran once a worker
	// started them (mlflow_operator_build_duration_seconds).
	builds, buildSeconds map[string]float64
	// MLflow requests by operation, their seconds, and those without a 2xx
	// answer; resolutions by result/source.
	mlflow, mlflowSeconds map[string]float64
	mlflowFailed          float64
	resolutions           map[string]float64
	apiClient             float64 // rest_client_requests_total
	eventsDropped         float64 // mlflow_operator_events_dropped_total
	cpu                   float64 // process_cpu_seconds_total
}

func opsBetween(before, after scrape, elapsed time.Duration) opsWindow {
	ctl := map[string]string{"controller": controllerName}
	queue := map[string]string{"name": controllerName}
	d := func(name string, match map[string]string) float64 {
		return after.sum(name, match) - before.sum(name, match)
	}
	reconciles := delta(before, after, "controller_runtime_reconcile_total", "controller", "result")
	w := opsWindow{elapsed: elapsed, reconciles: map[string]float64{},
		reconcileSeconds: d("controller_runtime_reconcile_time_seconds_sum", ctl),
		reconcileCount:   d("controller_runtime_reconcile_time_seconds_count", ctl),
		reconcileErrors:  d("controller_runtime_reconcile_errors_total", ctl),
		workers:          after.sum("controller_runtime_max_concurrent_reconciles", ctl),
		queueSeconds:     d("workqueue_queue_duration_seconds_sum", queue),
		queueCount:       d("workqueue_queue_duration_seconds_count", queue),
		adds:             d("workqueue_adds_total", queue),
		retries:          d("workqueue_retries_total", queue),
		builds:           delta(before, after, "mlflow_operator_builds_total", "result"),
		buildSeconds:     delta(before, after, "mlflow_operator_build_duration_seconds_sum", "result"),
		mlflow:           delta(before, after, "mlflow_operator_mlflow_requests_total", "operation"),
		mlflowSeconds:    delta(before, after, "mlflow_operator_mlflow_request_duration_seconds_sum", "operation"),
		resolutions:      delta(before, after, "mlflow_operator_resolutions_total", "result", "source"),
		apiClient:        d("rest_client_requests_total", nil),
		eventsDropped:    d("mlflow_operator_events_dropped_total", nil),
		cpu:              d("process_cpu_seconds_total", nil),
	}
	for k, v := range reconciles {
		if c, res, _ := strings.Cut(k, "/"); c == controllerName {
			w.reconciles[res] = v
		}
	}
	for k, v := range delta(before, after, "mlflow_operator_mlflow_requests_total", "code") {
		if !strings.HasPrefix(k, "2") {
			w.mlflowFailed += v
		}
	}
	return w
}

// reconcileBusy is the share of the reconcile workers' time spent
// reconciling.
func (o opsWindow) reconcileBusy() float64 { return busy(o.reconcileSeconds, o.workers, o.elapsed) }

// queueWait is the mean time an item waited in the reconcile queue.
func (o opsWindow) queueWait() time.Duration {
	return time.Duration(mean(o.queueSeconds, o.queueCount) * float64(time.Second))
}

// buildBusy is the share of the build workers' time spent building, of
// all of them and of those one namespace may use.
func (o opsWindow) buildBusy(operatorArgs []string) (all, namespace float64) {
	workers, perNS := buildWorkers(operatorArgs)
	s := total(o.buildSeconds)
	return busy(s, float64(workers), o.elapsed), busy(s, float64(min(workers, perNS)), o.elapsed)
}

// summary is one line of the creation's figures, printed once all are
// Ready.
func (c creation) summary(cfg config) string {
	depth, _ := deepest(c.samples)
	all, ns := c.ops.buildBusy(cfg.operatorArgs)
	return fmt.Sprintf("reconcile workers %.0f%% busy, mean queue wait %s, deepest queue %s; build workers %.0f%% busy (%.0f%% of what one namespace may use)",
		100*c.ops.reconcileBusy(), secs(c.ops.queueWait()), num(depth), 100*all, 100*ns)
}

// busy is the share of capacity workers had over elapsed that seconds of
// work took (0 when there was no capacity).
func busy(seconds, workers float64, elapsed time.Duration) float64 {
	if workers <= 0 || elapsed <= 0 {
		return 0
	}
	return seconds / (workers * elapsed.Seconds())
}

// mean is sum/count, 0 for no count.
func mean(sum, count float64) float64 {
	if count <= 0 {
		return 0
	}
	return sum / count
}

// buildWorkers is the operator's --build-workers and the builds one
// namespace may run at once (--builds-per-namespace; 0: half the workers,
// at least 1), from the flags the bench gave it (the operator does not
// export them), as internal/builds.Pool reads them.
func buildWorkers(args []string) (workers, perNamespace int) {
	workers, perNamespace = 2, 0
	if v, ok := flagValue(args, "build-workers"); ok {
		if n, err := strconv.Atoi(v); err == nil && n > 0 {
			workers = n
		}
	}
	if v, ok := flagValue(args, "builds-per-namespace"); ok {
		if n, err := strconv.Atoi(v); err == nil && n > 0 {
			perNamespace = n
		}
	}
	if perNamespace == 0 {
		perNamespace = max(1, workers/2)
	}
	return workers, perNamespace
}

// flagValue is the last value args give flag name, as Go's flag package
// reads it: -name=v, --name=v, -name v or --name v.
func flagValue(args []string, name string) (string, bool) {
	value, found := "", false
	for i := 0; i < len(args); i++ {
		a := strings.TrimPrefix(strings.TrimPrefix(args[i], "-"), "-")
		if a == args[i] {
			continue // not a flag
		}
		if n, v, ok := strings.Cut(a, "="); ok && n == name {
			value, found = v, true
		} else if a == name && i+1 < len(args) {
			value, found = args[i+1], true
			i++
		}
	}
	return value, found
}

// sampleEvery is how often opsSampler scrapes the operator.
const sampleEvery = 5 * time.Second

// opsSample is the operator at one time since the first create: its
// reconcile queue's depth (items ready for a worker; those waiting for a
// RequeueAfter are not counted), its busy reconcile workers, and the
// builds finished, MLflow requests, reconciles and API requests
// (client-go) since the first create.
type opsSample struct {
	at                    time.Duration
	depth, active         float64
	builds, mlflow        float64
	reconciles, apiClient float64
}

func sampleOf(at time.Duration, base, sc scrape) opsSample {
	ctl := map[string]string{"controller": controllerName}
	d := func(name string, match map[string]string) float64 { return sc.sum(name, match) - base.sum(name, match) }
	return opsSample{at: at,
		depth:      sc.sum("workqueue_depth", map[string]string{"name": controllerName}),
		active:     sc.sum("controller_runtime_active_workers", ctl),
		builds:     d("mlflow_operator_builds_total", nil),
		mlflow:     d("mlflow_operator_mlflow_requests_total", nil),
		reconciles: d("controller_runtime_reconcile_total", ctl),
		apiClient:  d("rest_client_requests_total", nil),
	}
}

// opsSampler scrapes the operator every sampleEvery from the first create
// until stopped.
type opsSampler struct {
	url   string
	start time.Time
	base  scrape
	stop  chan struct{}
	done  chan struct{}
	mu    sync.Mutex
	got   []opsSample
}

func startOpsSampler(url string, start time.Time, base scrape) *opsSampler {
	s := &opsSampler{url: url, start: start, base: base, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		t := time.NewTicker(sampleEvery)
		defer t.Stop()
		for {
			select {
			case <-s.stop:
				return
			case <-t.C:
			}
			// A failed scrape leaves a gap; the samples are best effort.
			if sc, err := scrapeMetrics(s.url); err == nil {
				s.mu.Lock()
				s.got = append(s.got, sampleOf(time.Since(s.start), s.base, sc))
				s.mu.Unlock()
			}
		}
	}()
	return s
}

// finish stops sampling and returns the samples.
func (s *opsSampler) finish() []opsSample {
	close(s.stop)
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.got
}

// deepest is the highest queue depth and the most busy workers sampled.
func deepest(samples []opsSample) (depth, active float64) {
	for _, s := range samples {
		depth, active = max(depth, s.depth), max(active, s.active)
	}
	return depth, active
}

// printTimeWent writes where the time of one run's creation went: the
// reconcile and build workers' utilisation, the queue wait, MLflow and the
// API server.
func printTimeWent(w io.Writer, c config, r *result) {
	o := r.creation.ops
	el := o.elapsed
	pct := func(v float64) string { return fmt.Sprintf("%.0f%%", 100*v) }
	ms := short
	fmt.Fprintf(w, "  where the time went (the operator's counters, scraped before the first create and once all were Ready, %s apart):\n", secs(el))
	depth, active := deepest(r.creation.samples)
	fmt.Fprintf(w, "    reconcile workers: %s busy of %s x %s (%s reconciles, mean %s; %s worker-s); most busy at once %s (sampled)\n",
		pct(o.reconcileBusy()), num(o.workers), secs(el), num(o.reconcileCount),
		ms(mean(o.reconcileSeconds, o.reconcileCount)), num(round1(o.reconcileSeconds)), num(active))
	fmt.Fprintf(w, "      results: %s; errors %s\n", joinCounts(o.reconciles, 1), num(o.reconcileErrors))
	fmt.Fprintf(w, "    reconcile queue: mean wait %s over %s items taken; deepest %s (sampled every %s); %s adds, %s of them delayed (requeues)\n",
		ms(o.queueWait().Seconds()), num(o.queueCount), num(depth), secs(sampleEvery), num(o.adds), num(o.retries))
	workers, perNS := buildWorkers(c.operatorArgs)
	all, ns := o.buildBusy(c.operatorArgs)
	fmt.Fprintf(w, "    build workers: %s busy of %d x %s; %s of the %d one namespace may use (all objects are in one); %s worker-s\n",
		pct(all), workers, secs(el), pct(ns), min(workers, perNS), num(round1(total(o.buildSeconds))))
	var parts []string
	for _, res := range []string{"pushed", "reused", "failed", "canceled"} {
		if n := o.builds[res]; n > 0 {
			parts = append(parts, fmt.Sprintf("%s %s (mean %s)", res, num(n), secs(time.Duration(mean(o.buildSeconds[res], n)*float64(time.Second)))))
		}
	}
	if len(parts) == 0 {
		parts = []string{"none"}
	}
	fmt.Fprintf(w, "      builds: %s\n", strings.Join(parts, ", "))
	mlflowSecs := total(o.mlflowSeconds)
	fmt.Fprintf(w, "    MLflow: %s requests (%s without a 2xx answer), mean %s, %s s in all; by operation: %s\n",
		num(total(o.mlflow)), num(o.mlflowFailed), ms(mean(mlflowSecs, total(o.mlflow))), num(round1(mlflowSecs)), joinCounts(o.mlflow, 1))
	fmt.Fprintf(w, "      resolutions by result/source: %s\n", joinCounts(o.resolutions, 1))
	api := r.createPhase
	fmt.Fprintf(w, "    API: %s requests [apiserver] in %s = %s/s (%s writes/s); [client-go] %s; Events recorded but not written %s\n",
		num(api.all), secs(r.allReady), rate(api.all/r.allReady.Seconds()), rate(api.writes/r.allReady.Seconds()), num(o.apiClient), num(o.eventsDropped))
	if l := api.latency(); l.objects > 0 {
		fmt.Fprintf(w, "      API server time per request (audit: received -> response complete, watches excluded): mean %s, p90 %s, max %s; %s s in all\n",
			ms(api.serverSeconds/float64(l.objects)), ms(l.p90.Seconds()), ms(l.max.Seconds()), num(round1(api.serverSeconds)))
	}
	fmt.Fprintf(w, "    operator CPU: %s s in %s = %.2f of the machine's cores\n", num(round1(o.cpu)), secs(el), mean(o.cpu, el.Seconds()))
	fmt.Fprintf(w, "    machine CPU (/proc, every process of the test bed): %s\n", r.creation.machine)
}

// short is a time in seconds, in milliseconds under a second.
func short(s float64) string {
	switch {
	case s >= 1:
		return fmt.Sprintf("%.1f s", s)
	case s >= 0.01:
		return fmt.Sprintf("%.0f ms", 1000*s)
	}
	return fmt.Sprintf("%.1f ms", 1000*s)
}

func round1(v float64) float64 { return float64(int64(v*10+0.5)) / 10 }

// printIndented writes rows as a table, each line after indent.
func printIndented(w io.Writer, indent string, rows [][]string) {
	var b strings.Builder
	table.Print(&b, rows)
	for _, line := range strings.Split(strings.TrimRight(b.String(), "\n"), "\n") {
		fmt.Fprintln(w, indent+line)
	}
}
