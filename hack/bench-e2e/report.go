package main

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/mlflow-operator/mlflow-operator/hack/internal/table"
	"github.com/mlflow-operator/mlflow-operator/test/harness/serviceload"
)

// runLine is one run in a progress line: each mark's time from the alias
// change, and the requests.
func runLine(x sample, marks []string, end string) string {
	var parts []string
	for _, p := range breakdown(x.t, marks) {
		if p.seen {
			parts = append(parts, fmt.Sprintf("%s %s", short(p.name), secs(p.since)))
		}
	}
	total := "not reached"
	if d, ok := x.t.between("", end); ok {
		total = secs(d)
	}
	return fmt.Sprintf("%s after the alias change (%s); requests %s", total, strings.Join(parts, ", "), loadText(x.load))
}

// short is a mark's name up to its first comma or parenthesis.
func short(mark string) string {
	if i := strings.IndexAny(mark, ",("); i > 0 {
		return strings.TrimSpace(mark[:i])
	}
	return mark
}

func loadText(l *serviceload.Result) string {
	if l == nil {
		return "n/a"
	}
	return fmt.Sprintf("%d sent, %d failed", l.Sent(), l.Failed)
}

// report prints a table per strategy (promotions, then rollbacks), the
// polling comparison when it ran, and the summary.
func report(c config, where string, results []*result, polled *result) {
	fmt.Printf("\nbench-e2e on %s; times from MLflow answering the alias change to a watch first showing each step\n", where)
	for _, r := range results {
		fmt.Printf("\n%s: promotion by webhook, step by step (+ time since the previous step)\n\n", r.name)
		phaseTable(r.promotions, promotionMarks, []total{{"= alias moved -> Ready", "", markReady}})
		fmt.Printf("\n%s: rollback of a version whose production pods die\n\n", r.name)
		phaseTable(r.rollback, rollbackMarks, []total{
			{"= rollback latency: decided -> restored", markRolledBack, markRestored},
			{"= alias moved -> restored", "", markRestored},
		})
	}
	if polled != nil {
		fmt.Printf("\nWebhook vs polling, promotion alias moved -> Ready\n\n")
		rows := [][]string{{"mode", "alias moved -> resolved (median)", "alias moved -> Ready: median", "min", "max"}}
		row := func(name string, runs []sample) {
			resolved := medianOf(timelines(runs), func(t timeline) (time.Duration, bool) { return t.between("", markResolved) })
			var ready []time.Duration
			for _, x := range runs {
				if d, ok := x.t.between("", markReady); ok {
					ready = append(ready, d)
				}
			}
			cells := []string{name, resolved, "n/a", "n/a", "n/a"}
			if m, ok := median(ready); ok {
				cells[2], cells[3], cells[4] = secs(m), secs(slices.Min(ready)), secs(slices.Max(ready))
			}
			rows = append(rows, cells)
		}
		if len(results) > 0 {
			row("webhook, "+results[0].name+" (pollInterval 1h)", results[0].promotions)
		}
		row(polled.name, polled.promotions)
		table.Print(os.Stdout, rows)
	}

	fmt.Printf("\nSummary (medians; failed requests: through the Service during every promotion / rollback)\n\n")
	rows := [][]string{{"strategy", "promotion (webhook): alias -> Ready", "rollback: decided -> restored", "rollback: alias -> restored",
		"failed requests, promotions", "failed requests, rollbacks"}}
	for _, r := range results {
		p, rb := timelines(r.promotions), timelines(r.rollback)
		rows = append(rows, []string{r.name,
			medianOf(p, func(t timeline) (time.Duration, bool) { return t.between("", markReady) }),
			medianOf(rb, func(t timeline) (time.Duration, bool) { return t.between(markRolledBack, markRestored) }),
			medianOf(rb, func(t timeline) (time.Duration, bool) { return t.between("", markRestored) }),
			failedText(r.promotions), failedText(r.rollback)})
	}
	table.Print(os.Stdout, rows)
	fmt.Printf("\n%d promotions and %d rollbacks per strategy; medians per step need not add up to the median total.\n", c.runs, c.rollbacks)
}

// total is a row of a phase table: the time from mark from (the alias
// change when empty) to mark to.
type total struct{ label, from, to string }

// phaseTable prints one row per mark (the time since the previous step
// seen, per run and the median), the totals and the requests.
func phaseTable(runs []sample, marks []string, totals []total) {
	if len(runs) == 0 {
		fmt.Println("(no runs)")
		return
	}
	head := []string{"step"}
	var phases [][]phase
	for i, x := range runs {
		head = append(head, fmt.Sprintf("run %d (v%s)", i+1, x.version))
		phases = append(phases, breakdown(x.t, marks))
	}
	head = append(head, "median")
	rows := [][]string{head}
	med := medianPhases(phases)
	for i, m := range marks {
		cells := []string{m}
		for _, p := range phases {
			cells = append(cells, plus(p[i]))
		}
		rows = append(rows, append(cells, plus(med[i])))
	}
	for _, tot := range totals {
		f := func(t timeline) (time.Duration, bool) { return t.between(tot.from, tot.to) }
		cells := []string{tot.label}
		for _, x := range runs {
			cells = append(cells, medianOf([]timeline{x.t}, f))
		}
		rows = append(rows, append(cells, medianOf(timelines(runs), f)))
	}
	cells := []string{"requests through the Service: sent / failed"}
	var sent, failed int64
	for _, x := range runs {
		if x.load == nil {
			cells = append(cells, "n/a")
			continue
		}
		cells = append(cells, fmt.Sprintf("%d / %d", x.load.Sent(), x.load.Failed))
		sent, failed = sent+x.load.Sent(), failed+x.load.Failed
	}
	if runs[0].load == nil {
		cells = append(cells, "n/a")
	} else {
		cells = append(cells, fmt.Sprintf("%d / %d (all runs)", sent, failed))
	}
	table.Print(os.Stdout, append(rows, cells))
	for i, x := range runs {
		if x.load == nil {
			continue
		}
		for _, f := range x.load.Failures {
			where := "before any step"
			if m := lastMarkBefore(x.t, f.At); m != "" {
				where = "after: " + short(m)
			}
			fmt.Printf("  run %d: a request failed at %s from the alias change (%s): %s\n", i+1, secs(f.At.Sub(x.t.start)), where, f.Err)
		}
	}
}

func plus(p phase) string {
	if !p.seen {
		return "-"
	}
	return "+" + secs(p.delta)
}

// failedText is the failed requests of runs, of the requests sent.
func failedText(runs []sample) string {
	if len(runs) == 0 {
		return "n/a"
	}
	var sent, failed int64
	for _, x := range runs {
		if x.load == nil {
			return "n/a (kwok: no Service routing)"
		}
		sent, failed = sent+x.load.Sent(), failed+x.load.Failed
	}
	return fmt.Sprintf("%d of %d", failed, sent)
}

func timelines(runs []sample) []timeline {
	out := make([]timeline, len(runs))
	for i, x := range runs {
		out[i] = x.t
	}
	return out
}
