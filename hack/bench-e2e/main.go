// Command bench-e2e measures promotions and rollbacks on the local stack
// (`make bench-e2e`), for each rollout strategy the API has, on the real
// node (kubelet, containerd, runc; the default as root) or on kwok nodes
// (LOCAL_NODE=kwok, or not root).
//
// For each strategy, one ModelDeployment follows the alias champion of a
// model of its own, in a namespace of its own, with MLflow's webhook (an
// hour between polls):
//
//   - promotions: a newly trained version (so a new image every run), the
//     alias moved to it, timed from the alias change through each phase:
//     version resolved, image built and pushed and candidate applied,
//     candidate pod Ready, smoke test passed and promoted, production pods
//     replaced, Ready reported, old pods terminated;
//   - rollbacks: a version whose server dies in production pods (the
//     fixture's "dying" kind on the real node; kwok's crash stage on kwok
//     nodes), the alias moved to it; timed through its promotion to the
//     rollback the operator decides (RolledBack) and to production back on
//     the last good version with every pod Ready; then the alias goes back.
//
// BlueGreen (spec.rollout.strategy) is measured for what it changes: a
// promotion is its preview set started and completed beside production,
// then the Service switched to it, and the old set is kept, not waited
// for; its rollback is the alias moved back to the previous version while
// that set is kept, a switch of the Service timed until it selects the
// old set again; and, on the real node, a dying version is held (its
// pods die in the preview set, production untouched), timed until its
// preview is gone.
//
// Canary is measured as BlueGreen, its canary set in BlueGreen's preview
// slot, with its steps on the promotion's timeline: each step started and
// Ready (status.canary) and the moment the Service first selects both
// sets, when the client's requests start reaching the canary (they are
// counted whichever set answers them). Its rollback is the same switch
// back, and a dying version is held before its canary takes traffic.
//
// The times are when a watch (informers on the ModelDeployment, its
// Deployments and pods) first showed each step, from the moment MLflow
// answered the alias change. On the real node a client sends predictions
// through the Service's ClusterIP during every promotion and rollback and
// counts the failures (test/harness/serviceload, as the end-to-end suite
// does); on kwok nodes Service IPs route nowhere, and the count is n/a.
// It prints a table per strategy and a summary.
//
// BENCH_RUNS sets the promotions per strategy (5), BENCH_ROLLBACK_RUNS the
// rollbacks (BENCH_RUNS); BENCH_STRATEGIES which strategies, comma-separated
// (all); BENCH_POLLING=1 also measures promotions found by polling alone,
// first, with spec.mlflow.pollInterval BENCH_POLL_INTERVAL (1m, the
// default a ModelDeployment gets): slow, as each waits for a poll.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	v1alpha1 "github.com/mlflow-operator/mlflow-operator/api/v1alpha1"
	"github.com/mlflow-operator/mlflow-operator/test/harness/cluster"
	"github.com/mlflow-operator/mlflow-operator/test/harness/mlflowserver"
	"github.com/mlflow-operator/mlflow-operator/test/harness/stack"
)

func main() {
	if err := run(); err != nil {
		if errors.Is(err, errInterrupted) {
			fmt.Fprintln(os.Stderr, "bench-e2e: interrupted; the stack is torn down")
			os.Exit(130)
		}
		fmt.Fprintln(os.Stderr, "bench-e2e:", err)
		os.Exit(1)
	}
}

// config is what the environment asks for.
type config struct {
	runs, rollbacks int
	strategies      []strategy
	polling         bool
	poll            time.Duration
}

func readConfig() (config, error) {
	c := config{runs: 5, poll: v1alpha1.DefaultPollInterval}
	count := func(name string, def int) (int, error) {
		v := os.Getenv(name)
		if v == "" {
			return def, nil
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return 0, fmt.Errorf("%s=%q: want a number, 0 or more", name, v)
		}
		return n, nil
	}
	var err error
	if c.runs, err = count("BENCH_RUNS", c.runs); err != nil {
		return c, err
	}
	if c.rollbacks, err = count("BENCH_ROLLBACK_RUNS", c.runs); err != nil {
		return c, err
	}
	if c.strategies, err = pickStrategies(os.Getenv("BENCH_STRATEGIES"), strategies); err != nil {
		return c, err
	}
	switch v := os.Getenv("BENCH_POLLING"); v {
	case "", "0", "false":
	case "1", "true":
		c.polling = true
	default:
		return c, fmt.Errorf("BENCH_POLLING=%q: want 1 or 0", v)
	}
	if v := os.Getenv("BENCH_POLL_INTERVAL"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return c, fmt.Errorf("BENCH_POLL_INTERVAL=%q: want a duration such as 30s", v)
		}
		c.poll = d
	}
	return c, nil
}

var started = time.Now()

// errInterrupted is the cause of the context's end on Ctrl-C.
var errInterrupted = errors.New("interrupted")

// progress prints a line for a person watching, with the time since the
// start.
func progress(format string, args ...any) {
	fmt.Printf("[%6s] %s\n", time.Since(started).Round(time.Second), fmt.Sprintf(format, args...))
}

func run() (err error) {
	c, err := readConfig()
	if err != nil {
		return err
	}
	// On the real node the rest runs again inside its namespaces (and the
	// host side tears them down after, whatever happens in here). make sets
	// BENCH_REQUIRE_REAL_NODE as root: no silent fallback to kwok then.
	node, _, why, err := stack.EnterNode(os.Getenv("BENCH_REQUIRE_REAL_NODE") != "")
	if err != nil {
		return err
	}
	where := "a real node (kubelet, containerd, runc, kube-proxy)"
	if node != cluster.RealNode {
		where = "kwok nodes (" + why + "): pods are simulated, Service IPs route nowhere"
	}
	fmt.Println("bench-e2e on " + where)

	// Ctrl-C (or SIGTERM) ends the waits; the deferred Stop tears the
	// stack down. The signals stay caught until the end, so a second one
	// does not cut the teardown short.
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	sig := make(chan os.Signal, 2)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	go func() {
		s := <-sig
		progress("%v: stopping, tearing the stack down", s)
		cancel(fmt.Errorf("%w by %v", errInterrupted, s))
	}()

	dir, err := os.MkdirTemp("", "bench-e2e-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	progress("starting MLflow, a registry, a local cluster and the operator")
	st, err := stack.Start(ctx, stack.Options{Dir: filepath.Join(dir, "stack"), Node: node,
		Progress: func(line string) { progress("  %s", line) }})
	if err != nil {
		return err
	}
	defer func() {
		progress("stopping the stack")
		st.Stop()
	}()
	b := &bench{st: st, k: st.Cluster.Client, real: node == cluster.RealNode}

	var results []*result
	var polled *result
	defer func() {
		// What was measured, also after an error or Ctrl-C.
		var measured []*result
		for _, r := range results {
			if len(r.promotions.runs)+len(r.rollbacks.runs)+len(r.held.runs) > 0 {
				measured = append(measured, r)
			}
		}
		if polled != nil && len(polled.promotions.runs) == 0 {
			polled = nil
		}
		if len(measured) > 0 || polled != nil {
			report(c, where, measured, polled)
		}
	}()
	// An error after Ctrl-C is the interruption's.
	defer func() {
		if cause := context.Cause(ctx); err != nil && errors.Is(cause, errInterrupted) {
			err = cause
		}
	}()
	// Polling first: MLflow's webhooks go to every model, so none exists yet.
	if c.polling {
		polled = &result{name: fmt.Sprintf("polling only (pollInterval %s)", c.poll)}
		if err := b.measure(ctx, polled, "bench-polled", c.poll, c.runs, 0, func(*v1alpha1.ModelDeployment) {}); err != nil {
			return err
		}
	}
	if _, err := st.MLflow.Fixture(ctx, mlflowserver.Op{"op": "create_webhook", "name": "operator", "url": st.WebhookURL,
		"secret": stack.WebhookSecret, "events": []string{"model_version.created", "model_version_alias.created"}}); err != nil {
		return err
	}
	for _, s := range c.strategies {
		r := &result{name: s.name}
		results = append(results, r)
		if err := b.measure(ctx, r, "bench-"+strings.ToLower(s.name), time.Hour, c.runs, c.rollbacks, s.apply); err != nil {
			return err
		}
	}
	return nil
}

// result is what one strategy (or polling) measured: its promotions, its
// rollbacks and, for BlueGreen and Canary on the real node, its held
// versions.
type result struct {
	name                        string
	promotions, rollbacks, held series
}

// series are the kinds of run r was measured with, in order.
func (r *result) series() []series {
	var out []series
	for _, s := range []series{r.promotions, r.rollbacks, r.held} {
		if s.kind != nil {
			out = append(out, s)
		}
	}
	return out
}

// measure deploys a ModelDeployment in namespace (the model has the same
// name), then promotes runs new versions and rolls back rollbacks dying
// ones (BlueGreen and Canary: switches back rollbacks times, then holds as
// many dying versions), adding each run to r as it ends.
func (b *bench) measure(ctx context.Context, r *result, namespace string, poll time.Duration, runs, rollbacks int, apply func(*v1alpha1.ModelDeployment)) error {
	progress("%s: %s, %d promotions and %d rollbacks", namespace, r.name, runs, rollbacks)
	d, err := b.deploy(ctx, namespace, namespace, poll, apply)
	if err != nil {
		return err
	}
	type step struct {
		s   *series
		n   int
		run func(context.Context, *deployment) (sample, error)
	}
	r.promotions.kind, r.rollbacks.kind = promotionKind, rollbackKind
	steps := []step{{&r.promotions, runs, b.promote}, {&r.rollbacks, rollbacks, b.rollback}}
	if d.md.Spec.BlueGreen() {
		// A version whose pods die is held in the preview set, never
		// promoted: BlueGreen's rollback is going back to the set it
		// kept. kwok's crash stage fails the pods of role production
		// only, so the held version is measured on the real node.
		// Canary is BlueGreen with steps between the verification and
		// the switch: its promotion shows them.
		r.promotions.kind, r.rollbacks.kind = blueGreenPromotionKind, switchBackKind
		held := heldKind
		if d.md.Spec.Canary() {
			r.promotions.kind, held = canaryPromotionKind(d.md.Spec.CanarySteps()), canaryHeldKind
		}
		steps[1].run = b.switchBack
		if b.real {
			r.held.kind = held
			steps = append(steps, step{&r.held, rollbacks, b.held})
		} else {
			progress("%s: no held version on kwok nodes (the crash stage spares the sets of the slots)", namespace)
		}
	}
	for _, st := range steps {
		for i := 1; i <= st.n; i++ {
			x, err := st.run(ctx, d)
			if err != nil {
				return errors.Join(err, b.remove(ctx, d))
			}
			st.s.runs = append(st.s.runs, x)
			progress("%s: %s %d/%d, version %s: %s", namespace, st.s.kind.name, i, st.n, x.version, runLine(x, st.s.kind))
		}
	}
	return b.remove(ctx, d)
}
