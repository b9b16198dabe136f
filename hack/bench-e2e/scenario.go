package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/mlflow-operator/mlflow-operator/api/v1alpha1"
	"github.com/mlflow-operator/mlflow-operator/internal/resources"
	"github.com/mlflow-operator/mlflow-operator/test/harness/cluster"
	"github.com/mlflow-operator/mlflow-operator/test/harness/mlflowserver"
	"github.com/mlflow-operator/mlflow-operator/test/harness/serviceload"
	"github.com/mlflow-operator/mlflow-operator/test/harness/stack"
)

// Bounds of the waits: a promotion on the real node takes about half a
// minute; these are for a machine that is much slower, or stuck.
const (
	readyTimeout   = 10 * time.Minute // a version from the alias change to Ready, or to rolled back
	settleTimeout  = 3 * time.Minute  // old pods terminated, production back to one version
	cleanupTimeout = 3 * time.Minute  // a namespace deleted
	// BlueGreen's old set is seen at Ready or soon after; it is kept for
	// minutes, and the promotion does not wait for its end.
	keptTimeout = 5 * time.Second
)

// proxyWindow is how long the client keeps sending after a BlueGreen
// switch reached Ready: the endpoints and the proxies follow the Service's
// new selector after it, and a request lost then is the switch's. It is
// the time the operator gives them for a terminating pod (its preStop
// sleep).
const proxyWindow = time.Duration(resources.PreStopSleepSeconds) * time.Second

// bench runs the scenarios on a stack.
type bench struct {
	st   *stack.Stack
	k    client.Client
	real bool // the real node: Services route, production pods really crash
}

// sample is one measured promotion or rollback.
type sample struct {
	version string
	t       timeline
	// load is what a client saw through the Service; nil on kwok nodes.
	load *serviceload.Result
	// notes are what the run found amiss besides its times (a switch
	// that started pods, production disturbed), printed under its table.
	notes []string
}

// deployment is a ModelDeployment under test and what the bench knows of it.
type deployment struct {
	md      *v1alpha1.ModelDeployment
	model   string
	obs     *observer
	stop    context.CancelFunc
	serving string // the version it serves
	seed    int    // the last seed registered: each version is a new model, so a new image
}

// deploy creates namespace and a ModelDeployment in it following the
// alias champion of model (a first version registered now), with poll
// between polls and mutate applied, and waits until it is Ready.
func (b *bench) deploy(ctx context.Context, namespace, model string, poll time.Duration, mutate func(*v1alpha1.ModelDeployment)) (*deployment, error) {
	if err := b.k.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}}); err != nil {
		return nil, err
	}
	res, err := b.st.MLflow.Fixture(ctx, mlflowserver.Op{"op": "register", "model": model, "seed": 0, "alias": "champion"})
	if err != nil {
		return nil, err
	}
	md := b.st.ModelDeployment(namespace, model, v1alpha1.ModelReference{Name: model, Alias: "champion"}, poll)
	if b.real {
		// The fixture's dying models die in every pod but a RollingUpdate
		// candidate's (production, BlueGreen's sets): the pod's role
		// reaches them through the downward API.
		md.Spec.Serving.Env = []corev1.EnvVar{{Name: "POD_ROLE", ValueFrom: &corev1.EnvVarSource{
			FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.labels['" + v1alpha1.LabelRole + "']"}}}}
	}
	mutate(md)
	wctx, stop := context.WithCancel(ctx)
	obs, err := watch(wctx, b.st.Cluster.Config, namespace, md.Name)
	if err != nil {
		stop()
		return nil, err
	}
	d := &deployment{md: md, model: model, obs: obs, stop: stop, serving: res[0].Version}
	if err := b.k.Create(ctx, md); err != nil {
		stop()
		return nil, err
	}
	progress("%s: waiting for version %s to be Ready (a first image, candidate and rollout)", namespace, d.serving)
	start := time.Now()
	if err := obs.waitFor(ctx, namespace+": version "+d.serving+" Ready", readyTimeout, func(s view) bool {
		return readyOn(s.md, d.serving) && productionOn(s, d.serving)
	}); err != nil {
		stop()
		return nil, b.withLogs(err)
	}
	progress("%s: version %s Ready after %s", namespace, d.serving, secs(time.Since(start)))
	return d, nil
}

// promote registers a new version, moves the alias to it and measures
// until it is Ready and the old version's pods are gone; with BlueGreen,
// until it is Ready and the old set is seen still running (it is kept for
// the scale-down delay: waiting for its end would measure the delay), the
// client sending for proxyWindow more; Canary, as BlueGreen, its steps
// on the way (canary.go).
func (b *bench) promote(ctx context.Context, d *deployment) (sample, error) {
	d.seed++
	reg, err := b.st.MLflow.Fixture(ctx, mlflowserver.Op{"op": "register", "model": d.model, "seed": d.seed})
	if err != nil {
		return sample{}, err
	}
	v, old := reg[0].Version, d.serving
	r := sample{version: v}
	blueGreen, canary := d.md.Spec.BlueGreen(), d.md.Spec.Canary()
	probes := promotionProbes(v, old, blueGreen)
	steps := map[int]v1alpha1.CanaryStatus{}
	if canary {
		probes = canaryPromotionProbes(v, old, d.md.Spec.CanarySteps(), steps)
	}
	err = b.timed(ctx, d, v, probes, &r, func() error {
		if err := d.obs.waitMark(ctx, markReady, readyTimeout); err != nil {
			return err
		}
		if !blueGreen {
			return d.obs.waitMark(ctx, markOldGone, settleTimeout)
		}
		if kept := d.obs.waitMark(ctx, markOldKept, keptTimeout); kept != nil && ctx.Err() != nil {
			return kept
		} else if kept != nil {
			r.notes = append(r.notes, fmt.Sprintf("version %s's set was not seen running beside production at Ready: not kept for the scale-down delay", old))
		}
		return linger(ctx, proxyWindow)
	})
	if err != nil {
		return r, b.withLogs(fmt.Errorf("promotion of version %s: %w", v, err))
	}
	if canary {
		r.notes = append(r.notes, canaryNotes(d.md.Spec.CanarySteps(), steps, r.t)...)
	}
	d.serving = v
	return r, nil
}

// rollback registers a version whose production pods die, moves the alias
// to it and measures until production is back on the version it served,
// then moves the alias back there.
func (b *bench) rollback(ctx context.Context, d *deployment) (sample, error) {
	d.seed++
	op := mlflowserver.Op{"op": "register", "model": d.model, "seed": d.seed}
	if b.real {
		// Its server exits as soon as it loads in a production pod; its
		// candidate passes the smoke test.
		op["kind"], op["die_after"] = "dying", 0
	}
	reg, err := b.st.MLflow.Fixture(ctx, op)
	if err != nil {
		return sample{}, err
	}
	bad, good := reg[0].Version, d.serving
	r := sample{version: bad}
	if !b.real {
		if err := b.crashOnKwok(ctx, d, bad); err != nil {
			return r, err
		}
	}
	err = b.timed(ctx, d, bad, rollbackProbes(bad, good), &r, func() error {
		if err := d.obs.waitMark(ctx, markRestored, readyTimeout); err != nil {
			return err
		}
		return d.obs.waitFor(ctx, "the pods of version "+bad+" terminated", settleTimeout, func(s view) bool { return !anyPodOf(s, bad) })
	})
	if err != nil {
		return r, b.withLogs(fmt.Errorf("rollback of version %s: %w", bad, err))
	}
	return r, b.aliasBack(ctx, d, good)
}

// timed moves d's alias to version with the client sending predictions
// through the Service and the observer expecting probes, then runs wait;
// r gets the client's counts and the timeline, from MLflow's answer to the
// alias change.
func (b *bench) timed(ctx context.Context, d *deployment, version string, probes []probe, r *sample, wait func() error) error {
	stopLoad, err := b.startLoad(ctx, d)
	if err != nil {
		return err
	}
	d.obs.expect(probes)
	moved, err := b.setAlias(ctx, d, version)
	if err != nil {
		stopLoad()
		return err
	}
	err = wait()
	r.load = stopLoad()
	r.t = timeline{start: moved, at: d.obs.marks()}
	return err
}

// setAlias moves d's alias to version; it returns when MLflow answered.
func (b *bench) setAlias(ctx context.Context, d *deployment, version string) (time.Time, error) {
	res, err := b.st.MLflow.Fixture(ctx, mlflowserver.Op{"op": "set_alias", "model": d.model, "alias": "champion", "version": version})
	if err != nil {
		return time.Time{}, err
	}
	return res[0].DoneTime(), nil
}

// aliasBack moves the alias back to the good version after a scenario that
// did not keep it, and waits for Ready on it, for the next run.
func (b *bench) aliasBack(ctx context.Context, d *deployment, good string) error {
	if _, err := b.setAlias(ctx, d, good); err != nil {
		return err
	}
	if err := d.obs.waitFor(ctx, "Ready on version "+good+" after the alias moved back", readyTimeout, func(s view) bool { return readyOn(s.md, good) }); err != nil {
		return b.withLogs(err)
	}
	return nil
}

// linger waits for d, or until ctx ends.
func linger(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-time.After(d):
		return nil
	}
}

// crashOnKwok makes kwok fail the production pods of version bad (see
// cluster.CrashVersionLabel): the label goes on the pod template, so
// production rolls out again on the version it serves first, outside the
// measurement.
func (b *bench) crashOnKwok(ctx context.Context, d *deployment, bad string) error {
	md := &v1alpha1.ModelDeployment{}
	if err := b.k.Get(ctx, client.ObjectKeyFromObject(d.md), md); err != nil {
		return err
	}
	patch := client.MergeFrom(md.DeepCopy())
	if md.Spec.Serving.PodLabels == nil {
		md.Spec.Serving.PodLabels = map[string]string{}
	}
	md.Spec.Serving.PodLabels[cluster.CrashVersionLabel] = bad
	if err := b.k.Patch(ctx, md, patch); err != nil {
		return err
	}
	gen := md.Generation
	err := d.obs.waitFor(ctx, "production on the pod template that crashes version "+bad, settleTimeout, func(s view) bool {
		if s.md == nil || s.md.Status.ObservedGeneration < gen || !readyOn(s.md, d.serving) || !productionOn(s, d.serving) {
			return false
		}
		for _, p := range s.pods {
			if p.Labels[v1alpha1.LabelRole] == v1alpha1.RoleProduction && podLive(p) && p.Labels[cluster.CrashVersionLabel] != bad {
				return false
			}
		}
		return true
	})
	return b.withLogs(err)
}

// startLoad starts a client sending predictions through d's Service, on
// the real node; on kwok nodes Service IPs route nowhere, and it does
// nothing. The func it returns stops the client and gives its counts.
func (b *bench) startLoad(ctx context.Context, d *deployment) (func() *serviceload.Result, error) {
	if !b.real {
		return func() *serviceload.Result { return nil }, nil
	}
	l, err := serviceload.Start(ctx, b.k, client.ObjectKeyFromObject(d.md), mlflowserver.IrisRows)
	if err != nil {
		return nil, err
	}
	return func() *serviceload.Result { r := l.Stop(); return &r }, nil
}

// remove deletes d's namespace and waits until it is gone, so that the
// next scenario has the node to itself.
func (b *bench) remove(ctx context.Context, d *deployment) error {
	d.stop()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: d.md.Namespace}}
	if err := b.k.Delete(ctx, ns); err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	progress("%s: deleting the namespace (its pods terminate)", ns.Name)
	deadline := time.Now().Add(cleanupTimeout)
	for {
		err := b.k.Get(ctx, client.ObjectKeyFromObject(ns), ns)
		if apierrors.IsNotFound(err) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("namespace %s still there after %s (phase %s)", ns.Name, cleanupTimeout, ns.Status.Phase)
		}
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// withLogs adds the operator's last log lines to a failed wait.
func (b *bench) withLogs(err error) error {
	if err == nil || errors.Is(err, errInterrupted) {
		return err
	}
	lines := strings.Split(strings.TrimRight(b.st.OperatorLogs(), "\n"), "\n")
	if len(lines) > 40 {
		lines = lines[len(lines)-40:]
	}
	return fmt.Errorf("%w\noperator log (last %d lines):\n%s", err, len(lines), strings.Join(lines, "\n"))
}
