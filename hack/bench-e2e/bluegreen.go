package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"

	v1alpha1 "github.com/mlflow-operator/mlflow-operator/api/v1alpha1"
	"github.com/mlflow-operator/mlflow-operator/test/harness/mlflowserver"
)

// BlueGreen's kinds of run. Its candidate is the preview set (the new
// version's whole set beside production, unexposed); its promotion is a
// switch of the Service; its rollback, the alias moved back while the old
// set is kept; and a version whose pods die is held in the preview.
var (
	blueGreenPromotionKind = &runKind{name: "promotion", title: "promotion by webhook, step by step (+ time since the previous step)",
		marks: []string{markResolved, markImage, markCandidate, markPreviewReady, markPromoted, markReplaced, markReady, markOldKept},
		labels: map[string]string{
			markImage:     "image built and pushed, preview set applied (unexposed)",
			markCandidate: "first preview pod Ready",
			markPromoted:  "smoke test passed, switch decided (status.promoting, status.activeSlot)",
			markReplaced:  "Service switched: the active set runs the new version, every pod Ready",
		},
		totals: []total{
			{"= preview set complete -> Service switched", markPreviewReady, markReplaced},
			{"= alias moved -> Ready", "", markReady},
		},
		end: markReady}
	switchBackKind = &runKind{name: "rollback (alias moved back, switch)",
		title: "rollback (alias moved back, switch): a good version promoted, then the alias moved back to the previous one within scaleDownDelay",
		marks: []string{markResolved, markPromoted, markRestored, markReady},
		labels: map[string]string{
			markResolved: "alias moved back seen, version resolved (status.target)",
			markPromoted: "switch back decided (status.promoting; PreviouslyServed, no smoke test)",
			markRestored: "Service selects the old set again, every pod Ready",
			markReady:    "Ready reported on the old version",
		},
		totals: []total{
			{"= switch latency: decided -> Service on the old set", markPromoted, markRestored},
			{"= alias moved back -> Service on the old set", "", markRestored},
			{"= alias moved back -> Ready", "", markReady},
		},
		end: markRestored, decided: markPromoted, restored: markRestored}
	heldKind = &runKind{name: "dying version held", title: "a version whose pods die in the preview set: held (CandidateFailed), production untouched",
		marks:  []string{markResolved, markImage, markCrashed, markHeld, markPreviewGone},
		labels: map[string]string{markImage: "image built and pushed, preview set applied (unexposed)"},
		totals: []total{
			{"= alias moved -> held", "", markHeld},
			{"= alias moved -> preview gone", "", markPreviewGone},
		},
		end: markHeld}
)

// switchBack promotes a new good version over the one d serves, then moves
// the alias back to the previous one while BlueGreen keeps its set (the
// ModelDeployment's scaleDownDelay is minutes: see strategy.go) and
// measures the switch back, with the client sending predictions (until
// proxyWindow after Ready): the promotion back decided, the Service
// selecting the old set again and Ready. It notes a switch that started
// pods or smoke-tested, and with Canary one that went through canary
// steps (the Service selecting both sets).
func (b *bench) switchBack(ctx context.Context, d *deployment) (sample, error) {
	old := d.serving
	up, err := b.promote(ctx, d)
	if err != nil {
		return sample{version: old}, err
	}
	v := d.serving
	r := sample{version: old}
	progress("%s: version %s promoted over %s (%s), moving the alias back", d.md.Namespace, v, old, runLine(up, blueGreenPromotionKind))
	before := d.obs.now()
	role := keptRole(before, old)
	if role == "" {
		return r, b.withLogs(fmt.Errorf("switch back to version %s: its set is not running beside production after version %s's promotion\n%s", old, v, d.obs.describe()))
	}
	pods := livePods(before, role, old)
	probes := switchBackProbes(old)
	if d.md.Spec.Canary() {
		probes = append(probes, canaryTrafficProbe(old))
	}
	err = b.timed(ctx, d, old, probes, &r, func() error {
		if err := d.obs.waitMark(ctx, markRestored, readyTimeout); err != nil {
			return err
		}
		if err := d.obs.waitMark(ctx, markReady, readyTimeout); err != nil {
			return err
		}
		return linger(ctx, proxyWindow)
	})
	if err != nil {
		return r, b.withLogs(fmt.Errorf("switch back to version %s: %w", old, err))
	}
	d.serving = old
	after := d.obs.now()
	if got := livePods(after, role, old); !slices.Equal(got, pods) {
		r.notes = append(r.notes, fmt.Sprintf("the old set's pods changed across the switch (it should start none): %v before, %v after", pods, got))
	}
	if c := meta.FindStatusCondition(after.md.Status.Conditions, v1alpha1.ConditionCandidateVerified); c == nil || c.Reason != string(v1alpha1.ReasonPreviouslyServed) {
		r.notes = append(r.notes, fmt.Sprintf("the switch back was not promoted as PreviouslyServed: CandidateVerified %+v", c))
	}
	if at, ok := r.t.at[markCanaryTraffic]; ok {
		r.notes = append(r.notes, fmt.Sprintf("the switch back went through canary steps: the Service selected both sets at %s from the alias change", secs(at.Sub(r.t.start))))
	}
	return r, nil
}

// held registers a version whose server dies in every pod but a
// RollingUpdate candidate's (the fixture's dying model), moves the alias
// to it and measures BlueGreen holding it: its preview set applied, a pod
// of it crashed, the version failed (CandidateFailed) and the preview's
// pods gone, while production keeps the same pods, Ready, behind the
// Service and the client sends predictions through it. Then the alias
// goes back. With Canary the preview is the canary set, which must fail
// before it takes traffic: a canary that took some is noted (and
// production marked disturbed, the Service having selected both sets).
func (b *bench) held(ctx context.Context, d *deployment) (sample, error) {
	d.seed++
	reg, err := b.st.MLflow.Fixture(ctx, mlflowserver.Op{"op": "register", "model": d.model, "seed": d.seed, "kind": "dying", "die_after": 0})
	if err != nil {
		return sample{}, err
	}
	bad, good := reg[0].Version, d.serving
	r := sample{version: bad}
	before := d.obs.now()
	role := activeRole(before.md)
	pods := livePods(before, role, good)
	var touched string
	probes := heldProbes(bad, good, role, &touched)
	if d.md.Spec.Canary() {
		probes = append(probes, canaryTrafficProbe(bad))
	}
	err = b.timed(ctx, d, bad, probes, &r, func() error {
		// A version promoted instead would never be held: fail at once.
		err := d.obs.waitFor(ctx, "version "+bad+" held (CandidateFailed) or promoted", readyTimeout, func(s view) bool {
			return heldOn(s.md, bad) || promotedTo(s.md, bad)
		})
		if err == nil && promotedTo(d.obs.now().md, bad) {
			return fmt.Errorf("version %s was promoted: its pods did not die in the preview (or canary) set (the fixture's dying model must die in the roles blue and green)\n%s",
				bad, d.obs.describe())
		}
		if err != nil {
			return err
		}
		return d.obs.waitMark(ctx, markPreviewGone, settleTimeout)
	})
	if err != nil {
		return r, b.withLogs(fmt.Errorf("held version %s: %w", bad, err))
	}
	if at, ok := r.t.at[markCanaryTraffic]; ok {
		r.notes = append(r.notes, fmt.Sprintf("the dying version's canary took traffic at %s from the alias change, before it was held", secs(at.Sub(r.t.start))))
	}
	if at, ok := r.t.at[markTouched]; ok {
		r.notes = append(r.notes, fmt.Sprintf("production disturbed at %s from the alias change: %s", secs(at.Sub(r.t.start)), touched))
	}
	if got := livePods(d.obs.now(), role, good); !slices.Equal(got, pods) {
		r.notes = append(r.notes, fmt.Sprintf("production's pods changed: %v before, %v after", pods, got))
	}
	return r, b.aliasBack(ctx, d, good)
}

// heldSummary is a line for the summary: how long BlueGreen (or Canary)
// took to hold a dying version, whether production stayed untouched, and
// the requests.
func heldSummary(r *result) string {
	set := "preview"
	if r.held.kind == canaryHeldKind {
		set = "canary"
	}
	untouched := 0
	for _, x := range r.held.runs {
		if len(x.notes) == 0 {
			untouched++
		}
	}
	held := medianOf(timelines(r.held.runs), func(t timeline) (time.Duration, bool) { return t.between("", markHeld) })
	return strings.Join([]string{
		fmt.Sprintf("%s, a version whose pods die in the %s set: held after %s (median, alias moved -> CandidateFailed)", r.name, set, held),
		fmt.Sprintf("production untouched in %d of %d runs", untouched, len(r.held.runs)),
		fmt.Sprintf("failed requests %s.", failedText(r.held.runs)),
	}, "; ")
}
