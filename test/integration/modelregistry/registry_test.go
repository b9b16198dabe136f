package modelregistry

import (
	"bytes"
	"container/heap"
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/mlflow-operator/mlflow-operator/api/v1alpha1"
	"github.com/mlflow-operator/mlflow-operator/internal/mlflow"
	"github.com/mlflow-operator/mlflow-operator/internal/resolver"
	"github.com/mlflow-operator/mlflow-operator/test/harness/fixtures"
	"github.com/mlflow-operator/mlflow-operator/test/harness/mlflowserver"
	"github.com/mlflow-operator/mlflow-operator/test/harness/testenv"
)

// newMD is a ModelDeployment of model following ref on the suite's server.
func newMD(t *testing.T, ns, name, model string, poll time.Duration, mutate ...func(*v1alpha1.ModelDeployment)) *v1alpha1.ModelDeployment {
	t.Helper()
	md := fixtures.Valid(ns, name)
	md.Spec.Model = v1alpha1.ModelReference{Name: model, Alias: "champion"}
	md.Spec.MLflow.TrackingURI = server.URL
	md.Spec.MLflow.PollInterval = &metav1.Duration{Duration: poll}
	// The images are stand-ins that nothing serves: candidates are passed by
	// the tests (passCandidate) without a smoke test.
	md.Spec.Rollout.SmokeTest.Enabled = ptr.To(false)
	for _, m := range mutate {
		m(md)
	}
	if err := k8s.Create(context.Background(), md); err != nil {
		t.Fatal(err)
	}
	return md
}

func passCandidate(t *testing.T, md *v1alpha1.ModelDeployment, version string) {
	t.Helper()
	testenv.PassCandidate(t, k8s, md, imageFor(md, version))
}

func get(t *testing.T, md *v1alpha1.ModelDeployment) *v1alpha1.ModelDeployment {
	t.Helper()
	got := &v1alpha1.ModelDeployment{}
	if err := k8s.Get(context.Background(), client.ObjectKeyFromObject(md), got); err != nil {
		t.Fatal(err)
	}
	return got
}

func resolvedTo(md *v1alpha1.ModelDeployment, version, run string) error {
	c := meta.FindStatusCondition(md.Status.Conditions, v1alpha1.ConditionModelResolved)
	if c == nil || c.Status != metav1.ConditionTrue {
		return fmt.Errorf("ModelResolved %+v", c)
	}
	if md.Status.Target == nil || md.Status.Target.Version != version || (run != "" && md.Status.Target.RunID != run) {
		return fmt.Errorf("target %+v, want version %s run %s", md.Status.Target, version, run)
	}
	if md.Status.LastPolled == nil {
		return fmt.Errorf("lastPolled not set")
	}
	return nil
}

func notResolved(md *v1alpha1.ModelDeployment, reason v1alpha1.Reason) error {
	c := meta.FindStatusCondition(md.Status.Conditions, v1alpha1.ConditionModelResolved)
	if c == nil || c.Status != metav1.ConditionFalse || c.Reason != string(reason) {
		return fmt.Errorf("ModelResolved %+v, want False/%s", c, reason)
	}
	return nil
}

func TestFollowAliasStageAndVersion(t *testing.T) {
	ns := namespace(t)
	res := fixture(t,
		mlflowserver.Op{"op": "register", "model": "follow", "seed": 1, "alias": "champion", "stage": "Staging"},
		mlflowserver.Op{"op": "register", "model": "follow", "seed": 2, "stage": "Production"},
	)
	alias := newMD(t, ns, "by-alias", "follow", 5*time.Second)
	stage := newMD(t, ns, "by-stage", "follow", 5*time.Second, func(md *v1alpha1.ModelDeployment) {
		md.Spec.Model = v1alpha1.ModelReference{Name: "follow", Stage: "Production"}
	})
	pinned := newMD(t, ns, "pinned", "follow", 5*time.Second, func(md *v1alpha1.ModelDeployment) {
		md.Spec.Model = v1alpha1.ModelReference{Name: "follow", Version: res[0].Version}
	})
	for _, c := range []struct {
		md      *v1alpha1.ModelDeployment
		version string
		run     string
	}{{alias, res[0].Version, res[0].RunID}, {stage, res[1].Version, res[1].RunID}, {pinned, res[0].Version, res[0].RunID}} {
		eventually(t, 30*time.Second, c.md.Name+" resolved", func() error {
			m := get(t, c.md)
			if err := resolvedTo(m, c.version, c.run); err != nil {
				return err
			}
			if m.Status.Target.Source == "" || m.Status.Target.Image != imageFor(m, c.version) {
				return fmt.Errorf("target %+v", m.Status.Target)
			}
			return nil
		})
	}

	// The alias moves and a new version enters Production: polling notices
	// both (no webhook is configured for this model's events... the suite's
	// receiver would also do; polling alone is asserted in TestPollingAlone).
	res2 := fixture(t,
		mlflowserver.Op{"op": "set_alias", "model": "follow", "alias": "champion", "version": res[1].Version},
		mlflowserver.Op{"op": "register", "model": "follow", "seed": 3, "stage": "Production"},
	)
	eventually(t, 30*time.Second, "alias move followed", func() error { return resolvedTo(get(t, alias), res[1].Version, res[1].RunID) })
	eventually(t, 30*time.Second, "new Production version followed", func() error { return resolvedTo(get(t, stage), res2[1].Version, res2[1].RunID) })
	passCandidate(t, stage, res2[1].Version)
	eventually(t, 30*time.Second, "the workload follows the new target", func() error {
		d := &appsv1.Deployment{}
		if err := k8s.Get(context.Background(), client.ObjectKeyFromObject(stage), d); err != nil {
			return err
		}
		if img := d.Spec.Template.Spec.Containers[0].Image; img != imageFor(stage, res2[1].Version) {
			return fmt.Errorf("image %s", img)
		}
		return nil
	})
	// The pinned one never moves.
	if err := resolvedTo(get(t, pinned), res[0].Version, res[0].RunID); err != nil {
		t.Error(err)
	}
}

func TestReasons(t *testing.T) {
	ns := namespace(t)
	fixture(t, mlflowserver.Op{"op": "register", "model": "reasons", "alias": "champion"})
	tests := []struct {
		name   string
		mutate func(*v1alpha1.ModelDeployment)
		reason v1alpha1.Reason
	}{
		{"alias-missing", func(md *v1alpha1.ModelDeployment) { md.Spec.Model.Alias = "nobody" }, v1alpha1.ReasonAliasNotFound},
		{"model-missing", func(md *v1alpha1.ModelDeployment) { md.Spec.Model.Name = "no-such-model" }, v1alpha1.ReasonModelNotFound},
		{"stage-empty", func(md *v1alpha1.ModelDeployment) {
			md.Spec.Model = v1alpha1.ModelReference{Name: "reasons", Stage: "Production"}
		}, v1alpha1.ReasonStageEmpty},
		{"version-missing", func(md *v1alpha1.ModelDeployment) {
			md.Spec.Model = v1alpha1.ModelReference{Name: "reasons", Version: "42"}
		}, v1alpha1.ReasonVersionNotFound},
		{"secret-missing", func(md *v1alpha1.ModelDeployment) {
			md.Spec.MLflow.CredentialsSecretRef = &corev1.LocalObjectReference{Name: "absent"}
		}, "SecretNotFound"},
		{"unreachable", func(md *v1alpha1.ModelDeployment) { md.Spec.MLflow.TrackingURI = "http://127.0.0.1:1" }, v1alpha1.ReasonMLflowUnreachable},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			md := newMD(t, ns, tc.name, "reasons", 5*time.Second, tc.mutate)
			eventually(t, 30*time.Second, "reason "+string(tc.reason), func() error {
				m := get(t, md)
				if err := notResolved(m, tc.reason); err != nil {
					return err
				}
				ready := meta.FindStatusCondition(m.Status.Conditions, v1alpha1.ConditionReady)
				if ready == nil || ready.Status != metav1.ConditionFalse || ready.Reason != string(tc.reason) {
					return fmt.Errorf("Ready %+v", ready)
				}
				return nil
			})
			// Nothing is deployed for a reference that never resolved.
			if err := k8s.Get(context.Background(), client.ObjectKeyFromObject(md), &appsv1.Deployment{}); err == nil {
				t.Error("a Deployment exists")
			}
		})
	}
}

func TestCredentialsFromSecretNeverInStatus(t *testing.T) {
	ns := namespace(t)
	fixture(t, mlflowserver.Op{"op": "register", "model": "with-token", "alias": "champion"})
	secret := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "mlflow-credentials", Namespace: ns},
		// The open server ignores the token; the point is that it is sent
		// and never shown.
		StringData: map[string]string{"MLFLOW_TRACKING_TOKEN": "tok-very-secret-123"},
	}
	if err := k8s.Create(context.Background(), secret); err != nil {
		t.Fatal(err)
	}
	md := newMD(t, ns, "with-token", "with-token", 5*time.Second, func(md *v1alpha1.ModelDeployment) {
		md.Spec.MLflow.CredentialsSecretRef = &corev1.LocalObjectReference{Name: "mlflow-credentials"}
	})
	eventually(t, 30*time.Second, "resolved with credentials", func() error { return resolvedTo(get(t, md), "1", "") })

	// An unreachable server with the same credentials: the error must not
	// carry them either.
	// The operator writes status meanwhile: retry on a conflict.
	if err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		m := get(t, md)
		m.Spec.MLflow.TrackingURI = "http://127.0.0.1:1"
		return k8s.Update(context.Background(), m)
	}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "unreachable", func() error { return notResolved(get(t, md), v1alpha1.ReasonMLflowUnreachable) })
	status := fmt.Sprintf("%+v", get(t, md).Status)
	events := &corev1.EventList{}
	_ = k8s.List(context.Background(), events, client.InNamespace(ns))
	if strings.Contains(status, "tok-very-secret") || strings.Contains(fmt.Sprintf("%+v", events.Items), "tok-very-secret") {
		t.Error("the token appears in status or events")
	}
}

func TestWebhookTriggersReconcile(t *testing.T) {
	ns := namespace(t)
	res := fixture(t,
		mlflowserver.Op{"op": "register", "model": "hooked", "seed": 1, "alias": "champion"},
		mlflowserver.Op{"op": "register", "model": "hooked", "seed": 2},
		mlflowserver.Op{"op": "register", "model": "hooked", "seed": 3},
		mlflowserver.Op{"op": "create_webhook", "name": "operator", "url": webhookURL, "secret": webhookSecret,
			"events": []string{"model_version_alias.created", "model_version_alias.deleted", "model_version.created"}},
	)
	// An hour between polls: only the webhook can make it follow in time.
	md := newMD(t, ns, "hooked", "hooked", time.Hour)
	eventually(t, 30*time.Second, "first resolution", func() error { return resolvedTo(get(t, md), res[0].Version, "") })

	var latencies []time.Duration
	for _, v := range []string{res[1].Version, res[2].Version, res[0].Version} {
		moved := fixture(t, mlflowserver.Op{"op": "set_alias", "model": "hooked", "alias": "champion", "version": v})
		eventually(t, 30*time.Second, "alias move to "+v+" followed by webhook", func() error { return resolvedTo(get(t, md), v, "") })
		latencies = append(latencies, time.Since(moved[0].DoneTime()))
	}
	sort.Slice(latencies, func(i, j int) bool { return latencies[i] < latencies[j] })
	t.Logf("MEASURED webhook: alias change in MLflow -> status.target updated: min %s, median %s, max %s (poll interval 1h)",
		latencies[0].Round(time.Millisecond), latencies[1].Round(time.Millisecond), latencies[2].Round(time.Millisecond))
}

// TestWebhookRefusals sends deliveries to the receiver the way an attacker
// or a broken proxy would.
func TestWebhookRefusals(t *testing.T) {
	body := []byte(`{"entity":"model_version_alias","action":"created","timestamp":"2026-11-25T10:00:00+00:00","data":{"name":"nobody-follows","alias":"champion","version":"1"}}`)
	now := strconv.FormatInt(time.Now().Unix(), 10)
	stale := strconv.FormatInt(time.Now().Add(-10*time.Minute).Unix(), 10)
	send := func(id, ts, sig string, b []byte) int {
		req, _ := http.NewRequest(http.MethodPost, webhookURL, bytes.NewReader(b))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set(mlflow.HeaderDeliveryID, id)
		req.Header.Set(mlflow.HeaderTimestamp, ts)
		req.Header.Set(mlflow.HeaderSignature, sig)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	secret := []byte(webhookSecret)
	tests := []struct {
		name string
		code int
		send func() int
	}{
		{"genuine", http.StatusAccepted, func() int { return send("d-1", now, mlflow.Sign(secret, "d-1", now, body), body) }},
		{"replayed", http.StatusOK, func() int { return send("d-1", now, mlflow.Sign(secret, "d-1", now, body), body) }},
		{"forged with another secret", http.StatusUnauthorized, func() int { return send("d-2", now, mlflow.Sign([]byte("guess"), "d-2", now, body), body) }},
		{"unsigned", http.StatusUnauthorized, func() int { return send("d-3", now, "", body) }},
		{"stale", http.StatusUnauthorized, func() int { return send("d-4", stale, mlflow.Sign(secret, "d-4", stale, body), body) }},
		{"body swapped", http.StatusUnauthorized, func() int {
			return send("d-5", now, mlflow.Sign(secret, "d-5", now, body), bytes.Replace(body, []byte("nobody"), []byte("victim"), 1))
		}},
		{"too large", http.StatusRequestEntityTooLarge, func() int {
			big := bytes.Repeat([]byte("a"), 128<<10)
			return send("d-6", now, mlflow.Sign(secret, "d-6", now, big), big)
		}},
		{"GET", http.StatusMethodNotAllowed, func() int {
			resp, err := http.Get(webhookURL)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			return resp.StatusCode
		}},
	}
	for _, tc := range tests {
		if got := tc.send(); got != tc.code {
			t.Errorf("%s: HTTP %d, want %d", tc.name, got, tc.code)
		}
	}
}

func TestMLflowDownKeepsServing(t *testing.T) {
	ctx := context.Background()
	ns := namespace(t)
	res := fixture(t, mlflowserver.Op{"op": "register", "model": "steady", "alias": "champion"})
	md := newMD(t, ns, "steady", "steady", 5*time.Second)
	passCandidate(t, md, res[0].Version)
	key := client.ObjectKeyFromObject(md)
	d := &appsv1.Deployment{}
	eventually(t, 30*time.Second, "deployment with its initial replicas", func() error {
		if err := k8s.Get(ctx, key, d); err != nil {
			return err
		}
		if ptr.Deref(d.Spec.Replicas, 0) != md.Spec.MinReplicas() {
			return fmt.Errorf("replicas %d", ptr.Deref(d.Spec.Replicas, 0))
		}
		return nil
	})
	// The deployment controller reports the rollout complete.
	testenv.CompleteDeployment(t, k8s, key)
	eventually(t, 30*time.Second, "ready", func() error {
		c := meta.FindStatusCondition(get(t, md).Status.Conditions, v1alpha1.ConditionReady)
		if c == nil || c.Status != metav1.ConditionTrue {
			return fmt.Errorf("Ready %+v", c)
		}
		return nil
	})
	servingImage := imageFor(md, res[0].Version)

	server.Stop()
	restarted := false
	defer func() {
		if !restarted {
			_ = server.Restart()
		}
	}()
	eventually(t, 60*time.Second, "condition says MLflow is unreachable", func() error { return notResolved(get(t, md), v1alpha1.ReasonMLflowUnreachable) })
	m := get(t, md)
	if m.Status.Serving == nil || m.Status.Serving.Image != servingImage || m.Status.Target == nil || m.Status.Target.Version != res[0].Version {
		t.Errorf("status lost what serves while MLflow is down: serving %+v target %+v", m.Status.Serving, m.Status.Target)
	}
	if err := k8s.Get(ctx, key, d); err != nil {
		t.Fatal(err)
	}
	if img := d.Spec.Template.Spec.Containers[0].Image; img != servingImage {
		t.Errorf("the workload changed while MLflow is down: %s", img)
	}

	if err := server.Restart(); err != nil {
		t.Fatal(err)
	}
	restarted = true
	eventually(t, 60*time.Second, "recovers", func() error {
		m := get(t, md)
		if err := resolvedTo(m, res[0].Version, ""); err != nil {
			return err
		}
		c := meta.FindStatusCondition(m.Status.Conditions, v1alpha1.ConditionReady)
		if c == nil || c.Status != metav1.ConditionTrue {
			return fmt.Errorf("Ready %+v", c)
		}
		return nil
	})
}

// TestPollingIsShared: many ModelDeployments following a few references
// cost about one registry request per reference and poll interval.
func TestPollingIsShared(t *testing.T) {
	const (
		models  = 3
		aliases = 2
		perRef  = 8
		poll    = 5 * time.Second
	)
	ns := namespace(t)
	var ops []mlflowserver.Op
	for m := 0; m < models; m++ {
		ops = append(ops, mlflowserver.Op{"op": "register", "model": fmt.Sprintf("shared-%d", m), "alias": "a0"})
		for a := 1; a < aliases; a++ {
			ops = append(ops, mlflowserver.Op{"op": "set_alias", "model": fmt.Sprintf("shared-%d", m), "alias": fmt.Sprintf("a%d", a), "version": "1"})
		}
	}
	fixture(t, ops...)
	var mds []*v1alpha1.ModelDeployment
	for m := 0; m < models; m++ {
		for a := 0; a < aliases; a++ {
			for i := 0; i < perRef; i++ {
				mds = append(mds, newMD(t, ns, fmt.Sprintf("s%d-a%d-%d", m, a, i), fmt.Sprintf("shared-%d", m), poll, func(md *v1alpha1.ModelDeployment) {
					md.Spec.Model.Alias = fmt.Sprintf("a%d", a)
				}))
			}
		}
	}
	for _, md := range mds {
		eventually(t, 60*time.Second, md.Name+" resolved", func() error { return resolvedTo(get(t, md), "1", "") })
	}
	requests.byKey.take()
	window := 3 * poll
	time.Sleep(window)
	counts := requests.byKey.take()
	aliasRequests := 0
	for k, n := range counts {
		if strings.Contains(k, "registered-models/alias") && strings.Contains(k, "shared-") {
			aliasRequests += n
		}
	}
	refs := models * aliases
	intervals := float64(window) / float64(poll)
	perInterval := float64(aliasRequests) / intervals
	t.Logf("MEASURED polling: %d ModelDeployments on %d references, %d registry requests in %s = %.1f per %s interval (unshared polling would send about %d)",
		len(mds), refs, aliasRequests, window, perInterval, poll, len(mds))
	if aliasRequests < refs {
		t.Errorf("only %d requests for %d references in %s: polling stopped", aliasRequests, refs, window)
	}
	// An answer is reused for 80% of the interval: at most two requests per
	// reference and interval, far below one per object.
	if perInterval > 2*float64(refs)+1 {
		t.Errorf("%.1f requests per interval for %d references: answers are not shared", perInterval, refs)
	}
}

// TestPollSharingAtScale measures the resolver alone at the scale a platform
// team runs: 1,000 ModelDeployments on 50 references (5 models x 10 aliases)
// of a real MLflow server, over four intervals of a virtual clock. Objects
// start at random moments, then poll when resolver.NextPoll says, as the
// reconciler schedules them. Requests are counted on the wire. Halfway, an
// alias moves in MLflow: every object following it must see the new version
// within 1.1 intervals.
func TestPollSharingAtScale(t *testing.T) {
	const (
		objects   = 1000
		models    = 5
		aliases   = 10
		intervals = 4
		poll      = time.Minute
	)
	var ops []mlflowserver.Op
	for m := 0; m < models; m++ {
		ops = append(ops, mlflowserver.Op{"op": "register", "model": fmt.Sprintf("scale-%d", m), "alias": "a0"})
		for a := 1; a < aliases; a++ {
			ops = append(ops, mlflowserver.Op{"op": "set_alias", "model": fmt.Sprintf("scale-%d", m), "alias": fmt.Sprintf("a%d", a), "version": "1"})
		}
	}
	ops = append(ops, mlflowserver.Op{"op": "register", "model": "scale-0"}) // version 2, no alias yet
	fixture(t, ops...)

	clock := clocktesting.NewFakePassiveClock(time.Time{})
	counting := &countingTransport{next: http.DefaultTransport}
	r := &resolver.Resolver{Transport: counting, Clock: clock}
	start := time.Unix(1_800_000_000, 0)
	end := start.Add(intervals * poll)
	moveAt := start.Add(intervals * poll / 2)
	rng := rand.New(rand.NewPCG(1, 2))
	queue := &pollQueue{}
	for i := 0; i < objects; i++ {
		md := fixtures.Valid("scale", fmt.Sprintf("md-%d", i))
		md.Spec.Model = v1alpha1.ModelReference{Name: fmt.Sprintf("scale-%d", i%models), Alias: fmt.Sprintf("a%d", (i/models)%aliases)}
		md.Spec.MLflow.TrackingURI = server.URL
		md.Spec.MLflow.PollInterval = &metav1.Duration{Duration: poll}
		heap.Push(queue, pollAt{at: start.Add(time.Duration(rng.Int64N(int64(poll)))), md: md})
	}
	moved := false
	var before int64
	polls := 0
	seen := map[string]time.Duration{} // objects following scale-0/a0: when they saw version 2
	following := 0
	for queue.Len() > 0 {
		p := heap.Pop(queue).(pollAt)
		if !p.at.Before(end) {
			continue
		}
		if !moved && !p.at.Before(moveAt) {
			before = counting.total.Load()
			fixture(t, mlflowserver.Op{"op": "set_alias", "model": "scale-0", "alias": "a0", "version": "2"})
			moved = true
		}
		clock.SetTime(p.at)
		polls++
		v, err := r.Resolve(context.Background(), p.md)
		if err != nil {
			t.Fatalf("%s: %v", p.md.Name, err)
		}
		if p.md.Spec.Model.Name == "scale-0" && p.md.Spec.Model.Alias == "a0" {
			if !moved && v.Version != "1" {
				t.Fatalf("%s saw version %s before the alias moved", p.md.Name, v.Version)
			}
			if _, ok := seen[p.md.Name]; !ok && v.Version == "2" {
				seen[p.md.Name] = p.at.Sub(moveAt)
			}
		}
		heap.Push(queue, pollAt{at: p.at.Add(resolver.NextPoll(v.AnsweredAt, p.at, poll, rng.Float64())), md: p.md})
	}
	for i := 0; i < objects; i++ {
		if i%models == 0 && (i/models)%aliases == 0 {
			following++
		}
	}
	perInterval := float64(counting.total.Load()) / intervals
	var slowest time.Duration
	for _, d := range seen {
		slowest = max(slowest, d)
	}
	t.Logf("MEASURED polling at scale: %d ModelDeployments on %d references, %d polls, %d registry requests over %d intervals = %.1f per interval (%d in the interval before the alias moved)",
		objects, models*aliases, polls, counting.total.Load(), intervals, perInterval, before)
	t.Logf("MEASURED the alias moved: %d of %d followers saw it, the last %s after the move (interval %s)", len(seen), following, slowest.Round(time.Second), poll)
	if len(seen) != following {
		t.Errorf("%d of %d objects following the moved alias saw the new version", len(seen), following)
	}
	if slowest > poll+poll/10 {
		t.Errorf("an object saw the moved alias %s after the move, more than 1.1 poll intervals", slowest)
	}
	if perInterval > 1.5*models*aliases {
		t.Errorf("%.1f requests per interval for %d references", perInterval, models*aliases)
	}
	if perInterval < models*aliases {
		t.Errorf("%.1f requests per interval: some references were never asked", perInterval)
	}
}

type pollAt struct {
	at time.Time
	md *v1alpha1.ModelDeployment
}

// pollQueue is a min-heap of polls by time.
type pollQueue []pollAt

func (q pollQueue) Len() int           { return len(q) }
func (q pollQueue) Less(i, j int) bool { return q[i].at.Before(q[j].at) }
func (q pollQueue) Swap(i, j int)      { q[i], q[j] = q[j], q[i] }
func (q *pollQueue) Push(x any)        { *q = append(*q, x.(pollAt)) }
func (q *pollQueue) Pop() any {
	old := *q
	x := old[len(old)-1]
	*q = old[:len(old)-1]
	return x
}
