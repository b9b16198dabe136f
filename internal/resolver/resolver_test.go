package resolver

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	v1alpha1 "github.com/mlflow-operator/mlflow-operator/api/v1alpha1"
	"github.com/mlflow-operator/mlflow-operator/internal/failure"
	"github.com/mlflow-operator/mlflow-operator/internal/mlflow"
)

// These tests exercise the resolver's own logic (sharing, expiry,
// invalidation, isolation between identities) with a transport that answers
// MLflow's alias lookup; the client against a real MLflow server is tested
// in test/integration.

// registry answers GET registered-models/alias with the version it holds,
// counting requests and the Authorization headers they carried; gate, when
// set, holds every answer until closed.
type registry struct {
	mu      sync.Mutex
	version string
	auth    map[string]int
	calls   atomic.Int32
	gate    chan struct{}
}

func (r *registry) RoundTrip(req *http.Request) (*http.Response, error) {
	r.calls.Add(1)
	if r.gate != nil {
		<-r.gate
	}
	r.mu.Lock()
	if r.auth == nil {
		r.auth = map[string]int{}
	}
	r.auth[req.Header.Get("Authorization")]++
	v := r.version
	r.mu.Unlock()
	body := fmt.Sprintf(`{"model_version":{"name":%q,"version":%q,"run_id":"run-%s","source":"models:/m-%s","status":"READY"}}`, req.URL.Query().Get("name"), v, v, v)
	return &http.Response{StatusCode: http.StatusOK, Header: http.Header{"Content-Type": {"application/json"}},
		Body: io.NopCloser(strings.NewReader(body)), Request: req}, nil
}

func (r *registry) set(v string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.version = v
}

func modelDeployment(ns, name, secret string) *v1alpha1.ModelDeployment {
	md := &v1alpha1.ModelDeployment{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: v1alpha1.ModelDeploymentSpec{
			Model:  v1alpha1.ModelReference{Name: "iris", Alias: "champion"},
			MLflow: v1alpha1.MLflowConnection{TrackingURI: "http://mlflow.example:5000", PollInterval: &metav1.Duration{Duration: time.Minute}},
		}}
	if secret != "" {
		md.Spec.MLflow.CredentialsSecretRef = &corev1.LocalObjectReference{Name: secret}
	}
	return md
}

func newResolver(t *testing.T, reg *registry, clock *clocktesting.FakePassiveClock, secrets ...*corev1.Secret) *Resolver {
	t.Helper()
	scheme := runtime.NewScheme()
	if err := corev1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	b := fake.NewClientBuilder().WithScheme(scheme)
	for _, s := range secrets {
		b = b.WithObjects(s)
	}
	return &Resolver{Reader: b.Build(), Transport: reg, Clock: clock, Options: []mlflow.Option{mlflow.WithRetries(0, time.Millisecond, time.Millisecond)}}
}

func tokenSecret(ns, name, token string) *corev1.Secret {
	return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Data: map[string][]byte{SecretKeyToken: []byte(token)}}
}

func TestConcurrentAskersShareOneRequest(t *testing.T) {
	reg := &registry{version: "3", gate: make(chan struct{})}
	r := newResolver(t, reg, clocktesting.NewFakePassiveClock(time.Now()))
	var wg sync.WaitGroup
	versions := make(chan string, 20)
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			v, err := r.Resolve(context.Background(), modelDeployment("ns", fmt.Sprint("md-", i), ""))
			if err != nil {
				t.Error(err)
			}
			versions <- v.Version
		}()
	}
	// Let the askers pile up behind the first request, then answer it.
	time.Sleep(100 * time.Millisecond)
	close(reg.gate)
	wg.Wait()
	close(versions)
	for v := range versions {
		if v != "3" {
			t.Errorf("an asker got version %q", v)
		}
	}
	if n := reg.calls.Load(); n != 1 {
		t.Fatalf("%d registry requests for 20 concurrent askers of one reference, want 1", n)
	}
}

func TestAnswersExpireAndInvalidate(t *testing.T) {
	reg := &registry{version: "1"}
	clock := clocktesting.NewFakePassiveClock(time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC))
	r := newResolver(t, reg, clock)
	md := modelDeployment("ns", "a", "")
	ask := func() ModelVersion {
		t.Helper()
		v, err := r.Resolve(context.Background(), md)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	first := ask()
	reg.set("2")
	// Within 0.8 of the poll interval the answer is shared, with the time
	// it was given.
	clock.SetTime(clock.Now().Add(47 * time.Second))
	if v := ask(); v.Version != "1" || !v.AnsweredAt.Equal(first.AnsweredAt) || reg.calls.Load() != 1 {
		t.Fatalf("within the cache time: %+v after %d requests", v, reg.calls.Load())
	}
	// Past it, the registry is asked again.
	clock.SetTime(clock.Now().Add(2 * time.Second))
	if v := ask(); v.Version != "2" || reg.calls.Load() != 2 {
		t.Fatalf("after the cache time: %+v after %d requests", v, reg.calls.Load())
	}
	// A webhook about the model drops the answer at once.
	// The answer fetched then carries when the webhook said the model
	// changed; the answers after it do not.
	reg.set("3")
	changed := clock.Now().Add(-3 * time.Second)
	r.Invalidate("iris", changed)
	r.Invalidate("iris", changed.Add(time.Second)) // a second delivery: the first saw the change
	if v := ask(); v.Version != "3" || reg.calls.Load() != 3 || !v.ChangedAt.Equal(changed) {
		t.Fatalf("after Invalidate: %+v after %d requests", v, reg.calls.Load())
	}
	if v := ask(); !v.ChangedAt.Equal(changed) {
		t.Fatalf("the shared answer lost its change time: %+v", v)
	}
	clock.SetTime(clock.Now().Add(time.Minute))
	if v := ask(); reg.calls.Load() != 4 || !v.ChangedAt.IsZero() {
		t.Fatalf("a polled answer after it: %+v after %d requests", v, reg.calls.Load())
	}
	r.Invalidate("another-model", clock.Now())
	if ask(); reg.calls.Load() != 4 {
		t.Fatal("invalidating another model dropped this one's answer")
	}
	// Prune forgets old answers (memory is bounded).
	clock.SetTime(clock.Now().Add(2 * time.Hour))
	r.Prune(time.Hour)
	r.mu.Lock()
	left := len(r.answers) + len(r.changed)
	r.mu.Unlock()
	if left != 0 {
		t.Fatalf("%d answers or change times left after pruning", left)
	}
}

// TestIdentitiesDoNotShareAnswers: an answer fetched with one namespace's
// credentials is never given to another namespace with other credentials
// (or none), and each request carries its own namespace's token.
func TestIdentitiesDoNotShareAnswers(t *testing.T) {
	reg := &registry{version: "1"}
	r := newResolver(t, reg, clocktesting.NewFakePassiveClock(time.Now()),
		tokenSecret("team-a", "mlflow", "token-a"), tokenSecret("team-b", "mlflow", "token-b"))
	for _, md := range []*v1alpha1.ModelDeployment{
		modelDeployment("team-a", "x", "mlflow"), modelDeployment("team-b", "x", "mlflow"), modelDeployment("team-c", "x", ""),
		modelDeployment("team-a", "y", "mlflow"), // shares team-a's answer
	} {
		if _, err := r.Resolve(context.Background(), md); err != nil {
			t.Fatal(err)
		}
	}
	if n := reg.calls.Load(); n != 3 {
		t.Fatalf("%d requests, want 3 (one per identity)", n)
	}
	want := map[string]int{"Bearer token-a": 1, "Bearer token-b": 1, "": 1}
	for k, v := range want {
		if reg.auth[k] != v {
			t.Errorf("requests with Authorization %q: %d, want %d (all: %v)", k, reg.auth[k], v, reg.auth)
		}
	}
}

func TestMissingSecretIsAFailureAboutASecret(t *testing.T) {
	reg := &registry{version: "1"}
	r := newResolver(t, reg, clocktesting.NewFakePassiveClock(time.Now()),
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "empty"}, Data: map[string][]byte{"other": []byte("x")}})
	for name, want := range map[string]string{"absent": `secret "absent" not found`, "empty": `secret "empty" has none of the keys`} {
		_, err := r.Resolve(context.Background(), modelDeployment("ns", "a", name))
		if failure.KindOf(err) != failure.NotFound || failure.SubjectOf(err) != failure.Secret || !strings.Contains(fmt.Sprint(err), want) {
			t.Errorf("secret %s: %v (kind %s, subject %s)", name, err, failure.KindOf(err), failure.SubjectOf(err))
		}
	}
	if reg.calls.Load() != 0 {
		t.Fatal("MLflow was asked without the credentials the spec names")
	}
}
