package notify

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// KubeSource reads the ConfigMap and the Secret from the operator's
// namespace (two GETs, no watch: notifications are rare), and keeps the
// parsed configuration for TTL.
type KubeSource struct {
	// Reader should read the API server directly (the manager's API
	// reader): the cache holds no ConfigMap or Secret of this name.
	Reader    client.Reader
	Namespace string
	// TTL; 15s when zero.
	TTL   time.Duration
	Log   logr.Logger
	Clock clock.PassiveClock

	mu       sync.Mutex
	cfg      *Config
	at       time.Time
	versions string
}

// Load implements ConfigSource. A missing ConfigMap is no configuration;
// a missing Secret is an empty one (services that name its keys are off).
// Problems of a new configuration are logged once.
func (s *KubeSource) Load(ctx context.Context) (*Config, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.Clock
	if c == nil {
		c = clock.RealClock{}
	}
	ttl := s.TTL
	if ttl <= 0 {
		ttl = 15 * time.Second
	}
	now := c.Now()
	if !s.at.IsZero() && now.Sub(s.at) < ttl {
		return s.cfg, nil
	}
	cm := &corev1.ConfigMap{}
	if err := s.Reader.Get(ctx, client.ObjectKey{Namespace: s.Namespace, Name: ConfigMapName}, cm); err != nil {
		if !apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("ConfigMap %s/%s: %w", s.Namespace, ConfigMapName, err)
		}
		s.cfg, s.at, s.versions = nil, now, ""
		return nil, nil
	}
	secret := &corev1.Secret{}
	if err := s.Reader.Get(ctx, client.ObjectKey{Namespace: s.Namespace, Name: SecretName}, secret); err != nil {
		if !apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("Secret %s/%s: %w", s.Namespace, SecretName, err)
		}
		secret = &corev1.Secret{}
	}
	cfg := Parse(cm.Data, secret.Data)
	versions := cm.ResourceVersion + "/" + secret.ResourceVersion
	if versions != s.versions {
		s.Log.Info("Notification configuration read", "services", cfg.Services(), "problems", len(cfg.Problems))
		for _, p := range cfg.Problems {
			s.Log.Info("Notification configuration problem", "problem", p)
		}
	}
	s.cfg, s.at, s.versions = cfg, now, versions
	return cfg, nil
}
