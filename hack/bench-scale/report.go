package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/mlflow-operator/mlflow-operator/hack/internal/table"
)

// report prints the figures of every run as a table, one column per N,
// then the breakdowns, then where each figure comes from.
func report(c config, rs []*result) {
	fmt.Printf("\nScale: N ModelDeployments on %d models (alias champion), minReplicas 1, pollInterval %s, kwok nodes, smoke test %s; one operator process per N\n\n",
		c.models, c.poll, map[bool]string{true: "on", false: "off (promoted on readiness)"}[c.smokeTest])
	head := []string{"figure"}
	for _, r := range rs {
		head = append(head, fmt.Sprintf("N=%d", r.n))
	}
	rows := [][]string{head}
	row := func(name string, f func(r *result) string) {
		line := []string{name}
		for _, r := range rs {
			line = append(line, f(r))
		}
		rows = append(rows, line)
	}
	perMin := func(v float64, r *result) float64 { return v / r.idle.Minutes() }
	perPoll := func(v float64, r *result) float64 { return v * c.poll.Seconds() / r.idle.Seconds() }
	row("all created (from the first create)", func(r *result) string { return secs(r.created) })
	row("all Ready (from the first create)", func(r *result) string { return secs(r.allReady) })
	row("per object create -> Ready: p50 / p90", func(r *result) string { return secs(r.p50) + " / " + secs(r.p90) })
	for k := range stepConditions {
		row("per object "+intervalName(k)+": p50 / p90", func(r *result) string {
			iv := intervals(r.creation.objects)[k]
			return secs(iv.p50) + " / " + secs(iv.p90)
		})
	}
	row("API requests until all Ready (writes)", func(r *result) string {
		return fmt.Sprintf("%s (%s)", num(r.createPhase.all), num(r.createPhase.writes))
	})
	row("until all Ready: reconcile workers busy", func(r *result) string {
		return fmt.Sprintf("%.0f%% of %s", 100*r.creation.ops.reconcileBusy(), num(r.creation.ops.workers))
	})
	row("until all Ready: mean reconcile queue wait", func(r *result) string { return secs(r.creation.ops.queueWait()) })
	row("until all Ready: build workers busy (of the ns's)", func(r *result) string {
		all, ns := r.creation.ops.buildBusy(c.operatorArgs)
		return fmt.Sprintf("%.0f%% (%.0f%%)", 100*all, 100*ns)
	})
	row("until all Ready: API requests / s", func(r *result) string { return rate(r.createPhase.all / r.allReady.Seconds()) })
	row("idle: API requests / min [apiserver]", func(r *result) string { return rate(perMin(r.idleAPI.all, r)) })
	row("idle: API writes / min [apiserver]", func(r *result) string { return rate(perMin(r.idleAPI.writes, r)) })
	row("idle: API requests / min [client-go]", func(r *result) string { return rate(perMin(total(r.idleClient), r)) })
	row("idle: MLflow requests / poll interval", func(r *result) string { return rate(perPoll(total(r.idleMLflow), r)) })
	row("idle: reconciles / min", func(r *result) string { return rate(perMin(total(r.idleReconcile), r)) })
	row("idle: ModelDeployment changes / min", func(r *result) string { return rate(perMin(float64(r.idleChanges), r)) })
	row("idle: objects that stopped being Ready", func(r *result) string { return fmt.Sprint(r.idleLost) })
	row("operator RSS idle / peak", func(r *result) string { return mib(r.rssIdle.rss) + " / " + mib(r.peak) })
	row("operator RSS idle: anonymous + file", func(r *result) string { return mib(r.rssIdle.anon) + " + " + mib(r.rssIdle.file) })
	row("Go: GOGC / soft memory limit", func(r *result) string { return r.goIdle.settings() })
	row("Go: highest RSS sampled (phase)", func(r *result) string {
		return fmt.Sprintf("%s (%s)", mib(r.goPeak.rss), r.goPeakPhase)
	})
	// The Go figures idle, then at the highest RSS sampled.
	goRow := func(name string, f func(g goMemory) int64) {
		row("Go: "+name+" idle / at peak", func(r *result) string {
			peak := "?"
			if r.goPeakRead {
				peak = mib(f(r.goPeak))
			}
			return mib(f(r.goIdle)) + " / " + peak
		})
	}
	goRow("mapped, not released", func(g goMemory) int64 { return g.mapped })
	goRow("heap in use", func(g goMemory) int64 { return g.heapInuse })
	goRow("heap free, not released", func(g goMemory) int64 { return g.heapFree })
	goRow("heap released to the OS", func(g goMemory) int64 { return g.heapReleased })
	goRow("stacks", func(g goMemory) int64 { return g.stacks })
	goRow("heap live (last GC)", func(g goMemory) int64 { return g.live })
	goRow("heap goal", func(g goMemory) int64 { return g.goal })
	row("GC until all Ready: cycles / GC CPU share / CPU", func(r *result) string { return r.gcCreate.String() })
	row("GC idle: cycles / GC CPU share / CPU", func(r *result) string { return r.gcIdle.String() })
	row("new version: objects of the model", func(r *result) string { return fmt.Sprint(r.move.objects) })
	row("new version: alias moved -> all Ready (p50)", func(r *result) string {
		return fmt.Sprintf("%s (%s)", secs(r.move.all), secs(r.move.p50))
	})
	row("new version: others stayed Ready", func(r *result) string {
		if r.move.othersLost == 0 {
			return fmt.Sprintf("yes (%d/%d)", r.move.othersReady, r.move.others)
		}
		return fmt.Sprintf("NO: %d of %d lost Ready (%d times)", r.move.othersLost, r.move.others, r.move.othersLostTimes)
	})
	for _, res := range []string{"pushed", "reused", "failed", "canceled"} {
		row("builds "+res, func(r *result) string { return num(r.builds[res]) })
	}
	table.Print(os.Stdout, rows)

	for _, r := range rs {
		fmt.Printf("\nN=%d, idle over %s, per minute [apiserver audit log, user %s], by verb and resource:\n  %s\n",
			r.n, secs(r.idle), operatorUser, joinCounts(r.idleAPI.byKey, 1/r.idle.Minutes()))
		if len(r.idleAPI.codes) > 0 {
			fmt.Printf("  answers other than 2xx: %s\n", joinCounts(r.idleAPI.codes, 1/r.idle.Minutes()))
		}
		fmt.Printf("  per minute [client-go rest_client_requests_total] by method: %s\n", joinCounts(r.idleClient, 1/r.idle.Minutes()))
		fmt.Printf("  MLflow requests per poll interval by operation: %s\n", joinCounts(r.idleMLflow, c.poll.Seconds()/r.idle.Seconds()))
		fmt.Printf("  reconciles per minute by controller/result: %s\n", joinCounts(r.idleReconcile, 1/r.idle.Minutes()))
		fmt.Printf("N=%d, from the first create to all Ready (%s) [apiserver], by verb and resource:\n  %s\n",
			r.n, secs(r.allReady), joinCounts(r.createPhase.byKey, 1))
		fmt.Printf("N=%d, the creation step by step:\n", r.n)
		printSteps(os.Stdout, r)
		printTimeWent(os.Stdout, c, r)
	}
	fmt.Printf(`
Sources: API requests and writes [apiserver]: kube-apiserver's audit log (level Metadata) of user %s,
the client certificate the operator alone runs with; a request counts when the API server received it
(a watch when it started). [client-go]: the operator's rest_client_requests_total, the same requests
seen from its side. MLflow requests: the operator's mlflow_operator_mlflow_requests_total, per poll
interval (%s); reconciles: controller_runtime_reconcile_total; builds: mlflow_operator_builds_total
over the whole run of one N. RSS: VmRSS (RssAnon + RssFile) at the end of the idle window and VmHWM
at the end of the run, /proc/<pid>/status of the operator process. Idle: %s after %s of settling once
all were Ready. Go: the operator's go_* series (runtime/metrics) at the end of the idle window and when
VmRSS, read every 2 s, was highest; mapped, not released is what a soft memory limit counts; the heap
is in use (spans holding objects), free (resident, kept for reuse) or released. GC: cycles, the GC's
share of the runtime's busy CPU (its own estimate, as of the last cycle) and the process's CPU time
(process_cpu_seconds_total). The operator ran with %s.
Creation step by step: for each object, when the bench's watch (an informer) first saw each condition
True, since the first create (the create: when its create call returned; Ready: Ready on its version,
as above); the operator sets lastTransitionTime in whole seconds, so the watch's time is used, and the
gap between the two is printed. Where the time went: the operator's metrics scraped just before the
first create and once all were Ready; busy = seconds of work / (workers x the time between the two
scrapes). Reconciles: controller_runtime_reconcile_time_seconds and _max_concurrent_reconciles of
controller %s; queue wait: workqueue_queue_duration_seconds (from an item being ready for a
worker to a worker taking it; a RequeueAfter's delay is not counted); its depth and the busy workers
(controller_runtime_active_workers) sampled every %s. Builds: mlflow_operator_build_duration_seconds
(from a worker starting a build; the wait for a worker is not exported); the build workers are
--build-workers and --builds-per-namespace as given to the operator (defaults 2 and half of them).
MLflow: mlflow_operator_mlflow_requests_total and _request_duration_seconds. API server time: the
audit log's stageTimestamp (stage ResponseComplete) minus requestReceivedTimestamp.
`, operatorUser, c.poll, c.idle, c.settle, operatorEnvText(c), controllerName, secs(sampleEvery))
}

func rate(v float64) string {
	if v >= 100 || v == float64(int64(v)) {
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.1f", v)
}

// operatorEnvText is what the run added to the operator's environment.
func operatorEnvText(c config) string {
	var parts []string
	if c.memoryLimit > 0 {
		parts = append(parts, fmt.Sprintf("MEMORY_LIMIT=%d (%s)", c.memoryLimit, mib(c.memoryLimit)))
	}
	parts = append(parts, c.operatorEnv...)
	if len(parts) == 0 {
		return "no MEMORY_LIMIT and nothing added to its environment"
	}
	return strings.Join(parts, " ")
}
