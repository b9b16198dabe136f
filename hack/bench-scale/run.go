package main

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/mlflow-operator/mlflow-operator/api/v1alpha1"
	"github.com/mlflow-operator/mlflow-operator/test/harness/stack"
)

// result is the figures of one run.
type result struct {
	n         int
	namespace string
	// Creation: all created, all Ready (from the first create), per object
	// (its create to its first Ready).
	created, allReady time.Duration
	p50, p90          time.Duration
	createPhase       counts // API requests from the first create to all Ready
	gcCreate          gcWork // from the first create to all Ready
	creation          creation
	// Idle.
	idle          time.Duration
	idleAPI       counts
	idleClient    map[string]float64 // rest_client_requests_total by method
	idleMLflow    map[string]float64 // mlflow_requests_total by operation
	idleReconcile map[string]float64 // controller_runtime_reconcile_total by controller/result
	idleChanges   int                // ModelDeployment resource versions seen
	idleLost      int                // objects that stopped being Ready
	rssIdle       memory
	goIdle        goMemory // at the end of the idle window
	gcIdle        gcWork
	// The new version of one model.
	move movement
	// At the end of the run.
	peak   int64
	builds map[string]float64
	// The highest VmRSS sampled, the Go runtime's figures then, and what
	// the run was doing.
	goPeak      goMemory
	goPeakPhase string
	goPeakRead  bool
}

// movement is a new version of one model reaching its ModelDeployments.
type movement struct {
	model, version  string
	objects         int
	all, p50        time.Duration // alias moved -> Ready on it
	others          int           // the other objects
	othersLost      int           // of them, those that stopped being Ready
	othersLostTimes int
	othersReady     int // of them, Ready at the end
}

// runOne creates n ModelDeployments in a namespace of their own and
// measures them.
func runOne(ctx context.Context, st *stack.Stack, audit *auditLog, c config, models []*model, n int) (*result, error) {
	r := &result{n: n, namespace: fmt.Sprintf("scale-%d", n)}
	fmt.Printf("\n== N=%d: %d ModelDeployments on %d models, namespace %s, operator pid %d\n", n, n, len(models), r.namespace, st.Operator.Cmd.Process.Pid)
	k, err := fastClient(st)
	if err != nil {
		return nil, err
	}
	if err := k.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: r.namespace}}); err != nil {
		return nil, err
	}
	tctx, cancel := context.WithCancel(ctx)
	defer cancel()
	t := newTracker()
	if err := t.start(tctx, st.Cluster.Config, r.namespace); err != nil {
		return nil, err
	}
	names := make([]string, n)
	byModel := map[*model][]string{}
	for i := range names {
		names[i] = fmt.Sprintf("md-%04d", i)
		m := models[i%len(models)]
		byModel[m] = append(byModel[m], names[i])
		t.expect(names[i], m.version)
	}

	// Create them all, workers at a time.
	sampler := startPeakSampler(st.Operator.Cmd.Process.Pid, st.MetricsURL, "creating")
	defer func() {
		if sampler != nil {
			sampler.finish()
		}
	}()
	scrapedBefore := time.Now()
	cpuBefore, cpuErr := readMachineCPU()
	beforeCreate, err := scrapeMetrics(st.MetricsURL)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	ops := startOpsSampler(st.MetricsURL, start, beforeCreate)
	createdAt := make([]time.Time, n)
	var made atomic.Int64
	done := make(chan struct{})
	go ticker(done, 10*time.Second, func() string {
		return fmt.Sprintf("created %d/%d, Ready %d/%d after %s", made.Load(), n, t.readyCount(names), n, secs(time.Since(start)))
	})
	jobs := make(chan int)
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for w := 0; w < min(c.workers, n); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				m := models[i%len(models)]
				if err := k.Create(ctx, modelDeployment(st, c, r.namespace, names[i], m.name)); err != nil {
					errs <- fmt.Errorf("create %s: %w", names[i], err)
					continue
				}
				createdAt[i] = time.Now()
				made.Add(1)
			}
		}()
	}
	for i := range names {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		close(done)
		ops.finish()
		return nil, err
	}
	r.created = time.Since(start)
	fmt.Printf("    created %d ModelDeployments in %s\n", n, secs(r.created))

	// Wait for all of them.
	err = waitAll(t, names, c.timeout)
	close(done)
	samples := ops.finish()
	if err != nil {
		return nil, fmt.Errorf("N=%d: %w; operator log tail:\n%s", n, err, tail(st.OperatorLogs(), 40))
	}
	ready := t.firstReady(names)
	last := slices.MaxFunc(ready, func(a, b time.Time) int { return a.Compare(b) })
	r.allReady = last.Sub(start)
	per := make([]time.Duration, n)
	for i := range per {
		per[i] = ready[i].Sub(createdAt[i])
	}
	r.p50, r.p90 = percentile(per, 50), percentile(per, 90)
	r.createPhase = audit.between(start, last.Add(time.Second))
	scrapedAfter := time.Now()
	allReady, err := scrapeMetrics(st.MetricsURL)
	if err != nil {
		return nil, err
	}
	r.gcCreate = gcBetween(beforeCreate, allReady)
	cond := t.conditionTimes(names)
	r.creation = creation{objects: stepsOf(start, createdAt, cond, ready), conditions: cond, samples: samples,
		ops: opsBetween(beforeCreate, allReady, scrapedAfter.Sub(scrapedBefore))}
	if cpuAfter, err := readMachineCPU(); err == nil && cpuErr == nil {
		r.creation.machine = cpuBetween(cpuBefore, cpuAfter)
	}
	sampler.setPhase("idle")
	fmt.Printf("    all %d Ready %s after the first create (per object: p50 %s, p90 %s)\n", n, secs(r.allReady), secs(r.p50), secs(r.p90))
	fmt.Printf("    %s\n", r.creation.summary(c))

	if err := r.measureIdle(st, audit, t, c, names); err != nil {
		return nil, err
	}
	if c.heap != nil {
		sampler.setPhase("heap profile")
		if err := c.heap.take(n); err != nil {
			return nil, err
		}
	}
	sampler.setPhase("new version")
	if err := r.moveVersion(ctx, st, t, c, models[0], byModel[models[0]], names); err != nil {
		return nil, err
	}
	m, err := scrapeMetrics(st.MetricsURL)
	if err != nil {
		return nil, err
	}
	r.builds = m.by("mlflow_operator_builds_total", "result")
	mem, err := readMemory(st.Operator.Cmd.Process.Pid)
	if err != nil {
		return nil, err
	}
	r.peak = mem.hwm
	r.goPeak, r.goPeakPhase, r.goPeakRead = sampler.finish()
	sampler = nil
	return r, nil
}

// fastClient is the admin's client without client-go's default rate limit
// (5 requests a second), which would make creating 1,000 objects take
// minutes of the bench's own.
func fastClient(st *stack.Stack) (client.Client, error) {
	cfg := rest.CopyConfig(st.Cluster.Config)
	cfg.QPS, cfg.Burst = -1, 0
	return client.New(cfg, client.Options{Scheme: scheme.Scheme})
}

// modelDeployment is the stack's ModelDeployment of model, one replica,
// into the model's own repository (so the ModelDeployments of a model share
// its images).
func modelDeployment(st *stack.Stack, c config, namespace, name, model string) *v1alpha1.ModelDeployment {
	md := st.ModelDeployment(namespace, name, v1alpha1.ModelReference{Name: model, Alias: "champion"}, c.poll)
	md.Spec.Image.Repository = st.Registry.Host + "/models/" + model
	md.Spec.Scaling.MinReplicas = ptr.To(int32(1))
	if !c.smokeTest {
		md.Spec.Rollout.SmokeTest.Enabled = ptr.To(false)
	}
	return md
}

// waitAll waits until every one of names is Ready on its version.
func waitAll(t *tracker, names []string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		ready := t.firstReady(names)
		if !slices.ContainsFunc(ready, time.Time.IsZero) {
			return nil
		}
		time.Sleep(200 * time.Millisecond)
	}
	return fmt.Errorf("%d of %d ModelDeployments not Ready after %s", len(names)-t.readyCount(names), len(names), timeout)
}

// measureIdle waits c.settle, then measures c.idle of nothing changing.
func (r *result) measureIdle(st *stack.Stack, audit *auditLog, t *tracker, c config, names []string) error {
	fmt.Printf("    settling for %s, then measuring %s idle\n", c.settle, c.idle)
	time.Sleep(c.settle)
	before, err := scrapeMetrics(st.MetricsURL)
	if err != nil {
		return err
	}
	t.resetLost()
	changes := t.updateCount()
	from := time.Now()
	done := make(chan struct{})
	go ticker(done, 15*time.Second, func() string {
		x := audit.between(from, time.Now())
		return fmt.Sprintf("idle %s of %s: %s API requests, %s writes so far", secs(time.Since(from)), c.idle, num(x.all), num(x.writes))
	})
	time.Sleep(c.idle)
	close(done)
	to := time.Now()
	after, err := scrapeMetrics(st.MetricsURL)
	if err != nil {
		return err
	}
	mem, err := readMemory(st.Operator.Cmd.Process.Pid)
	if err != nil {
		return err
	}
	r.idle = to.Sub(from)
	r.idleAPI = audit.between(from, to)
	r.idleClient = delta(before, after, "rest_client_requests_total", "method")
	r.idleMLflow = delta(before, after, "mlflow_operator_mlflow_requests_total", "operation")
	r.idleReconcile = delta(before, after, "controller_runtime_reconcile_total", "controller", "result")
	r.idleChanges = t.updateCount() - changes
	r.idleLost, _ = t.lostCount(names)
	r.rssIdle = mem
	r.goIdle = goMemoryOf(after, mem.rss)
	r.gcIdle = gcBetween(before, after)
	return nil
}
