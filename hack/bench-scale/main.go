// Command bench-scale measures one operator at scale (`make bench-scale`):
// N ModelDeployments on a few models of one MLflow server, on kwok nodes,
// each run by a freshly started operator process. For each N it prints the
// time until all N are Ready (and the 50th/90th percentile per object),
// what the operator sends while everything is Ready and nothing changes
// (API requests and writes a minute by verb and resource, MLflow requests
// a poll interval, reconciles), its resident memory idle and at its peak,
// how long a new version of one model takes to reach all its
// ModelDeployments while the others stay Ready, and the build counts.
// For the creation it also prints where the time went: per object, when
// its ModelResolved, ImageReady, CandidateVerified and Ready conditions
// were first True (steps.go), and the operator's own metrics from the
// first create to all Ready: the reconcile and build workers' utilisation,
// the reconcile queue's wait and depth, MLflow and API requests (ops.go).
//
// Sources: the API requests are kube-apiserver's own view, its audit log
// of the operator's user (the operator runs with a client certificate of
// its own, user mlflow-operator); the operator's metrics endpoint (plain
// HTTP on loopback) gives client-go's request counts as a cross-check,
// the MLflow requests, reconciles and builds, and the Go runtime's memory
// and garbage collection; /proc/<pid>/status its memory. The operator gets
// MEMORY_LIMIT as its Deployment's downward API would give it (-memory-limit,
// 512 MiB by default: the container's limit is not enforced on a process,
// but the operator derives its soft memory limit from it) and config/manager's
// GOGC (-operator-env). Registering the models is timed and printed apart:
// it is not part of any figure.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"

	v1alpha1 "github.com/mlflow-operator/mlflow-operator/api/v1alpha1"
	"github.com/mlflow-operator/mlflow-operator/test/harness/cluster"
	"github.com/mlflow-operator/mlflow-operator/test/harness/mlflowserver"
	"github.com/mlflow-operator/mlflow-operator/test/harness/stack"
)

// operatorUser is the operator's own identity, whose requests the API
// server audits.
const operatorUser = "mlflow-operator"

// config is the command line.
type config struct {
	objects      []int
	models       int
	idle, settle time.Duration
	poll         time.Duration
	workers      int
	timeout      time.Duration
	smokeTest    bool
	operatorArgs []string
	operatorEnv  []string
	memoryLimit  int64 // MEMORY_LIMIT of the operator; 0: none
	heapProfile  string
	heap         *heapProfiler // made by run from heapProfile
}

func main() {
	c, err := parseFlags(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench-scale:", err)
		os.Exit(2)
	}
	if err := run(c); err != nil {
		fmt.Fprintln(os.Stderr, "bench-scale:", err)
		os.Exit(1)
	}
}

func parseFlags(args []string) (config, error) {
	fs := flag.NewFlagSet("bench-scale", flag.ContinueOnError)
	objects := fs.String("objects", "100,1000", "comma-separated numbers of ModelDeployments, one run each (a fresh operator process per run)")
	c := config{}
	fs.IntVar(&c.models, "models", 50, "registered models the ModelDeployments follow (object i follows model i mod this), alias champion")
	fs.DurationVar(&c.idle, "idle", time.Minute, "how long the idle figures are measured, once everything is Ready (at least one poll interval)")
	fs.DurationVar(&c.settle, "settle", 30*time.Second, "wait after the last object turned Ready before the idle measurement starts")
	fs.DurationVar(&c.poll, "poll", v1alpha1.DefaultPollInterval, "spec.mlflow.pollInterval of every ModelDeployment")
	fs.IntVar(&c.workers, "workers", 16, "ModelDeployments created at once")
	fs.DurationVar(&c.timeout, "timeout", 30*time.Minute, "longest wait for all objects (or all of one model) to be Ready")
	fs.BoolVar(&c.smokeTest, "smoke-test", false, "smoke-test candidates: the pod network stand-in then runs a real scoring server per image (about 200 MB each); off: candidates are promoted on readiness")
	fs.StringVar(&c.heapProfile, "heap-profile", "", "folder for the operator's heap profile at the end of each run's idle window (heap-N.pb.gz, its top entries printed); the operator then serves Go's profiling handlers on 127.0.0.1")
	extra := fs.String("operator-args", "", "flags added to the operator's, space-separated (e.g. --max-concurrent-reconciles=8)")
	env := fs.String("operator-env", "GOGC=50", "NAME=value pairs added to the operator's environment, space-separated; the default is config/manager's GOGC (GOGC=100: the runtime's)")
	limit := fs.String("memory-limit", "512Mi", "the operator's MEMORY_LIMIT, as the downward API gives a container's memory limit (a quantity); 0: none")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	for _, s := range strings.Split(*objects, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			return c, fmt.Errorf("-objects %q: want positive numbers, e.g. 100,1000", *objects)
		}
		c.objects = append(c.objects, n)
	}
	if c.models < 1 || c.workers < 1 || c.idle <= 0 || c.poll < v1alpha1.MinPollInterval {
		return c, fmt.Errorf("-models and -workers must be positive, -idle a duration, -poll at least %s", v1alpha1.MinPollInterval)
	}
	if c.idle < c.poll {
		fmt.Printf("note: -idle %s is shorter than a poll interval (%s): not every object polls in the window\n", c.idle, c.poll)
	}
	c.operatorArgs = strings.Fields(*extra)
	c.operatorEnv = strings.Fields(*env)
	for _, kv := range c.operatorEnv {
		if name, _, ok := strings.Cut(kv, "="); !ok || name == "" {
			return c, fmt.Errorf("-operator-env %q: want NAME=value pairs", *env)
		}
	}
	q, err := resource.ParseQuantity(*limit)
	if err != nil || q.Sign() < 0 {
		return c, fmt.Errorf("-memory-limit %q: want a quantity, e.g. 512Mi, or 0", *limit)
	}
	c.memoryLimit = q.Value()
	return c, nil
}

func run(c config) error {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "bench-scale-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	fmt.Println("on kwok nodes (scale runs need no real node); starting MLflow, a registry, a local cluster and the operator")
	heap, err := newHeapProfiler(c.heapProfile)
	if err != nil {
		return err
	}
	c.heap = heap
	operatorArgs := c.operatorArgs
	if heap != nil {
		operatorArgs = append(append([]string{}, operatorArgs...), heap.arg())
	}
	env := c.operatorEnv
	if c.memoryLimit > 0 {
		// First, so that -operator-env MEMORY_LIMIT=... wins.
		env = append([]string{fmt.Sprintf("MEMORY_LIMIT=%d", c.memoryLimit)}, env...)
	}
	st, err := stack.Start(ctx, stack.Options{Dir: filepath.Join(dir, "stack"), Node: cluster.KwokNodes,
		OperatorMetrics: true, OperatorUser: operatorUser, OperatorArgs: operatorArgs, OperatorEnv: env,
		Progress: func(line string) { fmt.Println("    " + line) }})
	if err != nil {
		return err
	}
	defer st.Stop()
	if st.Cluster.AuditLog == "" || st.MetricsURL == "" {
		return fmt.Errorf("the stack has no audit log or no metrics endpoint")
	}
	audit := &auditLog{path: st.Cluster.AuditLog}
	stop := make(chan struct{})
	defer close(stop)
	go audit.follow(stop)

	models, err := registerModels(ctx, st, c.models)
	if err != nil {
		return err
	}
	var results []*result
	for i, n := range c.objects {
		if i > 0 {
			if err := restart(ctx, st, results[i-1].namespace); err != nil {
				return err
			}
		}
		r, err := runOne(ctx, st, audit, c, models, n)
		if err != nil {
			return err
		}
		results = append(results, r)
	}
	report(c, results)
	return nil
}

// model is a registered model and the version its alias champion names.
type model struct{ name, version string }

// registerModels registers count models in one fixture call (one Python
// process: importing MLflow takes seconds), each trained with its own seed
// and aliased champion.
func registerModels(ctx context.Context, st *stack.Stack, count int) ([]*model, error) {
	fmt.Printf("registering %d models in MLflow (not part of any figure) ...\n", count)
	start := time.Now()
	ops := make([]mlflowserver.Op, count)
	for i := range ops {
		ops[i] = mlflowserver.Op{"op": "register", "model": modelName(i), "seed": i, "alias": "champion"}
	}
	done := make(chan struct{})
	go ticker(done, 15*time.Second, func() string {
		return fmt.Sprintf("registering %d models: %s so far", count, secs(time.Since(start)))
	})
	res, err := st.MLflow.Fixture(ctx, ops...)
	close(done)
	if err != nil {
		return nil, err
	}
	out := make([]*model, count)
	for i, r := range res {
		out[i] = &model{name: modelName(i), version: r.Version}
	}
	fmt.Printf("registered %d models in %s\n", count, secs(time.Since(start)))
	return out, nil
}

func modelName(i int) string { return fmt.Sprintf("scale-%02d", i) }

// ticker prints line() every d until done is closed.
func ticker(done <-chan struct{}, d time.Duration, line func() string) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case <-t.C:
			fmt.Println("    " + line())
		}
	}
}

func secs(d time.Duration) string { return fmt.Sprintf("%.1f s", d.Seconds()) }
