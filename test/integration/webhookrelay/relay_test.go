// Package webhookrelay runs two replicas of the operator's webhook receiver
// against a real API server, with real leader election, each as a user that
// holds only the operator's roles: a delivery that reaches the standby (the
// webhook Service selects every replica) makes the leader reconcile, and
// the standby reconciles nothing.
package webhookrelay

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/controller-runtime/pkg/event"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/yaml"

	v1alpha1 "github.com/mlflow-operator/mlflow-operator/api/v1alpha1"
	"github.com/mlflow-operator/mlflow-operator/controllers"
	"github.com/mlflow-operator/mlflow-operator/internal/mlflow"
	"github.com/mlflow-operator/mlflow-operator/internal/webhook"
	"github.com/mlflow-operator/mlflow-operator/test/harness/procs"
	"github.com/mlflow-operator/mlflow-operator/test/harness/testenv"
)

var (
	env    *testenv.Env
	secret = []byte("relay-test-secret")
)

func TestMain(m *testing.M) {
	testenv.SetLogger()
	var err error
	if env, err = testenv.Start(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	_ = env.Stop()
	os.Exit(code)
}

// replica is one operator process's webhook side.
type replica struct {
	name     string
	mgr      ctrl.Manager
	receiver *webhook.Receiver
	events   chan event.GenericEvent
}

func (r *replica) leading() bool {
	select {
	case <-r.mgr.Elected():
		return true
	default:
		return false
	}
}

// operatorUser is a user holding the operator's ClusterRole
// (config/rbac/role.yaml) and its Role in its own namespace
// (config/rbac/leader_election_role.yaml), and nothing else.
func operatorUser(t *testing.T, ctx context.Context, ns string) *rest.Config {
	t.Helper()
	read := func(name string, into client.Object) {
		data, err := os.ReadFile(filepath.Join(procs.RepoRoot(), "config", "rbac", name))
		if err != nil {
			t.Fatal(err)
		}
		if err := yaml.Unmarshal(data, into); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	const user = "relay-operator"
	cr, role := &rbacv1.ClusterRole{}, &rbacv1.Role{}
	read("role.yaml", cr)
	read("leader_election_role.yaml", role)
	cr.ObjectMeta = metav1.ObjectMeta{Name: user}
	role.ObjectMeta = metav1.ObjectMeta{Name: user, Namespace: ns}
	subjects := []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: user}}
	for _, o := range []client.Object{cr, role,
		&rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: user}, Subjects: subjects,
			RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: user}},
		&rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: user, Namespace: ns}, Subjects: subjects,
			RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: user}},
	} {
		if err := env.Client.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	u, err := env.ControlPlane.AddUser(envtest.User{Name: user}, env.Config)
	if err != nil {
		t.Fatal(err)
	}
	return u.Config()
}

// startReplica starts one replica: a manager with leader election, the
// model-name index, the receiver with its relay and the relay listener,
// as controllers.Setup wires them.
func startReplica(t *testing.T, ctx context.Context, cfg *rest.Config, ns, name string) *replica {
	t.Helper()
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                  scheme.Scheme,
		Metrics:                 metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress:  "0",
		Cache:                   controllers.CacheOptions(ns, nil),
		LeaderElection:          true,
		LeaderElectionID:        "relay-test",
		LeaderElectionNamespace: ns,
		LeaseDuration:           ptr(4 * time.Second),
		RenewDeadline:           ptr(3 * time.Second),
		RetryPeriod:             ptr(500 * time.Millisecond),
	})
	if err != nil {
		t.Fatal(err)
	}
	// Unstructured, as the operator caches ModelDeployments.
	if err := mgr.GetFieldIndexer().IndexField(ctx, modelDeployments(), webhook.IndexModelName, webhook.ModelNameIndexer); err != nil {
		t.Fatal(err)
	}
	r := &replica{name: name, mgr: mgr, events: make(chan event.GenericEvent, 100)}
	r.receiver = &webhook.Receiver{
		Verifier: mlflow.NewWebhookVerifier(secret, 5*time.Minute, 1000, nil),
		Reader:   mgr.GetCache(),
		Events:   r.events,
		Log:      mgr.GetLogger().WithName(name),
		Relay:    &webhook.Relay{Client: mgr.GetClient(), Namespace: ns},
		Elected:  mgr.Elected(),
	}
	if err := mgr.Add(&webhook.RelayListener{Cache: mgr.GetCache(), Namespace: ns, Receiver: r.receiver,
		Log: mgr.GetLogger().WithName(name)}); err != nil {
		t.Fatal(err)
	}
	if r.receiver.NeedLeaderElection() {
		t.Fatal("with a relay the receiver must run on every replica")
	}
	mctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- mgr.Start(mctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("%s stopped: %v", name, err)
		}
	})
	if !mgr.GetCache().WaitForCacheSync(ctx) {
		t.Fatal("cache did not sync")
	}
	return r
}

func ptr[T any](v T) *T { return &v }

func modelDeployments() *unstructured.Unstructured {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(v1alpha1.GroupVersion.WithKind("ModelDeployment"))
	return u
}

// deliver sends a signed delivery about model to r and returns the status.
func deliver(t *testing.T, r *replica, id, model string) int {
	t.Helper()
	body := []byte(fmt.Sprintf(`{"entity":"model_version_alias","action":"created","timestamp":%q,"data":{"name":%q,"alias":"champion","version":"2"}}`,
		time.Now().UTC().Format(time.RFC3339), model))
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	req := httptest.NewRequest(http.MethodPost, webhook.Path, bytes.NewReader(body))
	req.Header.Set(mlflow.HeaderDeliveryID, id)
	req.Header.Set(mlflow.HeaderTimestamp, ts)
	req.Header.Set(mlflow.HeaderSignature, mlflow.Sign(secret, id, ts, body))
	rec := httptest.NewRecorder()
	r.receiver.ServeHTTP(rec, req)
	return rec.Code
}

// received returns the names of the ModelDeployments r was asked to
// reconcile within wait.
func received(r *replica, wait time.Duration) []string {
	var names []string
	deadline := time.After(wait)
	for {
		select {
		case e := <-r.events:
			names = append(names, e.Object.GetNamespace()+"/"+e.Object.GetName())
		case <-deadline:
			return names
		}
	}
}

func TestStandbyRelaysDeliveriesToTheLeader(t *testing.T) {
	ctx := context.Background()
	opNS := testenv.Namespace(t, env.Client, "operator")
	tenant := testenv.Namespace(t, env.Client, "tenant")
	cfg := operatorUser(t, ctx, opNS)
	a := startReplica(t, ctx, cfg, opNS, "replica-a")
	b := startReplica(t, ctx, cfg, opNS, "replica-b")

	var leader, standby *replica
	testenv.Eventually(t, 30*time.Second, "one leader", func() error {
		switch {
		case a.leading() && !b.leading():
			leader, standby = a, b
		case b.leading() && !a.leading():
			leader, standby = b, a
		default:
			return fmt.Errorf("leading: a %v, b %v", a.leading(), b.leading())
		}
		return nil
	})
	for _, md := range []*v1alpha1.ModelDeployment{
		{ObjectMeta: metav1.ObjectMeta{Namespace: tenant, Name: "iris"},
			Spec: v1alpha1.ModelDeploymentSpec{Model: v1alpha1.ModelReference{Name: "iris", Alias: "champion"},
				MLflow: v1alpha1.MLflowConnection{TrackingURI: "http://mlflow.example:5000"},
				Image: v1alpha1.ImageSpec{Repository: "registry.example/models/iris",
					BaseImage: "registry.example/serving/mlflow:base"}}},
	} {
		if err := env.Client.Create(ctx, md); err != nil {
			t.Fatal(err)
		}
	}
	testenv.Eventually(t, 10*time.Second, "both caches see the ModelDeployment", func() error {
		for _, r := range []*replica{a, b} {
			list := &unstructured.UnstructuredList{}
			list.SetGroupVersionKind(v1alpha1.GroupVersion.WithKind("ModelDeploymentList"))
			if err := r.mgr.GetCache().List(ctx, list, client.MatchingFields{webhook.IndexModelName: "iris"}); err != nil || len(list.Items) != 1 {
				return fmt.Errorf("%s: %d items, %v", r.name, len(list.Items), err)
			}
		}
		return nil
	})

	// To the standby: relayed, reconciled by the leader only.
	if code := deliver(t, standby, "d-1", "iris"); code != http.StatusAccepted {
		t.Fatalf("standby answered %d, want 202", code)
	}
	if got := received(leader, 5*time.Second); len(got) != 1 || got[0] != tenant+"/iris" {
		t.Fatalf("the leader reconciled %v after a delivery to the standby, want [%s/iris]", got, tenant)
	}
	if got := received(standby, 0); len(got) != 0 {
		t.Errorf("the standby reconciled %v itself", got)
	}
	cm := &corev1.ConfigMap{}
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: opNS, Name: webhook.RelayName}, cm); err != nil {
		t.Fatalf("the relay ConfigMap: %v", err)
	}
	if len(cm.Data) != 1 {
		t.Errorf("relay holds %d entries, want 1: %v", len(cm.Data), cm.Data)
	}

	// Again (a new delivery about the same model): relayed again.
	if code := deliver(t, standby, "d-2", "iris"); code != http.StatusAccepted {
		t.Fatalf("standby answered %d", code)
	}
	if got := received(leader, 5*time.Second); len(got) != 1 {
		t.Fatalf("second relayed delivery: the leader reconciled %v", got)
	}

	// A model nobody follows: relayed, nothing to reconcile.
	if code := deliver(t, standby, "d-3", "unknown"); code != http.StatusAccepted {
		t.Fatalf("standby answered %d", code)
	}
	if got := received(leader, 2*time.Second); len(got) != 0 {
		t.Errorf("a model nobody follows made the leader reconcile %v", got)
	}

	// To the leader: handled there, nothing written.
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: opNS, Name: webhook.RelayName}, cm); err != nil {
		t.Fatal(err)
	}
	before := cm.ResourceVersion
	if code := deliver(t, leader, "d-4", "iris"); code != http.StatusAccepted {
		t.Fatalf("leader answered %d", code)
	}
	if got := received(leader, 2*time.Second); len(got) != 1 {
		t.Fatalf("a delivery to the leader: it reconciled %v", got)
	}
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: opNS, Name: webhook.RelayName}, cm); err != nil {
		t.Fatal(err)
	}
	if cm.ResourceVersion != before {
		t.Errorf("a delivery to the leader wrote the relay ConfigMap")
	}
	// A forged delivery is refused by the standby and never relayed.
	req := httptest.NewRequest(http.MethodPost, webhook.Path, bytes.NewReader([]byte(`{}`)))
	rec := httptest.NewRecorder()
	standby.receiver.ServeHTTP(rec, req)
	if rec.Code != http.StatusUnauthorized {
		t.Errorf("unsigned delivery to the standby: %d, want 401", rec.Code)
	}
	if got := received(leader, 2*time.Second); len(got) != 0 {
		t.Errorf("an unsigned delivery made the leader reconcile %v", got)
	}
}
