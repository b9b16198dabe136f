// Package notifications runs the real reconciler against a real API server
// with notifications on: the ConfigMap and the Secret are read from the
// operator's namespace through the API server, as a user holding only the
// operator's ClusterRole and the Role of config/rbac/leader_election_role.yaml;
// a ModelDeployment subscribes with annotations; the events of its rollout
// reach HTTP servers standing in for Slack, Teams and a webhook receiver.
package notifications

import (
	"context"
	"crypto/hmac"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/mlflow-operator/mlflow-operator/controllers"
	"github.com/mlflow-operator/mlflow-operator/internal/notify"
	"github.com/mlflow-operator/mlflow-operator/internal/resolver"
	"github.com/mlflow-operator/mlflow-operator/test/harness/fixtures"
	"github.com/mlflow-operator/mlflow-operator/test/harness/operator"
	"github.com/mlflow-operator/mlflow-operator/test/harness/procs"
	"github.com/mlflow-operator/mlflow-operator/test/harness/testenv"
)

const image = "registry.example.com/models/iris@sha256:1111111111111111111111111111111111111111111111111111111111111111"

var (
	env            *testenv.Env
	operatorConfig *rest.Config
)

func TestMain(m *testing.M) {
	testenv.SetLogger()
	var err error
	if env, err = testenv.Start(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if operatorConfig, err = env.OperatorConfig(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	_ = env.Stop()
	os.Exit(code)
}

// grantOperatorNamespaceRole binds the Role the operator gets in its own
// namespace (config/rbac/leader_election_role.yaml, as shipped) to the
// operator's test user in ns.
func grantOperatorNamespaceRole(t *testing.T, ns string) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(procs.RepoRoot(), "config", "rbac", "leader_election_role.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	role := &rbacv1.Role{}
	if err := yaml.Unmarshal(data, role); err != nil {
		t.Fatal(err)
	}
	role.Namespace = ns
	binding := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: role.Name, Namespace: ns},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: role.Name},
		Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: "mlflow-operator-test"}},
	}
	for _, obj := range []client.Object{role, binding} {
		if err := env.Client.Create(context.Background(), obj); err != nil {
			t.Fatal(err)
		}
	}
}

type request struct {
	path   string
	header http.Header
	body   []byte
}

// receivers stand in for Slack's Web API, a Teams webhook and a generic
// webhook receiver, all on one server.
type receivers struct {
	*httptest.Server
	mu  sync.Mutex
	got map[string][]request
}

func newReceivers(t *testing.T) *receivers {
	r := &receivers{got: map[string][]request{}}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.got[req.URL.Path] = append(r.got[req.URL.Path], request{path: req.URL.Path, header: req.Header.Clone(), body: body})
		r.mu.Unlock()
		if req.URL.Path == "/slack/api/chat.postMessage" {
			_, _ = io.WriteString(w, `{"ok":true}`)
			return
		}
		_, _ = io.WriteString(w, "ok")
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *receivers) at(path string) []request {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]request(nil), r.got[path]...)
}

func (r *receivers) paths() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for p := range r.got {
		out = append(out, p)
	}
	return out
}

func TestRolloutEventsReachTheReceivers(t *testing.T) {
	ctx := context.Background()
	rcv := newReceivers(t)
	opNS := testenv.Namespace(t, env.Client, "mlflow-operator-system")
	grantOperatorNamespaceRole(t, opNS)

	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: opNS, Name: notify.ConfigMapName}, Data: map[string]string{
		"service.slack":         "token: $slack-token\napiURL: " + rcv.URL + "/slack/api\nchannels: [ml-alerts]\n",
		"service.teams":         "recipientURLs:\n  ml-team: $teams-ml-team\nformat: messageCard\n",
		"service.webhook.audit": "url: $audit-url\nsecret: $audit-hmac\n",
		"template.rollout-complete": "title: '{{.namespace}}/{{.name}} serves {{.model}} v{{.version}}'\n" +
			"message: '{{.message}}'\nteams: {themeColor: '#2eb886'}\n",
	}}
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: opNS, Name: notify.SecretName}, Data: map[string][]byte{
		"slack-token":   []byte("xoxb-from-the-secret"),
		"teams-ml-team": []byte(rcv.URL + "/teams/webhookb2/secret-path"),
		"audit-url":     []byte(rcv.URL + "/audit"),
		"audit-hmac":    []byte("audit-signing-key"),
	}}
	for _, obj := range []client.Object{cm, secret} {
		if err := env.Client.Create(ctx, obj); err != nil {
			t.Fatal(err)
		}
	}

	fake := fixtures.NewFakeRegistry()
	op, err := operator.Start(operatorConfig, func(ctx context.Context, mgr ctrl.Manager) error {
		log := mgr.GetLogger().WithName("notifications")
		n := notify.New(notify.Options{Log: log, Backoff: 100 * time.Millisecond,
			Source: &notify.KubeSource{Reader: mgr.GetAPIReader(), Namespace: opNS, Log: log, TTL: time.Second}})
		if err := mgr.Add(n); err != nil {
			return err
		}
		return operator.WithReconciler(controllers.ModelDeploymentReconciler{
			Resolver: fake, Images: fake, Examples: fake, Notifier: n,
		})(ctx, mgr)
	})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = op.Stop() }()

	md := fixtures.Valid(testenv.Namespace(t, env.Client, "team-a"), "iris")
	md.Spec.Rollout.SmokeTest.Enabled = ptr.To(false)
	md.Annotations = map[string]string{
		notify.SubscribePrefix + "on-promoted.slack":         "#ml-alerts",
		notify.SubscribePrefix + "on-rollout-complete.teams": "ml-team",
		notify.SubscribePrefix + "audit":                     "",
		// A tenant cannot add a receiver of its own.
		notify.SubscribePrefix + "on-promoted.webhook": "http://" + strings.TrimPrefix(rcv.URL, "http://") + "/tenant",
	}
	fake.Set(client.ObjectKeyFromObject(md), fixtures.Answer{Version: resolver.ModelVersion{Version: "1", RunID: "run1"}, Image: image})
	if err := env.Client.Create(ctx, md); err != nil {
		t.Fatal(err)
	}

	// The candidate becomes available: the reconciler promotes version 1.
	testenv.PassCandidate(t, env.Client, md, image)
	waitFor(t, "the promotion reaches Slack", func() bool { return len(rcv.at("/slack/api/chat.postMessage")) == 1 })
	slack := rcv.at("/slack/api/chat.postMessage")[0]
	if a := slack.header.Get("Authorization"); a != "Bearer xoxb-from-the-secret" {
		t.Errorf("Slack Authorization %q", a)
	}
	var sp struct {
		Channel, Text string
		Attachments   []struct{ Color, Text string }
	}
	if err := json.Unmarshal(slack.body, &sp); err != nil {
		t.Fatal(err)
	}
	if want := "*" + md.Namespace + "/iris: promoting version 1 of iris*"; sp.Channel != "ml-alerts" || sp.Text != want ||
		len(sp.Attachments) != 1 || !strings.Contains(sp.Attachments[0].Text, "candidate of version 1") {
		t.Errorf("Slack payload %s", slack.body)
	}

	// Production becomes available: the rollout completes.
	testenv.Eventually(t, 60*time.Second, "the production Deployment", func() error {
		return env.Client.Get(ctx, client.ObjectKeyFromObject(md), &appsv1.Deployment{})
	})
	testenv.CompleteDeployment(t, env.Client, client.ObjectKeyFromObject(md))
	waitFor(t, "the completion reaches Teams", func() bool { return len(rcv.at("/teams/webhookb2/secret-path")) == 1 })
	var card map[string]any
	if err := json.Unmarshal(rcv.at("/teams/webhookb2/secret-path")[0].body, &card); err != nil {
		t.Fatal(err)
	}
	if card["@type"] != "MessageCard" || card["title"] != md.Namespace+"/iris serves iris v1" || card["themeColor"] != "2eb886" ||
		!strings.Contains(fmt.Sprint(card["text"]), "version 1 serves") {
		t.Errorf("Teams card %v", card)
	}

	// The webhook subscribed to the default triggers (every one): it got
	// both, signed with the Secret's key.
	waitFor(t, "both events reach the webhook", func() bool { return len(rcv.at("/audit")) == 2 })
	var triggers []string
	for _, r := range rcv.at("/audit") {
		if sig := r.header.Get(notify.HeaderSignature); !hmac.Equal([]byte(sig), []byte(notify.Sign([]byte("audit-signing-key"), r.body))) {
			t.Errorf("signature %q does not match", sig)
		}
		var b notify.WebhookBody
		if err := json.Unmarshal(r.body, &b); err != nil {
			t.Fatal(err)
		}
		if b.ModelDeployment.Namespace != md.Namespace || b.ModelDeployment.Name != "iris" || b.Model.Version != "1" || b.Model.Image != image {
			t.Errorf("webhook body %s", r.body)
		}
		triggers = append(triggers, b.Trigger)
	}
	if strings.Join(triggers, ",") != notify.TriggerPromoted+","+notify.TriggerRolloutComplete {
		t.Errorf("webhook triggers %v", triggers)
	}

	// Nothing went anywhere else: not to the tenant's URL, and Slack and
	// Teams got only what they subscribed to.
	time.Sleep(time.Second)
	if got := len(rcv.paths()); got != 3 {
		t.Errorf("requests at %v", rcv.paths())
	}
	if len(rcv.at("/slack/api/chat.postMessage")) != 1 || len(rcv.at("/teams/webhookb2/secret-path")) != 1 {
		t.Errorf("a receiver got an event it did not subscribe to")
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testenv.Eventually(t, 60*time.Second, what, func() error {
		if cond() {
			return nil
		}
		return fmt.Errorf("not yet")
	})
}
