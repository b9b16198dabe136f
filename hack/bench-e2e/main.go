// Command bench-e2e measures promotion latency on the local stack (`make
// bench-e2e`): the time from an MLflow alias change to the ModelDeployment
// being Ready on the new version (resolution, image build and push,
// candidate, smoke test against the real model, rolling update), first with
// polling only, then with MLflow's webhook. Each run registers a newly
// trained model version, so every promotion builds a new image. It prints
// each run and the median, minimum and maximum of each mode.
//
// BENCH_RUNS sets the runs per mode (5); BENCH_POLL_INTERVAL the polling
// mode's spec.mlflow.pollInterval (1m, the default a ModelDeployment gets).
package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/mlflow-operator/mlflow-operator/api/v1alpha1"
	"github.com/mlflow-operator/mlflow-operator/test/harness/mlflowserver"
	"github.com/mlflow-operator/mlflow-operator/test/harness/stack"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench-e2e:", err)
		os.Exit(1)
	}
}

type sample struct {
	detect, ready time.Duration
}

func run() error {
	runs := 5
	if v := os.Getenv("BENCH_RUNS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return fmt.Errorf("BENCH_RUNS=%q: want a positive number", v)
		}
		runs = n
	}
	poll := v1alpha1.DefaultPollInterval
	if v := os.Getenv("BENCH_POLL_INTERVAL"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return fmt.Errorf("BENCH_POLL_INTERVAL=%q: want a duration such as 30s", v)
		}
		poll = d
	}

	node, _, why, err := stack.EnterNode(false)
	if err != nil {
		return err
	}
	if why != "" {
		fmt.Printf("on kwok nodes (%s)\n", why)
	} else {
		fmt.Println("on a real node (kubelet, containerd, runc)")
	}
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "bench-e2e-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	fmt.Println("starting MLflow, a registry, a local cluster and the operator")
	st, err := stack.Start(ctx, stack.Options{Dir: filepath.Join(dir, "stack"), Node: node, Progress: func(line string) { fmt.Println("    " + line) }})
	if err != nil {
		return err
	}
	defer st.Stop()

	// Polling first: MLflow's webhooks go to every model, so none exists yet.
	polled, err := measure(ctx, st, "polled", runs, poll)
	if err != nil {
		return err
	}
	if _, err := st.MLflow.Fixture(ctx, mlflowserver.Op{"op": "create_webhook", "name": "operator", "url": st.WebhookURL,
		"secret": stack.WebhookSecret, "events": []string{"model_version.created", "model_version_alias.created"}}); err != nil {
		return err
	}
	hooked, err := measure(ctx, st, "hooked", runs, time.Hour)
	if err != nil {
		return err
	}

	fmt.Printf("\nPromotion latency, MLflow alias moved -> Ready on the new version (%d runs each; new image every run)\n\n", runs)
	fmt.Printf("| mode | alias moved -> target seen (median) | alias moved -> Ready: median | min | max |\n| --- | --- | --- | --- | --- |\n")
	row := func(mode string, s []sample) {
		var detect, ready []time.Duration
		for _, x := range s {
			detect = append(detect, x.detect)
			ready = append(ready, x.ready)
		}
		fmt.Printf("| %s | %s | %s | %s | %s |\n", mode, secs(median(detect)), secs(median(ready)), secs(slices.Min(ready)), secs(slices.Max(ready)))
	}
	row("webhook (pollInterval 1h)", hooked)
	row(fmt.Sprintf("polling only (pollInterval %s)", poll), polled)
	return nil
}

// measure deploys model, then promotes a new version runs times.
func measure(ctx context.Context, st *stack.Stack, model string, runs int, poll time.Duration) ([]sample, error) {
	k := st.Cluster.Client
	first, err := st.MLflow.Fixture(ctx, mlflowserver.Op{"op": "register", "model": model, "seed": 0, "alias": "champion"})
	if err != nil {
		return nil, err
	}
	md := st.ModelDeployment("default", model, v1alpha1.ModelReference{Name: model, Alias: "champion"}, poll)
	if err := k.Create(ctx, md); err != nil {
		return nil, err
	}
	if _, _, err := waitReady(ctx, st, k, md, first[0].Version, time.Now()); err != nil {
		return nil, err
	}
	var out []sample
	for i := 1; i <= runs; i++ {
		res, err := st.MLflow.Fixture(ctx,
			mlflowserver.Op{"op": "register", "model": model, "seed": i},
			mlflowserver.Op{"op": "set_alias", "model": model, "alias": "champion", "version": "$prev"},
		)
		if err != nil {
			return nil, err
		}
		moved := res[1].DoneTime()
		detect, ready, err := waitReady(ctx, st, k, md, res[0].Version, moved)
		if err != nil {
			return nil, err
		}
		fmt.Printf("    %s run %d: version %s target seen after %s, Ready after %s\n", model, i, res[0].Version, secs(detect), secs(ready))
		out = append(out, sample{detect: detect, ready: ready})
	}
	return out, nil
}

// waitReady polls the ModelDeployment every 50 ms until it is Ready on
// version; it returns when status.target first named version and when it
// turned Ready, both from since.
func waitReady(ctx context.Context, st *stack.Stack, k client.Client, md *v1alpha1.ModelDeployment, version string, since time.Time) (time.Duration, time.Duration, error) {
	var detect time.Duration
	deadline := time.Now().Add(10 * time.Minute)
	for time.Now().Before(deadline) {
		m := &v1alpha1.ModelDeployment{}
		if err := k.Get(ctx, client.ObjectKeyFromObject(md), m); err == nil {
			if detect == 0 && m.Status.Target != nil && m.Status.Target.Version == version {
				detect = time.Since(since)
			}
			c := meta.FindStatusCondition(m.Status.Conditions, v1alpha1.ConditionReady)
			if c != nil && c.Status == metav1.ConditionTrue && m.Status.Serving != nil && m.Status.Serving.Version == version {
				ready := time.Since(since)
				if detect == 0 {
					detect = ready
				}
				return detect, ready, nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return 0, 0, fmt.Errorf("%s not Ready on version %s after 10 minutes; operator logs:\n%s", md.Name, version, st.OperatorLogs())
}

func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func secs(d time.Duration) string { return fmt.Sprintf("%.1f s", d.Seconds()) }
