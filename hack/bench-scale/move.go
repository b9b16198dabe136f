package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/mlflow-operator/mlflow-operator/test/harness/mlflowserver"
	"github.com/mlflow-operator/mlflow-operator/test/harness/stack"
)

// moveVersion registers a new version of m, moves its alias champion to
// it, and waits until all of m's ModelDeployments (mine) are Ready on it;
// it notes whether the others stayed Ready meanwhile.
func (r *result) moveVersion(ctx context.Context, st *stack.Stack, t *tracker, c config, m *model, mine, all []string) error {
	others := slices.DeleteFunc(slices.Clone(all), func(n string) bool { return slices.Contains(mine, n) })
	fmt.Printf("    new version of %s, alias champion moved to it (%d ModelDeployments follow it) ...\n", m.name, len(mine))
	t.resetLost()
	// The seed makes each run's version differ from the last.
	res, err := st.MLflow.Fixture(ctx,
		mlflowserver.Op{"op": "register", "model": m.name, "seed": 1000 + r.n},
		mlflowserver.Op{"op": "set_alias", "model": m.name, "alias": "champion", "version": "$prev"},
	)
	if err != nil {
		return err
	}
	m.version = res[0].Version
	moved := res[1].DoneTime()
	// Expected from now on; the alias moved a moment ago, and no object can
	// be Ready on the new version before it moved.
	for _, n := range mine {
		t.expect(n, m.version)
	}
	done := make(chan struct{})
	go ticker(done, 10*time.Second, func() string {
		lost, _ := t.lostCount(others)
		return fmt.Sprintf("%d/%d Ready on version %s after %s; %d of the other %d stopped being Ready",
			t.readyCount(mine), len(mine), m.version, secs(time.Since(moved)), lost, len(others))
	})
	err = waitAll(t, mine, c.timeout)
	close(done)
	if err != nil {
		return fmt.Errorf("N=%d, version %s of %s: %w; operator log tail:\n%s", r.n, m.version, m.name, err, tail(st.OperatorLogs(), 40))
	}
	ready := t.firstReady(mine)
	per := make([]time.Duration, len(ready))
	for i, at := range ready {
		per[i] = at.Sub(moved)
	}
	r.move = movement{model: m.name, version: m.version, objects: len(mine), all: slices.Max(per), p50: percentile(per, 50),
		others: len(others), othersReady: t.readyCount(others)}
	r.move.othersLost, r.move.othersLostTimes = t.lostCount(others)
	fmt.Printf("    all %d Ready on version %s %s after the alias moved; %d of the other %d stopped being Ready meanwhile\n",
		len(mine), m.version, secs(r.move.all), r.move.othersLost, len(others))
	return nil
}

// restart stops the operator, deletes the namespace of the last run and
// waits until it is gone, then starts the operator again: each run has a
// fresh process (its peak memory and counters are its own) and an empty
// cluster.
func restart(ctx context.Context, st *stack.Stack, namespace string) error {
	fmt.Printf("\nstopping the operator, deleting namespace %s ...\n", namespace)
	st.Operator.Stop(10 * time.Second)
	k, err := fastClient(st)
	if err != nil {
		return err
	}
	ns := &corev1.Namespace{}
	ns.Name = namespace
	if err := k.Delete(ctx, ns); err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	start, said := time.Now(), time.Now()
	for {
		err := k.Get(ctx, client.ObjectKeyFromObject(ns), ns)
		if apierrors.IsNotFound(err) {
			break
		}
		if time.Since(start) > 10*time.Minute {
			return fmt.Errorf("namespace %s still there after 10 minutes", namespace)
		}
		if time.Since(said) >= 15*time.Second {
			said = time.Now()
			fmt.Printf("    namespace %s: still terminating after %s\n", namespace, secs(time.Since(start)))
		}
		time.Sleep(time.Second)
	}
	fmt.Printf("    namespace %s gone after %s; starting the operator again\n", namespace, secs(time.Since(start)))
	return st.StartOperator()
}

// percentile is the p-th percentile of d (nearest rank).
func percentile(d []time.Duration, p int) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	i := (p*len(s)+99)/100 - 1
	return s[max(0, min(i, len(s)-1))]
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
