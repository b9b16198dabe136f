package controllers

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"

	"github.com/mlflow-operator/mlflow-operator/internal/analysis"
	"github.com/mlflow-operator/mlflow-operator/internal/builds"
	"github.com/mlflow-operator/mlflow-operator/internal/eventrecorder"
	"github.com/mlflow-operator/mlflow-operator/internal/imagebuild"
	"github.com/mlflow-operator/mlflow-operator/internal/metrics"
	"github.com/mlflow-operator/mlflow-operator/internal/mlflow"
	"github.com/mlflow-operator/mlflow-operator/internal/notify"
	"github.com/mlflow-operator/mlflow-operator/internal/registryauth"
	"github.com/mlflow-operator/mlflow-operator/internal/resolver"
	"github.com/mlflow-operator/mlflow-operator/internal/resources"
	"github.com/mlflow-operator/mlflow-operator/internal/webhook"
)

// Options wire the operator into a manager.
type Options struct {
	// RequestMetricsImage is the image of the request-metrics sidecar (the
	// operator's own, which ships /request-metrics). Empty: ModelDeployments
	// that ask for request metrics serve without it, and say so.
	RequestMetricsImage string
	// MaxConcurrentReconciles; 1 when zero.
	MaxConcurrentReconciles int
	// WebhookAddr is where MLflow webhooks are received (e.g. ":9090");
	// empty turns the receiver off.
	WebhookAddr string
	// WebhookSecret is the secret MLflow signs deliveries with. Required
	// with WebhookAddr: unsigned deliveries are never accepted.
	WebhookSecret []byte
	// WebhookCertDir, when set, holds tls.crt and tls.key: the receiver then
	// takes deliveries over HTTPS.
	WebhookCertDir string
	// MLflowTransport, when set, carries every MLflow request.
	MLflowTransport http.RoundTripper
	// MLflowOptions are added to every MLflow client.
	MLflowOptions []mlflow.Option
	// ArtifactHosts are hosts other than a tracking server that MLflow's
	// answers may name for artifacts (mlflow-artifacts://host/...); they
	// get no credentials. Others are refused.
	ArtifactHosts []string
	// AllowedAddresses open addresses the MLflow client refuses by default
	// (link-local; loopback when the tracking server is not on loopback).
	AllowedAddresses []*net.IPNet
	// MaxModelBytes, MaxModelFiles and MaxModelDepth bound one model
	// version's artifacts; the MLflow client's defaults when zero.
	MaxModelBytes                int64
	MaxModelFiles, MaxModelDepth int
	// Images gives the image of a model version. When nil, images are built
	// by a build pool with Builder.
	Images ImageProvider
	// Builder builds and pushes images (when Images is nil); a default one
	// when nil.
	Builder *imagebuild.Builder
	// BuildWorkers bounds concurrent builds; 2 when zero.
	BuildWorkers int
	// BuildsPerNamespace bounds the concurrent builds of one namespace; half
	// the workers (at least one) when zero.
	BuildsPerNamespace int
	// BuildTimeout bounds one build; 30 minutes when zero.
	BuildTimeout time.Duration
	// RegistryGrants say which namespaces may build with the operator's own
	// registry identity (Keychain), for which repositories. Without a grant,
	// a build uses only the Secrets its spec names (or none).
	RegistryGrants []RegistryGrant
	// TempDir holds model downloads and layer files.
	TempDir string
	// Keychain is the operator's own registry credentials; when nil, its
	// Docker config followed by the cloud identities of RegistryClouds.
	Keychain authn.Keychain
	// RegistryClouds ("azure", "google") follow the Docker config in the
	// operator's own registry identity; ACRHostSuffixes are the hosts that
	// get Azure credentials (.azurecr.io, .azurecr.cn, .azurecr.us when
	// empty).
	RegistryClouds, ACRHostSuffixes []string
	// SmokeTester sends candidates their smoke test; HTTP to the pod's IP
	// when nil.
	SmokeTester SmokeTester
	// OperatorNamespace, when set, lets the operator's pods (label
	// app.kubernetes.io/name=mlflow-operator in that namespace) through every
	// NetworkPolicy, for the smoke test.
	OperatorNamespace string
	// Notifications turns on the notifications configured in
	// OperatorNamespace (internal/notify; docs/notifications.md). Needs
	// OperatorNamespace.
	Notifications bool
	// PrometheusURL is the Prometheus server canary analyses query
	// (--analysis-prometheus-url); empty: none, and a ModelDeployment's
	// PromQL analysis fails its step saying so. Tenants give queries, never
	// servers: the operator must not be made to reach a host of their
	// choosing.
	PrometheusURL string
}

// RegistryGrant lets the builds of Namespace ("*": every namespace) use the
// operator's own registry identity for repositories under RepositoryPrefix
// (e.g. "myregistry.azurecr.io/team-a/"), where the spec names no Secret.
type RegistryGrant struct {
	Namespace        string
	RepositoryPrefix string
}

// ParseRegistryGrants reads grants written as
// "namespace=repository-prefix,..." (the operator's flag).
func ParseRegistryGrants(s string) ([]RegistryGrant, error) {
	var out []RegistryGrant
	for _, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		ns, prefix, ok := strings.Cut(item, "=")
		if !ok || ns == "" || prefix == "" || !strings.Contains(prefix, "/") {
			return nil, fmt.Errorf("registry grant %q: want namespace=registry.example.com/prefix/", item)
		}
		out = append(out, RegistryGrant{Namespace: ns, RepositoryPrefix: prefix})
	}
	return out, nil
}

// ParseCIDRs reads comma-separated CIDRs (the operator's flag).
func ParseCIDRs(s string) ([]*net.IPNet, error) {
	var out []*net.IPNet
	for _, item := range strings.Split(s, ",") {
		if item = strings.TrimSpace(item); item == "" {
			continue
		}
		_, n, err := net.ParseCIDR(item)
		if err != nil {
			return nil, fmt.Errorf("address range %q: %w", item, err)
		}
		out = append(out, n)
	}
	return out, nil
}

// SplitList reads a comma-separated list, without empty items.
func SplitList(s string) []string {
	var out []string
	for _, item := range strings.Split(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

// grants is the build pool's OwnCredentials for gs.
func grants(gs []RegistryGrant) func(namespace, repository string) bool {
	if len(gs) == 0 {
		return nil
	}
	return func(namespace, repository string) bool {
		for _, g := range gs {
			if (g.Namespace == "*" || g.Namespace == namespace) && strings.HasPrefix(repository, g.RepositoryPrefix) {
				return true
			}
		}
		return false
	}
}

// CacheOptions are the manager's cache options the reconciler needs: only
// the objects the operator owns are cached, not every Deployment, Service
// and Pod of the cluster; with watchNamespaces, only in those namespaces.
// With operatorNamespace, the webhook relay's ConfigMap there is cached
// too (and no other ConfigMap).
func CacheOptions(operatorNamespace string, watchNamespaces []string) cache.Options {
	owned := cache.ByObject{Label: labels.SelectorFromSet(labels.Set{"app.kubernetes.io/managed-by": resources.ManagedBy})}
	o := cache.Options{
		// Managed fields, kubectl's last applied copy and most of each
		// pod go (cachetrim.go).
		DefaultTransform: trimCached,
		ByObject: map[client.Object]cache.ByObject{
			&appsv1.Deployment{}:                     owned,
			&corev1.Service{}:                        owned,
			&autoscalingv2.HorizontalPodAutoscaler{}: owned,
			&policyv1.PodDisruptionBudget{}:          owned,
			&networkingv1.NetworkPolicy{}:            owned,
			// The serving pods carry the same label.
			&corev1.Pod{}: owned,
		}}
	if len(watchNamespaces) > 0 {
		o.DefaultNamespaces = map[string]cache.Config{}
		for _, ns := range watchNamespaces {
			o.DefaultNamespaces[ns] = cache.Config{}
		}
	}
	if operatorNamespace != "" {
		o.ByObject[&corev1.ConfigMap{}] = cache.ByObject{
			Namespaces: map[string]cache.Config{operatorNamespace: {}},
			Field:      fields.OneTermEqualSelector("metadata.name", webhook.RelayName),
		}
	}
	return o
}

// Setup builds the MLflow resolver, the build pool, the webhook receiver and
// the ModelDeployment reconciler, and registers them with mgr: the pool and
// the receiver stop with it.
func Setup(ctx context.Context, mgr ctrl.Manager, o Options) (*ModelDeploymentReconciler, error) {
	if err := mgr.GetFieldIndexer().IndexField(ctx, modelDeploymentObject(), webhook.IndexModelName, webhook.ModelNameIndexer); err != nil {
		return nil, fmt.Errorf("failed to index ModelDeployments by model name: %w", err)
	}
	mlflowOptions := append([]mlflow.Option{
		mlflow.WithArtifactHosts(o.ArtifactHosts...),
		mlflow.WithAllowedAddresses(o.AllowedAddresses...),
		mlflow.WithDownloadLimits(o.MaxModelBytes, o.MaxModelFiles, o.MaxModelDepth),
	}, o.MLflowOptions...)
	res := &resolver.Resolver{
		Reader:    mgr.GetAPIReader(),
		Transport: o.MLflowTransport,
		Options:   mlflowOptions,
	}
	// Forgets registry answers nobody asked for in an hour.
	if err := mgr.Add(res); err != nil {
		return nil, err
	}
	triggers := make(chan event.GenericEvent, 1024)
	recorder := NewEventRecorder(mgr)
	if err := mgr.Add(recorder); err != nil {
		return nil, err
	}
	r := &ModelDeploymentReconciler{
		Client:                  mgr.GetClient(),
		APIReader:               mgr.GetAPIReader(),
		Recorder:                recorder,
		Resolver:                res,
		Examples:                res,
		SmokeTester:             o.SmokeTester,
		Images:                  o.Images,
		Triggers:                triggers,
		MaxConcurrentReconciles: o.MaxConcurrentReconciles,
		RequestMetricsImage:     o.RequestMetricsImage,
	}
	if o.PrometheusURL != "" {
		r.Prometheus = &analysis.Prometheus{URL: o.PrometheusURL}
	}
	if o.OperatorNamespace != "" {
		r.OperatorPeer = &networkingv1.NetworkPolicyPeer{
			NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/metadata.name": o.OperatorNamespace}},
			PodSelector:       &metav1.LabelSelector{MatchLabels: map[string]string{"app.kubernetes.io/name": "mlflow-operator"}},
		}
	}
	if o.Notifications && o.OperatorNamespace != "" {
		log := mgr.GetLogger().WithName("notifications")
		n := notify.New(notify.Options{Log: log,
			Source: &notify.KubeSource{Reader: mgr.GetAPIReader(), Namespace: o.OperatorNamespace, Log: log}})
		if err := mgr.Add(n); err != nil {
			return nil, err
		}
		r.Notifier = n
	}
	if r.Images == nil {
		builder := o.Builder
		if builder == nil {
			builder = &imagebuild.Builder{TempDir: o.TempDir}
		}
		keychain := o.Keychain
		if keychain == nil {
			var err error
			keychain, err = registryauth.OperatorKeychain(registryauth.Options{Clouds: o.RegistryClouds,
				Azure: registryauth.AzureOptions{HostSuffixes: o.ACRHostSuffixes}, Log: mgr.GetLogger().WithName("registryauth")})
			if err != nil {
				return nil, fmt.Errorf("the operator's registry identity: %w", err)
			}
		}
		pool := &builds.Pool{
			Reader: mgr.GetAPIReader(), MLflow: res, Builder: builder, Workers: o.BuildWorkers,
			PerNamespace: o.BuildsPerNamespace, Timeout: o.BuildTimeout, OwnCredentials: grants(o.RegistryGrants),
			TempDir: o.TempDir, Done: triggers, Keychain: keychain, Log: mgr.GetLogger().WithName("builds"),
		}
		if err := mgr.Add(pool); err != nil {
			return nil, err
		}
		r.Images = pool
	}
	if o.WebhookAddr != "" {
		if len(o.WebhookSecret) == 0 {
			return nil, fmt.Errorf("the MLflow webhook receiver needs a secret")
		}
		receiver := &webhook.Receiver{
			Addr:     o.WebhookAddr,
			Verifier: mlflow.NewWebhookVerifier(o.WebhookSecret, 5*time.Minute, 100000, nil),
			// The cache itself: it holds the model-name index, also for the
			// unstructured ModelDeployments the client would list live.
			Reader:     mgr.GetCache(),
			Invalidate: res.Invalidate,
			Events:     triggers,
			Log:        mgr.GetLogger().WithName("webhooks"),
			CertDir:    o.WebhookCertDir,
		}
		if o.OperatorNamespace != "" {
			// Every replica takes deliveries; standbys relay them to the
			// leader through a ConfigMap in the operator's namespace.
			receiver.Relay = &webhook.Relay{Client: mgr.GetClient(), Namespace: o.OperatorNamespace}
			receiver.Elected = mgr.Elected()
			if err := mgr.Add(&webhook.RelayListener{Cache: mgr.GetCache(), Namespace: o.OperatorNamespace,
				Receiver: receiver, Log: mgr.GetLogger().WithName("webhooks")}); err != nil {
				return nil, err
			}
		}
		if err := mgr.Add(receiver); err != nil {
			return nil, err
		}
	}
	if err := r.SetupWithManager(mgr); err != nil {
		return nil, err
	}
	return r, nil
}

// NewEventRecorder is the operator's event recorder on mgr's client: add it
// to mgr to have its Events written (internal/eventrecorder says why it is
// not client-go's broadcaster).
func NewEventRecorder(mgr ctrl.Manager) *eventrecorder.Recorder {
	return eventrecorder.New(mgr.GetClient(), mgr.GetScheme(), FieldOwner, eventrecorder.DefaultQueue,
		mgr.GetLogger().WithName("events"), metrics.EventDropped)
}
