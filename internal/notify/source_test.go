package notify

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
)

func TestKubeSource(t *testing.T) {
	ctx := context.Background()
	var gets atomic.Int32
	var forbidden atomic.Bool
	c := fake.NewClientBuilder().WithInterceptorFuncs(interceptor.Funcs{
		Get: func(ctx context.Context, c client.WithWatch, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
			gets.Add(1)
			if forbidden.Load() {
				return apierrors.NewForbidden(schema.GroupResource{Resource: "configmaps"}, key.Name, nil)
			}
			return c.Get(ctx, key, obj, opts...)
		},
	}).Build()
	clock := clocktesting.NewFakeClock(now)
	lb := &logBuf{}
	s := &KubeSource{Reader: c, Namespace: "mlflow-operator-system", TTL: 10 * time.Second, Clock: clock, Log: lb.logger()}

	// No ConfigMap: no configuration, and no second read within the TTL.
	for range 2 {
		if cfg, err := s.Load(ctx); cfg != nil || err != nil {
			t.Fatalf("without a ConfigMap: %v, %v", cfg, err)
		}
	}
	if gets.Load() != 1 {
		t.Errorf("%d reads, want 1", gets.Load())
	}

	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "mlflow-operator-system", Name: ConfigMapName},
		Data: map[string]string{"service.slack": "token: $slack-token", "service.webhook.audit": "url: $url\nsecret: $hmac"}}
	if err := c.Create(ctx, cm); err != nil {
		t.Fatal(err)
	}
	// Another namespace's Secret of that name is not read.
	if err := c.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: SecretName},
		Data: map[string][]byte{"slack-token": []byte("xoxb-tenant")}}); err != nil {
		t.Fatal(err)
	}
	clock.Step(11 * time.Second)
	cfg, err := s.Load(ctx)
	if err != nil || cfg == nil {
		t.Fatalf("%v, %v", cfg, err)
	}
	if len(cfg.services) != 0 || len(cfg.Problems) != 2 {
		t.Errorf("without the Secret: services %v, problems %q", cfg.Services(), cfg.Problems)
	}

	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "mlflow-operator-system", Name: SecretName},
		Data: map[string][]byte{"slack-token": []byte("xoxb-admin"), "url": []byte("https://h.example/"), "hmac": []byte("k")}}
	if err := c.Create(ctx, secret); err != nil {
		t.Fatal(err)
	}
	clock.Step(11 * time.Second)
	cfg, _ = s.Load(ctx)
	if got := strings.Join(cfg.Services(), ","); got != "audit,slack" || cfg.services["slack"].(*slack).token != "xoxb-admin" {
		t.Errorf("services %s", got)
	}
	clock.Step(11 * time.Second)
	_, _ = s.Load(ctx)
	// Problems are logged when the configuration changes, not at every read.
	if got := lb.count("Notification configuration problem"); got != 2 {
		t.Errorf("%d problem lines, want 2:\n%s", got, lb)
	}
	if strings.Contains(lb.String(), "xoxb") {
		t.Errorf("a token in the log:\n%s", lb)
	}

	forbidden.Store(true)
	clock.Step(11 * time.Second)
	if _, err := s.Load(ctx); !apierrors.IsForbidden(err) {
		t.Errorf("a forbidden read: %v", err)
	}
}
