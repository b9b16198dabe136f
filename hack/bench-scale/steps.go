package main

import (
	"fmt"
	"io"
	"time"

	v1alpha1 "github.com/mlflow-operator/mlflow-operator/api/v1alpha1"
)

// stepConditions are the conditions a new ModelDeployment turns True on
// its way to Ready, in order: the registry answered, the image is in the
// registry, the candidate passed (on readiness when the smoke test is
// off), production serves it on all replicas.
var stepConditions = []string{v1alpha1.ConditionModelResolved, v1alpha1.ConditionImageReady,
	v1alpha1.ConditionCandidateVerified, v1alpha1.ConditionReady}

// stepTime is when an object reached a step, since the first create; ok
// false: not reached.
type stepTime struct {
	at time.Duration
	ok bool
}

// objectSteps is when one object was created (its create call returned)
// and reached each of stepConditions, since the first create.
type objectSteps struct {
	created time.Duration
	at      []stepTime // by stepConditions
}

// stepsOf puts together, for each object, its create, the first time the
// tracker saw each condition of stepConditions True (cond), and for Ready
// the first time it saw it Ready on its version (ready, zero: not yet), as
// the headline figures count it.
func stepsOf(start time.Time, createdAt []time.Time, cond []map[string]trueAt, ready []time.Time) []objectSteps {
	out := make([]objectSteps, len(createdAt))
	for i := range out {
		o := objectSteps{created: createdAt[i].Sub(start), at: make([]stepTime, len(stepConditions))}
		for k, typ := range stepConditions {
			var t time.Time
			if typ == v1alpha1.ConditionReady {
				t = ready[i]
			} else if c, ok := cond[i][typ]; ok {
				t = c.seen
			}
			if !t.IsZero() {
				o.at[k] = stepTime{at: t.Sub(start), ok: true}
			}
		}
		out[i] = o
	}
	return out
}

// spread is how many objects a figure has, and its distribution.
type spread struct {
	name          string
	objects       int
	first         time.Duration // the smallest
	p50, p90, max time.Duration
}

func spreadOf(name string, d []time.Duration) spread {
	s := spread{name: name, objects: len(d)}
	if len(d) > 0 {
		s.first, s.max = d[0], d[0]
		for _, x := range d {
			s.first, s.max = min(s.first, x), max(s.max, x)
		}
		s.p50, s.p90 = percentile(d, 50), percentile(d, 90)
	}
	return s
}

// cells prints the times d of s, "-" each when s has no objects.
func (s spread) cells(d ...time.Duration) []string {
	out := make([]string, len(d))
	for i, x := range d {
		out[i] = "-"
		if s.objects > 0 {
			out[i] = secs(x)
		}
	}
	return out
}

// reached is, for the creates and then each step, how many objects got
// there and when (since the first create).
func reached(objs []objectSteps) []spread {
	created := make([]time.Duration, len(objs))
	for i, o := range objs {
		created[i] = o.created
	}
	out := []spread{spreadOf("created", created)}
	for k, typ := range stepConditions {
		var d []time.Duration
		for _, o := range objs {
			if o.at[k].ok {
				d = append(d, o.at[k].at)
			}
		}
		out = append(out, spreadOf(typ, d))
	}
	return out
}

// intervals is, for each step, the time from the step before (the create
// for the first) to it, over the objects that reached both.
func intervals(objs []objectSteps) []spread {
	var out []spread
	for k := range stepConditions {
		var d []time.Duration
		for _, o := range objs {
			prev := stepTime{at: o.created, ok: true}
			if k > 0 {
				prev = o.at[k-1]
			}
			if prev.ok && o.at[k].ok {
				d = append(d, o.at[k].at-prev.at)
			}
		}
		out = append(out, spreadOf(intervalName(k), d))
	}
	return out
}

// intervalName names the interval that ends at step k.
func intervalName(k int) string {
	if k == 0 {
		return "create -> " + stepConditions[0]
	}
	return stepConditions[k-1] + " -> " + stepConditions[k]
}

// statusLag is, over every condition first seen True, the time from its
// lastTransitionTime (set by the reconcile that changed it, in whole
// seconds, so up to 1 s early) to the tracker seeing it: the rest of that
// reconcile, the status write, and the watch event's way to the bench.
func statusLag(cond []map[string]trueAt) spread {
	var d []time.Duration
	for _, m := range cond {
		for _, c := range m {
			if !c.transition.IsZero() {
				d = append(d, c.seen.Sub(c.transition))
			}
		}
	}
	return spreadOf("status written -> seen", d)
}

// curveRow is the state of the creation at one time since the first
// create: objects created, objects past each step, and the operator's
// figures sampled last before it.
type curveRow struct {
	at      time.Duration
	created int
	reached []int // by stepConditions
	sample  opsSample
	sampled bool
}

// curve is a row every `every` from `every` on, as the progress lines
// print them, and one at until (all Ready).
func curve(objs []objectSteps, samples []opsSample, every, until time.Duration) []curveRow {
	var marks []time.Duration
	for t := every; t < until; t += every {
		marks = append(marks, t)
	}
	marks = append(marks, until)
	out := make([]curveRow, len(marks))
	for i, t := range marks {
		r := curveRow{at: t, reached: make([]int, len(stepConditions))}
		for _, o := range objs {
			if o.created <= t {
				r.created++
			}
			for k, s := range o.at {
				if s.ok && s.at <= t {
					r.reached[k]++
				}
			}
		}
		for _, s := range samples {
			if s.at <= t {
				r.sample, r.sampled = s, true
			}
		}
		out[i] = r
	}
	return out
}

// printSteps writes the per-object step figures and the curve of one run.
func printSteps(w io.Writer, r *result) {
	c := r.creation
	fmt.Fprintf(w, "  per object, since the first create: when the bench's watch first saw each condition True (Ready: Ready on its version)\n")
	rows := [][]string{{"step", "objects", "first", "p50", "p90", "last"}}
	for _, s := range reached(c.objects) {
		rows = append(rows, append([]string{s.name, fmt.Sprint(s.objects)}, s.cells(s.first, s.p50, s.p90, s.max)...))
	}
	printIndented(w, "    ", rows)
	fmt.Fprintf(w, "  per object, from one step to the next (objects that reached both)\n")
	rows = [][]string{{"interval", "objects", "p50", "p90", "max"}}
	for _, s := range intervals(c.objects) {
		rows = append(rows, append([]string{s.name, fmt.Sprint(s.objects)}, s.cells(s.p50, s.p90, s.max)...))
	}
	printIndented(w, "    ", rows)
	lag := statusLag(c.conditions)
	fmt.Fprintf(w, "  condition's lastTransitionTime -> seen by the bench (%d conditions; lastTransitionTime is in whole seconds, up to 1 s early): p50 %s, p90 %s, max %s\n",
		lag.objects, secs(lag.p50), secs(lag.p90), secs(lag.max))
	fmt.Fprintf(w, "  curve: objects past each step; sampled every %s from the operator's metrics, its reconcile queue's depth, busy reconcile workers,\n"+
		"  and since the first create, reconciles, builds finished, MLflow requests, API requests [client-go]\n", secs(sampleEvery))
	rows = [][]string{{"since first create", "created", "resolved", "image", "verified", "Ready", "queue", "busy", "reconciles", "builds", "MLflow", "API"}}
	for _, p := range curve(c.objects, c.samples, 10*time.Second, r.allReady) {
		row := []string{secs(p.at), fmt.Sprint(p.created)}
		for _, n := range p.reached {
			row = append(row, fmt.Sprint(n))
		}
		if p.sampled {
			s := p.sample
			row = append(row, num(s.depth), num(s.active), num(s.reconciles), num(s.builds), num(s.mlflow), num(s.apiClient))
		} else {
			row = append(row, "-", "-", "-", "-", "-", "-")
		}
		rows = append(rows, row)
	}
	printIndented(w, "    ", rows)
}
