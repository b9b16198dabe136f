package chart

import (
	"encoding/base64"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"

	"github.com/mlflow-operator/mlflow-operator/test/harness/procs"
)

func convert[T any](t *testing.T, u *unstructured.Unstructured) *T {
	t.Helper()
	out := new(T)
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, out); err != nil {
		t.Fatalf("%s %s: %v", u.GetKind(), u.GetName(), err)
	}
	return out
}

func deployment(t *testing.T, objs []*unstructured.Unstructured) *appsv1.Deployment {
	t.Helper()
	return convert[appsv1.Deployment](t, one(t, objs, "Deployment"))
}

// TestRestrictedSecurityContext: in every scenario, every container runs
// non-root, read-only, without privilege escalation, without capabilities,
// under seccomp RuntimeDefault, with /tmp a size-limited emptyDir.
func TestRestrictedSecurityContext(t *testing.T) {
	requireHelm(t)
	for _, s := range scenarios {
		d := deployment(t, parse(t, s.render(t, false)))
		pod := d.Spec.Template.Spec
		if pod.SecurityContext == nil || !ptr.Deref(pod.SecurityContext.RunAsNonRoot, false) ||
			pod.SecurityContext.SeccompProfile == nil || pod.SecurityContext.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
			t.Errorf("%s: pod securityContext not restricted: %+v", s.name, pod.SecurityContext)
		}
		if ptr.Deref(pod.SecurityContext.RunAsUser, 0) == 0 {
			t.Errorf("%s: pod runs as uid 0", s.name)
		}
		for _, c := range append(slices.Clone(pod.InitContainers), pod.Containers...) {
			sc := c.SecurityContext
			if sc == nil {
				t.Errorf("%s: container %s has no securityContext", s.name, c.Name)
				continue
			}
			if ptr.Deref(sc.AllowPrivilegeEscalation, true) || !ptr.Deref(sc.ReadOnlyRootFilesystem, false) ||
				ptr.Deref(sc.Privileged, false) || sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") ||
				len(sc.Capabilities.Add) > 0 || ptr.Deref(sc.RunAsUser, 65532) == 0 {
				t.Errorf("%s: container %s securityContext not restricted: %+v", s.name, c.Name, sc)
			}
			if c.LivenessProbe == nil || c.ReadinessProbe == nil {
				t.Errorf("%s: container %s lacks probes", s.name, c.Name)
			}
		}
		tmp := false
		for _, v := range pod.Volumes {
			if v.Name == "tmp" && v.EmptyDir != nil && v.EmptyDir.SizeLimit != nil && !v.EmptyDir.SizeLimit.IsZero() {
				tmp = true
			}
		}
		if !tmp {
			t.Errorf("%s: no size-limited emptyDir for /tmp", s.name)
		}
	}
}

// TestNoSecretValueInDeployment: a signing secret given as a value goes into
// the chart's Secret only, never into the Deployment (args, env,
// annotations), neither plain nor base64.
func TestNoSecretValueInDeployment(t *testing.T) {
	requireHelm(t)
	const value = "do-not-leak-this-signing-secret-7f3a9c" // testdata/values/webhook-created-secret.yaml
	objs := parse(t, scenario{"webhook-created-secret"}.render(t, false))
	secret := convert[corev1.Secret](t, one(t, objs, "Secret"))
	if string(secret.Data["secret"]) != value {
		t.Fatalf("the chart's Secret holds %q under \"secret\", want the value", secret.Data["secret"])
	}
	raw, err := yaml.Marshal(one(t, objs, "Deployment").Object)
	if err != nil {
		t.Fatal(err)
	}
	for _, leak := range []string{value, base64.StdEncoding.EncodeToString([]byte(value))} {
		if strings.Contains(string(raw), leak) {
			t.Errorf("the Deployment contains the webhook secret (%q)", leak)
		}
	}
	d := deployment(t, objs)
	found := false
	for _, v := range d.Spec.Template.Spec.Volumes {
		if v.Secret != nil && v.Secret.SecretName == secret.Name {
			found = true
		}
	}
	if !found {
		t.Errorf("the Deployment does not mount Secret %s", secret.Name)
	}
	// Nothing else leaks a Secret either: no object but the Secret holds it.
	for _, o := range objs {
		if o.GetKind() == "Secret" {
			continue
		}
		b, _ := yaml.Marshal(o.Object)
		if strings.Contains(string(b), value) {
			t.Errorf("%s %s contains the webhook secret", o.GetKind(), o.GetName())
		}
	}
}

// TestWebhookServiceSelectsEveryReplica: the webhook Service selects exactly
// the Deployment's pods, by labels every replica carries (nothing about the
// leader), in both webhook scenarios.
func TestWebhookServiceSelectsEveryReplica(t *testing.T) {
	requireHelm(t)
	for _, name := range []string{"webhook-existing-secret", "webhook-created-secret"} {
		objs := parse(t, scenario{name}.render(t, false))
		d := deployment(t, objs)
		var svc *corev1.Service
		for _, o := range ofKind(objs, "Service") {
			if strings.HasSuffix(o.GetName(), "-webhooks") {
				svc = convert[corev1.Service](t, o)
			}
		}
		if svc == nil {
			t.Fatalf("%s: no webhook Service", name)
		}
		for k, v := range svc.Spec.Selector {
			if strings.Contains(strings.ToLower(k+"="+v), "leader") {
				t.Errorf("%s: webhook Service selects %s=%s: a label about the leader", name, k, v)
			}
			if d.Spec.Template.Labels[k] != v {
				t.Errorf("%s: webhook Service selects %s=%s, which the pods do not carry", name, k, v)
			}
		}
		if !mapsEqual(svc.Spec.Selector, d.Spec.Selector.MatchLabels) {
			t.Errorf("%s: webhook Service selector %v is not the Deployment's %v", name, svc.Spec.Selector, d.Spec.Selector.MatchLabels)
		}
		if port := svc.Spec.Ports[0].TargetPort.String(); port != "webhooks" {
			t.Errorf("%s: webhook Service targets port %s", name, port)
		}
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// configRules reads the rules of a role in config/rbac.
func configRules(t *testing.T, file string) []rbacv1.PolicyRule {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(procs.RepoRoot(), "config", "rbac", file))
	if err != nil {
		t.Fatal(err)
	}
	role := &rbacv1.ClusterRole{}
	if err := yaml.Unmarshal(data, role); err != nil {
		t.Fatalf("config/rbac/%s: %v", file, err)
	}
	if len(role.Rules) == 0 {
		t.Fatalf("config/rbac/%s has no rules", file)
	}
	return role.Rules
}

// generatedRules reads the rules of config/rbac/role.yaml (controller-gen's).
func generatedRules(t *testing.T) []rbacv1.PolicyRule {
	t.Helper()
	return configRules(t, "role.yaml")
}

// TestOwnNamespaceRules: in every scenario the Role in the release
// namespace holds exactly config/rbac/leader_election_role.yaml's rules
// (leader election, the webhook relay's ConfigMap) and is bound to the
// operator's ServiceAccount.
func TestOwnNamespaceRules(t *testing.T) {
	requireHelm(t)
	want := grants(configRules(t, "leader_election_role.yaml"))
	for _, s := range scenarios {
		objs := parse(t, s.render(t, false))
		sa := deployment(t, objs).Spec.Template.Spec.ServiceAccountName
		var role *rbacv1.Role
		for _, o := range ofKind(objs, "Role") {
			if o.GetNamespace() == releaseNS {
				role = convert[rbacv1.Role](t, o)
			}
		}
		if role == nil {
			t.Errorf("%s: no Role in %s", s.name, releaseNS)
			continue
		}
		if got := grants(role.Rules); !slices.Equal(got, want) {
			t.Errorf("%s: Role %s grants\n%v\nwant (config/rbac/leader_election_role.yaml)\n%v", s.name, role.Name, got, want)
		}
		bound := false
		for _, o := range ofKind(objs, "RoleBinding") {
			b := convert[rbacv1.RoleBinding](t, o)
			if b.Namespace == releaseNS && b.RoleRef.Name == role.Name && len(b.Subjects) == 1 && b.Subjects[0].Name == sa {
				bound = true
			}
		}
		if !bound {
			t.Errorf("%s: Role %s is not bound to %s", s.name, role.Name, sa)
		}
	}
}

// grants flattens rules into "group/resource verb" strings (with
// "[name,...]" after the resource when the rule names objects).
func grants(rules []rbacv1.PolicyRule) []string {
	var out []string
	for _, r := range rules {
		names := ""
		if len(r.ResourceNames) > 0 {
			names = "[" + strings.Join(slices.Sorted(slices.Values(r.ResourceNames)), ",") + "]"
		}
		for _, g := range r.APIGroups {
			for _, res := range r.Resources {
				for _, v := range r.Verbs {
					out = append(out, g+"/"+res+names+" "+v)
				}
			}
		}
		for _, u := range r.NonResourceURLs {
			for _, v := range r.Verbs {
				out = append(out, "url:"+u+" "+v)
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// TestManagerRulesAreGenerated: without watchNamespaces the manager's
// ClusterRole holds exactly the rules of config/rbac/role.yaml.
func TestManagerRulesAreGenerated(t *testing.T) {
	requireHelm(t)
	objs := parse(t, scenario{"default"}.render(t, false))
	var manager *rbacv1.ClusterRole
	for _, o := range ofKind(objs, "ClusterRole") {
		if strings.HasSuffix(o.GetName(), "-manager") {
			manager = convert[rbacv1.ClusterRole](t, o)
		}
	}
	if manager == nil {
		t.Fatal("no manager ClusterRole")
	}
	if got, want := grants(manager.Rules), grants(generatedRules(t)); !slices.Equal(got, want) {
		t.Errorf("manager ClusterRole grants\n%v\nwant (config/rbac/role.yaml)\n%v", got, want)
	}
	if len(ofKind(objs, "Role")) != 1 { // the operator's own namespace only
		t.Errorf("%d Roles, want the leader-election Role only", len(ofKind(objs, "Role")))
	}
	if args := strings.Join(deployment(t, objs).Spec.Template.Spec.Containers[0].Args, " "); strings.Contains(args, "--watch-namespaces") {
		t.Errorf("default args pass --watch-namespaces: %s", args)
	}
}

// TestNamespacedInstall: with watchNamespaces [team-a, team-b] the flag is
// passed, each namespace gets a Role and RoleBinding with the generated
// rules, and nothing cluster-wide grants Secrets or the namespaced
// resources.
func TestNamespacedInstall(t *testing.T) {
	requireHelm(t)
	objs := parse(t, scenario{"namespaced"}.render(t, false))
	d := deployment(t, objs)
	if args := d.Spec.Template.Spec.Containers[0].Args; !slices.Contains(args, "--watch-namespaces=team-a,team-b") {
		t.Errorf("args lack --watch-namespaces=team-a,team-b: %v", args)
	}
	clusterRoles := map[string]*rbacv1.ClusterRole{}
	for _, o := range ofKind(objs, "ClusterRole") {
		clusterRoles[o.GetName()] = convert[rbacv1.ClusterRole](t, o)
	}
	for _, o := range ofKind(objs, "ClusterRoleBinding") {
		b := convert[rbacv1.ClusterRoleBinding](t, o)
		role := clusterRoles[b.RoleRef.Name]
		if role == nil {
			t.Errorf("ClusterRoleBinding %s binds %s, which the chart does not create", b.Name, b.RoleRef.Name)
			continue
		}
		for _, g := range grants(role.Rules) {
			if strings.HasPrefix(g, "/secrets ") || strings.HasPrefix(g, "*/") {
				t.Errorf("ClusterRoleBinding %s grants %s cluster-wide", b.Name, g)
			}
		}
		if strings.HasSuffix(role.Name, "-manager") {
			t.Errorf("the cluster-wide manager ClusterRole is bound with watchNamespaces")
		}
	}
	want := grants(generatedRules(t))
	roles := map[string]*rbacv1.Role{}
	for _, o := range ofKind(objs, "Role") {
		r := convert[rbacv1.Role](t, o)
		roles[r.Namespace+"/"+r.Name] = r
	}
	for _, ns := range []string{"team-a", "team-b"} {
		var role *rbacv1.Role
		for key, r := range roles {
			if strings.HasPrefix(key, ns+"/") {
				role = r
			}
		}
		if role == nil {
			t.Errorf("no Role in %s", ns)
			continue
		}
		// Every generated rule names a namespaced resource today, so the
		// Role holds all of them (TestNamespacedRulesSplit checks the split
		// against the API server's discovery).
		if got := grants(role.Rules); !slices.Equal(got, want) {
			t.Errorf("Role in %s grants\n%v\nwant\n%v", ns, got, want)
		}
		bound := false
		for _, o := range ofKind(objs, "RoleBinding") {
			b := convert[rbacv1.RoleBinding](t, o)
			if b.Namespace == ns && b.RoleRef.Kind == "Role" && b.RoleRef.Name == role.Name &&
				len(b.Subjects) == 1 && b.Subjects[0].Name == d.Spec.Template.Spec.ServiceAccountName && b.Subjects[0].Namespace == releaseNS {
				bound = true
			}
		}
		if !bound {
			t.Errorf("no RoleBinding in %s binds %s to the operator's ServiceAccount", ns, role.Name)
		}
	}
}

var flagDef = regexp.MustCompile(`flag\.[A-Za-z0-9]+Var\([^,]+,\s*"([a-z0-9-]+)"`)

// TestFlagsExist: every flag the chart passes (extraArgs aside) is defined
// in cmd/main.go, so a renamed flag cannot crash-loop the operator.
func TestFlagsExist(t *testing.T) {
	requireHelm(t)
	src, err := os.ReadFile(filepath.Join(procs.RepoRoot(), "cmd", "main.go"))
	if err != nil {
		t.Fatal(err)
	}
	defined := map[string]bool{}
	for _, m := range flagDef.FindAllStringSubmatch(string(src), -1) {
		defined[m[1]] = true
	}
	if len(defined) < 10 {
		t.Fatalf("found only %d flag definitions in cmd/main.go: %v", len(defined), defined)
	}
	for _, s := range scenarios {
		d := deployment(t, parse(t, s.render(t, false)))
		for _, arg := range d.Spec.Template.Spec.Containers[0].Args {
			name, _, _ := strings.Cut(strings.TrimPrefix(arg, "--"), "=")
			switch {
			case defined[name], strings.HasPrefix(name, "zap-"), s.name == "replicas-placement" && name == "max-concurrent-reconciles":
			default:
				t.Errorf("%s: the chart passes %s, which cmd/main.go does not define", s.name, arg)
			}
		}
	}
}

// TestMetricsSettings: metrics off means no endpoint, Service, auth role or
// NetworkPolicy opening; insecure metrics need no TokenReviews and are
// scraped over http.
func TestMetricsSettings(t *testing.T) {
	requireHelm(t)
	objs := parse(t, renderChart(t, chartDir, false, "--set", "metrics.enabled=false"))
	args := deployment(t, objs).Spec.Template.Spec.Containers[0].Args
	if !slices.Contains(args, "--metrics-bind-address=0") {
		t.Errorf("metrics off: args %v", args)
	}
	if n := len(ofKind(objs, "Service")); n != 0 {
		t.Errorf("metrics and webhooks off: %d Services", n)
	}
	for _, o := range ofKind(objs, "ClusterRole") {
		if strings.Contains(o.GetName(), "metrics") {
			t.Errorf("metrics off: ClusterRole %s", o.GetName())
		}
	}
	np := convert[networkingv1.NetworkPolicy](t, one(t, objs, "NetworkPolicy"))
	if len(np.Spec.Ingress) != 0 || !slices.Contains(np.Spec.PolicyTypes, networkingv1.PolicyTypeIngress) {
		t.Errorf("metrics and webhooks off: the NetworkPolicy should admit nothing: %+v", np.Spec)
	}

	objs = parse(t, renderChart(t, chartDir, false, "--set", "metrics.secure=false,metrics.serviceMonitor.enabled=true"))
	args = deployment(t, objs).Spec.Template.Spec.Containers[0].Args
	if !slices.Contains(args, "--metrics-secure=false") {
		t.Errorf("insecure metrics: args %v", args)
	}
	for _, o := range ofKind(objs, "ClusterRole") {
		if strings.HasSuffix(o.GetName(), "-metrics-auth") {
			t.Errorf("insecure metrics: ClusterRole %s", o.GetName())
		}
	}
	sm := one(t, objs, "ServiceMonitor")
	endpoints, _, _ := unstructured.NestedSlice(sm.Object, "spec", "endpoints")
	if len(endpoints) != 1 || endpoints[0].(map[string]any)["scheme"] != "http" || endpoints[0].(map[string]any)["bearerTokenFile"] != nil {
		t.Errorf("insecure metrics: ServiceMonitor endpoints %v", endpoints)
	}
}
