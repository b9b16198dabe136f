package chart

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// warnings collects the API server's warnings (Pod Security admission
// answers a workload that breaks a profile with one).
type warnings struct {
	mu   sync.Mutex
	msgs []string
}

func (w *warnings) HandleWarningHeaderWithContext(_ context.Context, _ int, _ string, msg string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.msgs = append(w.msgs, msg)
}

func (w *warnings) take() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := w.msgs
	w.msgs = nil
	return out
}

var (
	envOnce   sync.Once
	env       *envtest.Environment
	envClient client.Client
	envConfig *rest.Config
	envWarn   = &warnings{}
	envErr    error
)

// apiServer starts kube-apiserver and etcd once for the package, with the
// chart's CRDs (crds/) and a stand-in ServiceMonitor CRD installed, and the
// namespaces the scenarios use: the release namespace enforces and warns on
// the restricted Pod Security profile.
func apiServer(t *testing.T) client.Client {
	t.Helper()
	requireHelm(t)
	envOnce.Do(func() {
		if os.Getenv("KUBEBUILDER_ASSETS") == "" {
			envErr = fmt.Errorf("KUBEBUILDER_ASSETS is not set: run `make test`, or export KUBEBUILDER_ASSETS=$(hack/controlplane.sh --print-dir)")
			return
		}
		env = &envtest.Environment{
			CRDDirectoryPaths:     []string{filepath.Join(chartDir, "crds"), filepath.Join("testdata", "crds")},
			ErrorIfCRDPathMissing: true,
		}
		cfg, err := env.Start()
		if err != nil {
			envErr = fmt.Errorf("starting kube-apiserver and etcd from %s: %w", os.Getenv("KUBEBUILDER_ASSETS"), err)
			return
		}
		cfg = rest.CopyConfig(cfg)
		cfg.WarningHandlerWithContext = envWarn
		envConfig = cfg
		if envClient, envErr = client.New(cfg, client.Options{}); envErr != nil {
			return
		}
		restricted := map[string]string{
			"pod-security.kubernetes.io/enforce": "restricted",
			"pod-security.kubernetes.io/warn":    "restricted",
		}
		for _, ns := range []string{releaseNS, "team-a", "team-b"} {
			obj := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns, Labels: restricted}}
			if envErr = envClient.Create(context.Background(), obj); envErr != nil {
				return
			}
		}
	})
	if envErr != nil {
		t.Fatal(envErr)
	}
	return envClient
}

func stopEnv() {
	if env != nil {
		_ = env.Stop()
	}
}

// dryRunApply server-side applies every object with dryRun=All, after
// applying the Namespaces among them for real (a dry-run Namespace does not
// exist for the objects in it). It returns the API server's warnings.
func dryRunApply(t *testing.T, c client.Client, objs []*unstructured.Unstructured) []string {
	t.Helper()
	ctx := context.Background()
	envWarn.take()
	for _, o := range objs {
		if o.GetKind() != "Namespace" {
			continue
		}
		if err := c.Apply(ctx, client.ApplyConfigurationFromUnstructured(o.DeepCopy()), client.FieldOwner("chart-test"), client.ForceOwnership); err != nil {
			t.Errorf("Namespace %s refused: %v", o.GetName(), err)
		}
	}
	for _, o := range objs {
		err := c.Apply(ctx, client.ApplyConfigurationFromUnstructured(o.DeepCopy()),
			client.FieldOwner("chart-test"), client.ForceOwnership, client.DryRunAll)
		if err != nil {
			t.Errorf("%s %s/%s refused by the API server: %v", o.GetKind(), o.GetNamespace(), o.GetName(), err)
		}
	}
	return envWarn.take()
}

// TestDryRunApply: the rendered output of every scenario (the default one
// with its CRDs) is accepted by a real kube-apiserver, and the Deployment
// passes the restricted Pod Security profile without a warning.
func TestDryRunApply(t *testing.T) {
	c := apiServer(t)
	checkPodSecurityWarns(t, c)
	for _, s := range scenarios {
		t.Run(s.name, func(t *testing.T) {
			objs := parse(t, s.render(t, s.name == "default"))
			if s.name == "default" && len(ofKind(objs, "CustomResourceDefinition")) == 0 {
				t.Fatal("--include-crds rendered no CustomResourceDefinition")
			}
			if w := dryRunApply(t, c, objs); len(w) > 0 {
				t.Errorf("the API server warned: %v", w)
			}
		})
	}
}

// checkPodSecurityWarns proves the warning check means something: a
// privileged Deployment in the release namespace gets a Pod Security
// warning on this API server.
func checkPodSecurityWarns(t *testing.T, c client.Client) {
	t.Helper()
	bad := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apps/v1", "kind": "Deployment",
		"metadata": map[string]any{"name": "privileged", "namespace": releaseNS},
		"spec": map[string]any{
			"selector": map[string]any{"matchLabels": map[string]any{"app": "x"}},
			"template": map[string]any{
				"metadata": map[string]any{"labels": map[string]any{"app": "x"}},
				"spec": map[string]any{"containers": []any{map[string]any{
					"name": "x", "image": "x", "securityContext": map[string]any{"privileged": true}}}},
			},
		},
	}}
	w := dryRunApply(t, c, []*unstructured.Unstructured{bad})
	if !slices.ContainsFunc(w, func(m string) bool { return strings.Contains(m, "PodSecurity") || strings.Contains(m, "restricted") }) {
		t.Fatalf("a privileged Deployment got no Pod Security warning (%v): the restricted-profile check would prove nothing", w)
	}
}

// TestNamespacedRulesSplit: with watchNamespaces, every generated rule for a
// namespaced resource is in the watched namespaces' Roles and every rule for
// a cluster-scoped resource in the small ClusterRole, judged by the API
// server's own discovery (not by the chart's list).
func TestNamespacedRulesSplit(t *testing.T) {
	apiServer(t)
	dc, err := discovery.NewDiscoveryClientForConfig(envConfig)
	if err != nil {
		t.Fatal(err)
	}
	_, lists, err := dc.ServerGroupsAndResources()
	if err != nil {
		t.Fatal(err)
	}
	namespaced := map[string]bool{} // group/resource
	known := map[string]bool{}
	for _, l := range lists {
		group := strings.Split(l.GroupVersion, "/")[0]
		if !strings.Contains(l.GroupVersion, "/") {
			group = ""
		}
		for _, r := range l.APIResources {
			known[group+"/"+r.Name] = true
			if r.Namespaced {
				namespaced[group+"/"+r.Name] = true
			}
		}
	}
	var wantNS, wantCluster []rbacv1.PolicyRule
	for _, r := range generatedRules(t) {
		for _, g := range r.APIGroups {
			for _, res := range r.Resources {
				key := g + "/" + strings.Split(res, "/")[0]
				if !known[key] {
					t.Errorf("config/rbac/role.yaml names %s, which the API server does not serve", key)
				}
				one := rbacv1.PolicyRule{APIGroups: []string{g}, Resources: []string{res}, Verbs: r.Verbs}
				if namespaced[key] {
					wantNS = append(wantNS, one)
				} else {
					wantCluster = append(wantCluster, one)
				}
			}
		}
		if len(r.NonResourceURLs) > 0 {
			wantCluster = append(wantCluster, r)
		}
	}
	objs := parse(t, scenario{"namespaced"}.render(t, false))
	var gotCluster []rbacv1.PolicyRule
	for _, o := range ofKind(objs, "ClusterRole") {
		if strings.HasSuffix(o.GetName(), "-manager-cluster") {
			gotCluster = append(gotCluster, convert[rbacv1.ClusterRole](t, o).Rules...)
		}
	}
	if got, want := grants(gotCluster), grants(wantCluster); !slices.Equal(got, want) {
		t.Errorf("cluster-wide manager rules %v, want %v", got, want)
	}
	for _, o := range ofKind(objs, "Role") {
		r := convert[rbacv1.Role](t, o)
		if r.Namespace == releaseNS {
			continue // leader election
		}
		if got, want := grants(r.Rules), grants(wantNS); !slices.Equal(got, want) {
			t.Errorf("Role %s/%s grants %v, want %v", r.Namespace, r.Name, got, want)
		}
	}
}
