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

// runKind is one kind of run a strategy is measured with: its name in
// progress lines, its table's title, the marks the table shows in order
// (labels renames some of them, for a strategy whose step is another
// thing under the same mark), the totals under them, the mark a run's
// progress line totals to and, for a rollback, the marks the summary
// takes its latency between.
type runKind struct {
	name, title       string
	marks             []string
	labels            map[string]string
	totals            []total
	end               string
	decided, restored string
}

// label is how k's tables print mark.
func (k *runKind) label(mark string) string {
	if l, ok := k.labels[mark]; ok {
		return l
	}
	return mark
}

// series is the runs of one kind.
type series struct {
	kind *runKind
	runs []sample
}

// RollingUpdate's kinds of run; BlueGreen's are in bluegreen.go, Canary's
// in canary.go.
var (
	promotionKind = &runKind{name: "promotion", title: "promotion by webhook, step by step (+ time since the previous step)",
		marks: promotionMarks, totals: []total{{"= alias moved -> Ready", "", markReady}}, end: markReady}
	rollbackKind = &runKind{name: "rollback", title: "rollback of a version whose production pods die", marks: rollbackMarks,
		totals: []total{
			{"= rollback latency: decided -> restored", markRolledBack, markRestored},
			{"= alias moved -> restored", "", markRestored},
		},
		end: markRestored, decided: markRolledBack, restored: markRestored}
)

// runLine is one run in a progress line: each mark's time from the alias
// change, and the requests.
func runLine(x sample, k *runKind) string {
	var parts []string
	for _, p := range breakdown(x.t, k.marks) {
		if p.seen {
			parts = append(parts, fmt.Sprintf("%s %s", short(k.label(p.name)), secs(p.since)))
		}
	}
	total := "not reached"
	if d, ok := x.t.between("", k.end); ok {
		total = secs(d)
	}
	line := fmt.Sprintf("%s after the alias change (%s); requests %s", total, strings.Join(parts, ", "), loadText(x.load))
	for _, n := range x.notes {
		line += "; NOTE: " + n
	}
	return line
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

// report prints a table per strategy and kind of run (promotions, then
// rollbacks, then what else the strategy measures), the polling
// comparison when it ran, and the summary.
func report(c config, where string, results []*result, polled *result) {
	fmt.Printf("\nbench-e2e on %s; times from MLflow answering the alias change to a watch first showing each step\n", where)
	for _, r := range results {
		for _, s := range r.series() {
			fmt.Printf("\n%s: %s\n\n", r.name, s.kind.title)
			phaseTable(s)
		}
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
			row("webhook, "+results[0].name+" (pollInterval 1h)", results[0].promotions.runs)
		}
		row(polled.name, polled.promotions.runs)
		table.Print(os.Stdout, rows)
	}

	fmt.Printf("\nSummary (medians; failed requests: through the Service during every promotion / rollback)\n\n")
	rows := [][]string{{"strategy", "promotion (webhook): alias -> Ready", "rollback: decided -> restored", "rollback: alias -> restored",
		"failed requests, promotions", "failed requests, rollbacks"}}
	var notes []string
	for _, r := range results {
		p, rb := timelines(r.promotions.runs), timelines(r.rollbacks.runs)
		decided, restored := markRolledBack, markRestored
		if k := r.rollbacks.kind; k != nil {
			decided, restored = k.decided, k.restored
		}
		rows = append(rows, []string{r.name,
			medianOf(p, func(t timeline) (time.Duration, bool) { return t.between("", markReady) }),
			medianOf(rb, func(t timeline) (time.Duration, bool) { return t.between(decided, restored) }),
			medianOf(rb, func(t timeline) (time.Duration, bool) { return t.between("", restored) }),
			failedText(r.promotions.runs), failedText(r.rollbacks.runs)})
		if r.rollbacks.kind == switchBackKind {
			notes = append(notes, fmt.Sprintf("%s's rollback is %s: decided = the promotion back (PreviouslyServed) seen, "+
				"restored = the Service selects the old set again, every pod Ready (its table notes a switch that started pods).", r.name, switchBackKind.name))
		}
		if n := canarySummary(r); n != "" {
			notes = append(notes, n)
		}
		if len(r.held.runs) > 0 {
			notes = append(notes, heldSummary(r))
		}
	}
	table.Print(os.Stdout, rows)
	for _, n := range notes {
		fmt.Println("\n" + n)
	}
	fmt.Printf("\n%d promotions and %d rollbacks per strategy; medians per step need not add up to the median total.\n", c.runs, c.rollbacks)
}

// total is a row of a phase table: the time from mark from (the alias
// change when empty) to mark to.
type total struct{ label, from, to string }

// phaseTable prints one row per mark (the time since the previous step
// seen, per run and the median), the totals, the requests and what the
// runs noted.
func phaseTable(s series) {
	runs, marks, totals := s.runs, s.kind.marks, s.kind.totals
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
		cells := []string{s.kind.label(m)}
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
				where = "after: " + short(s.kind.label(m))
			}
			fmt.Printf("  run %d: a request failed at %s from the alias change (%s): %s\n", i+1, secs(f.At.Sub(x.t.start)), where, f.Err)
		}
	}
	for i, x := range runs {
		for _, n := range x.notes {
			fmt.Printf("  run %d: NOTE: %s\n", i+1, n)
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
