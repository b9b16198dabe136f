// Command manager runs the mlflow-operator: the ModelDeployment controller,
// its health probes and its metrics. Flags and wiring only.
package main

import (
	"bytes"
	"crypto/tls"
	"errors"
	"flag"
	"io/fs"
	"net/url"
	"os"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apimachinery/pkg/util/validation"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/controller-runtime/pkg/metrics/filters"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	v1alpha1 "github.com/mlflow-operator/mlflow-operator/api/v1alpha1"
	"github.com/mlflow-operator/mlflow-operator/controllers"
)

// version is the operator's release, stamped by the image build
// (hack/operator-image: -X main.version=...); "dev" otherwise.
var version = "dev"

func main() {
	var (
		metricsAddr, probeAddr, pprofAddr string
		secureMetrics                     bool
		enableHTTP2                       bool
		leaderElect                       bool
		concurrency                       int
		webhookAddr                       string
		webhookSecretFile                 string
		webhookCertDir                    string
		buildWorkers                      int
		buildsPerNamespace                int
		buildTimeout                      time.Duration
		registryGrants                    string
		registryClouds                    string
		acrHostSuffixes                   string
		artifactHosts                     string
		allowedAddresses                  string
		maxModelBytes                     string
		maxModelFiles                     int
		maxModelDepth                     int
		tempDir                           string
		watchNamespaces                   string
		notifications                     bool
		requestMetricsImage               string
		prometheusURL                     string
	)
	flag.StringVar(&metricsAddr, "metrics-bind-address", ":8443", "Address the metrics endpoint binds to; \"0\" turns it off.")
	flag.BoolVar(&secureMetrics, "metrics-secure", true, "Serve metrics over HTTPS, to clients that the API server authenticates and authorizes.")
	flag.StringVar(&probeAddr, "health-probe-bind-address", ":8081", "Address the /healthz and /readyz probes bind to.")
	flag.StringVar(&pprofAddr, "pprof-bind-address", "0", "Address Go's profiling handlers (/debug/pprof/) bind to, for a heap or CPU profile; \"0\" turns them off. They are not authenticated: bind to 127.0.0.1 and use kubectl port-forward.")
	flag.BoolVar(&leaderElect, "leader-elect", true, "Elect a leader, so that only one of several replicas reconciles.")
	flag.BoolVar(&enableHTTP2, "enable-http2", false, "Serve metrics over HTTP/2 (off by default: HTTP/2 rapid reset, CVE-2023-44487).")
	flag.IntVar(&concurrency, "max-concurrent-reconciles", 4, "ModelDeployments reconciled at once.")
	flag.StringVar(&webhookAddr, "webhook-bind-address", ":9090", "Address the MLflow webhook receiver binds to; \"0\" turns it off.")
	flag.StringVar(&webhookSecretFile, "webhook-secret-file", "/etc/mlflow-operator/webhook/secret",
		"File holding the secret MLflow signs webhook deliveries with (mount it from a Secret). Without it the receiver stays off and polling alone notices changes.")
	flag.StringVar(&webhookCertDir, "webhook-cert-dir", "",
		"Folder holding tls.crt and tls.key (mount a kubernetes.io/tls Secret): the MLflow webhook receiver then takes deliveries over HTTPS, and picks up a renewed certificate by itself.")
	flag.IntVar(&buildWorkers, "build-workers", 2, "Image builds run at once (each downloads a model and writes a layer file in --temp-dir).")
	flag.IntVar(&buildsPerNamespace, "builds-per-namespace", 0, "Image builds of one namespace run at once; 0: half of --build-workers (at least 1), so one tenant cannot hold every worker.")
	flag.DurationVar(&buildTimeout, "build-timeout", 30*time.Minute, "Longest one image build (download, check, push) may take.")
	flag.StringVar(&registryGrants, "operator-registry-credentials", "",
		"Where builds may use the operator's own registry identity (its Docker config or cloud identity) when a ModelDeployment names no Secret: "+
			"comma-separated namespace=repository-prefix, namespace * for all, e.g. team-a=myacr.azurecr.io/team-a/. Empty: never; tenants bring their own Secrets.")
	flag.StringVar(&registryClouds, "registry-cloud-identity", "",
		"Cloud identities the operator's own registry identity asks after its Docker config, comma-separated: azure (workload identity, else managed identity, "+
			"for the hosts of --acr-host-suffixes), google (Application Default Credentials, for gcr.io and *.pkg.dev). "+
			"Used only where --operator-registry-credentials grants it. Empty: the Docker config alone.")
	flag.StringVar(&acrHostSuffixes, "acr-host-suffixes", ".azurecr.io,.azurecr.cn,.azurecr.us",
		"Comma-separated registry hosts that get the azure identity's ACR credentials: .suffix for the hosts below it, host for it and the hosts below. "+
			"Its Azure AD token is sent to them: list only Azure Container Registry hosts.")
	flag.StringVar(&artifactHosts, "mlflow-artifact-hosts", "",
		"Comma-separated host[:port]s, other than a ModelDeployment's tracking server, that MLflow may name for artifacts (mlflow-artifacts://host/...). They get no credentials; others are refused.")
	flag.StringVar(&allowedAddresses, "mlflow-allowed-addresses", "",
		"Comma-separated CIDRs the MLflow client may connect to although it refuses them by default (link-local, e.g. cloud metadata; loopback unless the tracking server is on loopback).")
	flag.StringVar(&maxModelBytes, "max-model-bytes", "8Gi",
		"Most bytes of artifacts one model version may have (a quantity: 10Gi, 500Mi). Every build worker may hold one model in --temp-dir: keep --build-workers times this below the volume's size (the shipped 20Gi volume and 2 workers: 8Gi).")
	flag.IntVar(&maxModelFiles, "max-model-files", 10000, "Most files and folders one model version's artifacts may have.")
	flag.IntVar(&maxModelDepth, "max-model-depth", 16, "Deepest folder nesting one model version's artifacts may have.")
	flag.StringVar(&tempDir, "temp-dir", os.TempDir(), "Folder for model downloads and layer files; needs about twice the largest model's size per build worker.")
	flag.StringVar(&watchNamespaces, "watch-namespaces", "",
		"Comma-separated namespaces whose ModelDeployments the operator handles (a namespace-scoped install: Roles in those namespaces instead of a ClusterRole). Empty: every namespace.")
	flag.BoolVar(&notifications, "notifications", true,
		"Send the notifications that ConfigMap mlflow-operator-notifications-cm in the operator's namespace configures and ModelDeployments' annotations subscribe to (Slack, Teams, signed webhooks). Without the ConfigMap nothing is sent.")
	flag.StringVar(&requestMetricsImage, "request-metrics-image", os.Getenv("MLFLOW_OPERATOR_IMAGE"),
		"Image of the request-metrics sidecar ModelDeployments add with spec.serving.requestMetrics: the operator's own image, which ships /request-metrics "+
			"(default $MLFLOW_OPERATOR_IMAGE, which the install sets to the operator's image). Empty: such ModelDeployments serve without the sidecar and say so in their RequestMetrics condition.")
	flag.StringVar(&prometheusURL, "analysis-prometheus-url", "",
		"Base URL of the Prometheus server that Canary rollouts' PromQL analyses query (e.g. http://prometheus.monitoring:9090). "+
			"ModelDeployments give queries, never servers; their results appear in the ModelDeployments' status, so point it at a server (or a label-enforcing proxy) whose metrics every tenant may read. Empty: PromQL analyses fail their step, saying so.")
	opts := zap.Options{}
	opts.BindFlags(flag.CommandLine)
	flag.Parse()
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&opts)))
	log := ctrl.Log.WithName("setup")
	applyMemoryLimit(log)

	scheme := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(v1alpha1.AddToScheme(scheme))

	var tlsOpts []func(*tls.Config)
	if !enableHTTP2 {
		tlsOpts = append(tlsOpts, func(c *tls.Config) { c.NextProtos = []string{"http/1.1"} })
	}
	metricsOpts := metricsserver.Options{BindAddress: metricsAddr, SecureServing: secureMetrics, TLSOpts: tlsOpts}
	if secureMetrics {
		metricsOpts.FilterProvider = filters.WithAuthenticationAndAuthorization
	}

	for _, ns := range controllers.SplitList(watchNamespaces) {
		if errs := validation.IsDNS1123Label(ns); len(errs) > 0 {
			log.Error(errors.New(strings.Join(errs, "; ")), "Invalid --watch-namespaces: not a namespace name", "namespace", ns)
			os.Exit(1)
		}
	}
	mgr, err := ctrl.NewManager(ctrl.GetConfigOrDie(), ctrl.Options{
		Scheme:                 scheme,
		Metrics:                metricsOpts,
		HealthProbeBindAddress: probeAddr,
		PprofBindAddress:       pprofAddr,
		LeaderElection:         leaderElect,
		LeaderElectionID:       "mlflow-operator.serving.mlflow-operator.io",
		// Only the objects the operator owns are cached.
		Cache: controllers.CacheOptions(os.Getenv("POD_NAMESPACE"), controllers.SplitList(watchNamespaces)),
	})
	if err != nil {
		log.Error(err, "Unable to create the manager")
		os.Exit(1)
	}

	grants, err := controllers.ParseRegistryGrants(registryGrants)
	if err != nil {
		log.Error(err, "Invalid --operator-registry-credentials")
		os.Exit(1)
	}
	cidrs, err := controllers.ParseCIDRs(allowedAddresses)
	if err != nil {
		log.Error(err, "Invalid --mlflow-allowed-addresses")
		os.Exit(1)
	}
	modelBytes, err := resource.ParseQuantity(maxModelBytes)
	if err != nil || modelBytes.Sign() <= 0 {
		log.Error(err, "Invalid --max-model-bytes", "value", maxModelBytes)
		os.Exit(1)
	}
	setup := controllers.Options{MaxConcurrentReconciles: concurrency, BuildWorkers: buildWorkers, TempDir: tempDir,
		ArtifactHosts: controllers.SplitList(artifactHosts), AllowedAddresses: cidrs,
		MaxModelBytes: modelBytes.Value(), MaxModelFiles: maxModelFiles, MaxModelDepth: maxModelDepth,
		BuildsPerNamespace: buildsPerNamespace, BuildTimeout: buildTimeout, RegistryGrants: grants, WebhookCertDir: webhookCertDir,
		// The downward API sets POD_NAMESPACE (config/manager); the serving
		// pods' NetworkPolicies then admit the operator's smoke tests.
		OperatorNamespace: os.Getenv("POD_NAMESPACE"), Notifications: notifications, RequestMetricsImage: requestMetricsImage,
		PrometheusURL: prometheusURL}
	if prometheusURL != "" {
		if u, err := url.Parse(prometheusURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			log.Error(err, "Invalid --analysis-prometheus-url: want an http:// or https:// URL", "value", prometheusURL)
			os.Exit(1)
		}
	}
	if requestMetricsImage == "" {
		log.Info("No --request-metrics-image (MLFLOW_OPERATOR_IMAGE is empty): ModelDeployments that ask for request metrics serve without the sidecar")
	}
	if notifications && setup.OperatorNamespace == "" {
		log.Info("POD_NAMESPACE is not set: notifications are off (their ConfigMap is read from the operator's namespace)")
	}
	setup.RegistryClouds, setup.ACRHostSuffixes = controllers.SplitList(registryClouds), controllers.SplitList(acrHostSuffixes)
	if webhookAddr != "0" && webhookAddr != "" {
		secret, err := os.ReadFile(webhookSecretFile)
		switch {
		case err == nil && len(bytes.TrimSpace(secret)) > 0:
			setup.WebhookAddr, setup.WebhookSecret = webhookAddr, bytes.TrimSpace(secret)
		case errors.Is(err, fs.ErrNotExist) || err == nil:
			log.Info("No MLflow webhook secret: the webhook receiver is off, polling alone notices changes", "file", webhookSecretFile)
		default:
			log.Error(err, "Unable to read the MLflow webhook secret", "file", webhookSecretFile)
			os.Exit(1)
		}
	}
	ctx := ctrl.SetupSignalHandler()
	if _, err := controllers.Setup(ctx, mgr, setup); err != nil {
		log.Error(err, "Unable to set up the ModelDeployment controller")
		os.Exit(1)
	}
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		log.Error(err, "Unable to set up the health check")
		os.Exit(1)
	}
	if err := mgr.AddReadyzCheck("readyz", healthz.Ping); err != nil {
		log.Error(err, "Unable to set up the ready check")
		os.Exit(1)
	}

	log.Info("Starting the manager", "version", version)
	if err := mgr.Start(ctx); err != nil {
		log.Error(err, "The manager stopped with an error")
		os.Exit(1)
	}
}
