package resources

import (
	"reflect"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	v1alpha1 "github.com/mlflow-operator/mlflow-operator/api/v1alpha1"
)

const testImage = "registry.example.com/models/iris@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func newMD(mutate ...func(*v1alpha1.ModelDeployment)) *v1alpha1.ModelDeployment {
	md := &v1alpha1.ModelDeployment{
		ObjectMeta: metav1.ObjectMeta{Name: "iris", Namespace: "ml", UID: types.UID("uid-1")},
		Spec: v1alpha1.ModelDeploymentSpec{
			Model:  v1alpha1.ModelReference{Name: "iris", Alias: "champion"},
			MLflow: v1alpha1.MLflowConnection{TrackingURI: "http://mlflow:5000"},
			Image:  v1alpha1.ImageSpec{Repository: "registry.example.com/models/iris", BaseImage: "registry.example.com/base:1"},
		},
	}
	for _, m := range mutate {
		m(md)
	}
	return md
}

func assertOwned(t *testing.T, meta metav1.ObjectMeta, md *v1alpha1.ModelDeployment) {
	t.Helper()
	if meta.Name != md.Name || meta.Namespace != md.Namespace {
		t.Errorf("name %s/%s, want %s/%s", meta.Namespace, meta.Name, md.Namespace, md.Name)
	}
	if len(meta.OwnerReferences) != 1 {
		t.Fatalf("owner references = %v, want one", meta.OwnerReferences)
	}
	ref := meta.OwnerReferences[0]
	if ref.UID != md.UID || ref.Kind != "ModelDeployment" || ref.APIVersion != "serving.mlflow-operator.io/v1alpha1" ||
		!ptr.Deref(ref.Controller, false) || !ptr.Deref(ref.BlockOwnerDeletion, false) {
		t.Errorf("owner reference %+v is not a controller reference to the ModelDeployment", ref)
	}
	if meta.Labels[v1alpha1.LabelName] != md.Name || meta.Labels["app.kubernetes.io/managed-by"] != ManagedBy {
		t.Errorf("labels %v lack the operator's labels", meta.Labels)
	}
}

func TestDeployment(t *testing.T) {
	w := Workload{Image: testImage, ModelVersion: "7"}
	tests := []struct {
		name  string
		md    *v1alpha1.ModelDeployment
		check func(t *testing.T, md *v1alpha1.ModelDeployment)
	}{
		{
			name: "the whole new set at once",
			md: func() *v1alpha1.ModelDeployment {
				md := newMD()
				md.Spec.Rollout.MaxSurge = ptr.To(intstr.FromString("100%"))
				return md
			}(),
			check: func(t *testing.T, md *v1alpha1.ModelDeployment) {
				ru := Deployment(md, w).Spec.Strategy.RollingUpdate
				if ru.MaxSurge.String() != "100%" || ru.MaxUnavailable.IntValue() != 0 {
					t.Errorf("rolling update %+v, want maxSurge 100%% and maxUnavailable 0", ru)
				}
			},
		},
		{
			name: "production defaults",
			md:   newMD(),
			check: func(t *testing.T, md *v1alpha1.ModelDeployment) {
				d := Deployment(md, w)
				assertOwned(t, d.ObjectMeta, md)
				if d.Kind != "Deployment" || d.APIVersion != "apps/v1" {
					t.Errorf("type meta %v missing: server-side apply needs it", d.TypeMeta)
				}
				if got := ptr.Deref(d.Spec.Replicas, 0); got != 3 {
					t.Errorf("replicas = %d, want 3", got)
				}
				ru := d.Spec.Strategy.RollingUpdate
				if ru == nil || ru.MaxUnavailable.IntValue() != 0 || d.Spec.Strategy.Type != "RollingUpdate" || ru.MaxSurge.String() != "25%" {
					t.Errorf("strategy %+v, want rolling update with maxUnavailable 0 and maxSurge 25%%", d.Spec.Strategy)
				}
				if got := ptr.Deref(d.Spec.ProgressDeadlineSeconds, 0); got != 600 {
					t.Errorf("progressDeadlineSeconds = %d, want 600", got)
				}
				if !reflect.DeepEqual(d.Spec.Selector.MatchLabels, SelectorLabels(md)) {
					t.Errorf("selector %v", d.Spec.Selector.MatchLabels)
				}
				pod := d.Spec.Template
				for k, v := range d.Spec.Selector.MatchLabels {
					if pod.Labels[k] != v {
						t.Errorf("pod labels %v do not match selector %v", pod.Labels, d.Spec.Selector.MatchLabels)
					}
				}
				if pod.Labels[v1alpha1.LabelModelVersion] != "7" {
					t.Errorf("pod labels %v lack the model version", pod.Labels)
				}
				if got := ptr.Deref(pod.Spec.TerminationGracePeriodSeconds, 0); got != 30 {
					t.Errorf("terminationGracePeriodSeconds = %d, want 30", got)
				}
				if len(pod.Spec.TopologySpreadConstraints) == 0 && pod.Spec.Affinity == nil {
					t.Error("pods are not spread across nodes")
				}
				if pod.Spec.TopologySpreadConstraints[0].TopologyKey != corev1.LabelHostname {
					t.Errorf("first spread key %q, want %q", pod.Spec.TopologySpreadConstraints[0].TopologyKey, corev1.LabelHostname)
				}
				if ptr.Deref(pod.Spec.AutomountServiceAccountToken, true) {
					t.Error("service account token is mounted")
				}
				c := pod.Spec.Containers[0]
				if c.Image != testImage {
					t.Errorf("image %q", c.Image)
				}
				if c.Ports[0].ContainerPort != 8080 || c.Ports[0].Name != PortName {
					t.Errorf("ports %v", c.Ports)
				}
				for name, p := range map[string]*corev1.Probe{"readiness": c.ReadinessProbe, "liveness": c.LivenessProbe, "startup": c.StartupProbe} {
					if p == nil || p.HTTPGet == nil || p.HTTPGet.Path != "/ping" || p.HTTPGet.Port != intstr.FromString(PortName) {
						t.Errorf("%s probe %+v, want GET /ping on the serving port", name, p)
					}
				}
				if c.Lifecycle == nil || c.Lifecycle.PreStop == nil || c.Lifecycle.PreStop.Sleep == nil {
					t.Error("no preStop sleep: terminating pods would drop in-flight requests")
				}
				cpu := c.Resources.Requests[corev1.ResourceCPU]
				if cpu.Cmp(resource.MustParse("250m")) != 0 {
					t.Errorf("default cpu request %s, want 250m (the HPA needs a request)", cpu.String())
				}
				if len(c.Command) != 0 || len(c.Args) != 0 {
					t.Errorf("command %v args %v, want the image's own", c.Command, c.Args)
				}
			},
		},
		{
			name: "restricted pod security",
			md:   newMD(),
			check: func(t *testing.T, md *v1alpha1.ModelDeployment) {
				pod := Deployment(md, w).Spec.Template.Spec
				psc := pod.SecurityContext
				if !ptr.Deref(psc.RunAsNonRoot, false) || psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
					t.Errorf("pod security context %+v is not restricted", psc)
				}
				sc := pod.Containers[0].SecurityContext
				if !ptr.Deref(sc.RunAsNonRoot, false) || !ptr.Deref(sc.ReadOnlyRootFilesystem, false) ||
					ptr.Deref(sc.AllowPrivilegeEscalation, true) || ptr.Deref(sc.Privileged, true) ||
					!reflect.DeepEqual(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) != 0 ||
					sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
					t.Errorf("container security context %+v is not restricted", sc)
				}
				if ptr.Deref(sc.RunAsUser, 0) == 0 {
					t.Error("runs as root")
				}
				mounted := false
				for _, m := range pod.Containers[0].VolumeMounts {
					if m.MountPath == "/tmp" {
						for _, v := range pod.Volumes {
							mounted = mounted || (v.Name == m.Name && v.EmptyDir != nil)
						}
					}
				}
				if !mounted {
					t.Error("no writable emptyDir at /tmp with a read-only root filesystem")
				}
			},
		},
		{
			name: "serving spec is honoured",
			md: newMD(func(md *v1alpha1.ModelDeployment) {
				md.Spec.Serving = v1alpha1.ServingSpec{
					Port:               9000,
					Command:            []string{"serve"},
					Args:               []string{"--workers", "2"},
					Env:                []corev1.EnvVar{{Name: "A", Value: "b"}},
					PodLabels:          map[string]string{"team": "ml", v1alpha1.LabelRole: "hijack"},
					PodAnnotations:     map[string]string{"prometheus.io/scrape": "true"},
					NodeSelector:       map[string]string{"pool": "cpu"},
					Tolerations:        []corev1.Toleration{{Key: "dedicated", Operator: corev1.TolerationOpExists}},
					ImagePullSecrets:   []corev1.LocalObjectReference{{Name: "pull"}},
					ServiceAccountName: "model-sa",
					PriorityClassName:  "high",
					Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
						corev1.ResourceCPU: resource.MustParse("2"), corev1.ResourceMemory: resource.MustParse("4Gi"),
					}},
				}
				md.Spec.Rollout.ProgressDeadline = &metav1.Duration{Duration: 3 * time.Minute}
			}),
			check: func(t *testing.T, md *v1alpha1.ModelDeployment) {
				d := Deployment(md, w)
				pod := d.Spec.Template
				c := pod.Spec.Containers[0]
				if c.Ports[0].ContainerPort != 9000 {
					t.Errorf("port %d", c.Ports[0].ContainerPort)
				}
				if !reflect.DeepEqual(c.Command, []string{"serve"}) || !reflect.DeepEqual(c.Args, []string{"--workers", "2"}) {
					t.Errorf("command %v args %v", c.Command, c.Args)
				}
				if len(c.Env) != 1 || c.Env[0].Name != "A" {
					t.Errorf("env %v", c.Env)
				}
				if pod.Labels["team"] != "ml" {
					t.Errorf("pod label missing: %v", pod.Labels)
				}
				if pod.Labels[v1alpha1.LabelRole] != v1alpha1.RoleProduction {
					t.Errorf("a user pod label overrode the selector: %v", pod.Labels)
				}
				if pod.Annotations["prometheus.io/scrape"] != "true" || pod.Spec.NodeSelector["pool"] != "cpu" ||
					len(pod.Spec.Tolerations) != 1 || pod.Spec.ImagePullSecrets[0].Name != "pull" ||
					pod.Spec.ServiceAccountName != "model-sa" || pod.Spec.PriorityClassName != "high" {
					t.Errorf("pod spec does not carry the serving settings: %+v", pod.Spec)
				}
				cpu := c.Resources.Requests[corev1.ResourceCPU]
				if cpu.String() != "2" {
					t.Errorf("cpu request %s, want the spec's 2", cpu.String())
				}
				if _, ok := c.Resources.Limits[corev1.ResourceMemory]; ok {
					t.Error("a memory limit was added to resources the user set")
				}
				if got := ptr.Deref(d.Spec.ProgressDeadlineSeconds, 0); got != 180 {
					t.Errorf("progressDeadlineSeconds = %d, want 180", got)
				}
			},
		},
		{
			name: "memory request above the default limit raises the limit",
			md: newMD(func(md *v1alpha1.ModelDeployment) {
				md.Spec.Serving.Resources.Requests = corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("3Gi")}
			}),
			check: func(t *testing.T, md *v1alpha1.ModelDeployment) {
				res := Deployment(md, w).Spec.Template.Spec.Containers[0].Resources
				limit := res.Limits[corev1.ResourceMemory]
				if limit.Cmp(resource.MustParse("3Gi")) != 0 {
					t.Errorf("memory limit %s below the 3Gi request", limit.String())
				}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.check(t, tc.md) })
	}
}

func TestDeploymentDoesNotMutateInput(t *testing.T) {
	md := newMD(func(md *v1alpha1.ModelDeployment) {
		md.Spec.Serving.Resources.Requests = corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("1Gi")}
	})
	before := md.DeepCopy()
	_ = Deployment(md, Workload{Image: testImage, ModelVersion: "1"})
	if !reflect.DeepEqual(before, md) {
		t.Error("Deployment changed the ModelDeployment it was given")
	}
}

func TestService(t *testing.T) {
	for _, port := range []int32{0, 9001} {
		md := newMD(func(md *v1alpha1.ModelDeployment) { md.Spec.Serving.Port = port })
		svc := Service(md)
		assertOwned(t, svc.ObjectMeta, md)
		want := port
		if want == 0 {
			want = 8080
		}
		if svc.Spec.Type != corev1.ServiceTypeClusterIP || len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].Port != want ||
			svc.Spec.Ports[0].TargetPort != intstr.FromString(PortName) {
			t.Errorf("port %d: service spec %+v", port, svc.Spec)
		}
		if !reflect.DeepEqual(svc.Spec.Selector, SelectorLabels(md)) {
			t.Errorf("selector %v selects more than the production pods", svc.Spec.Selector)
		}
		if got, wantURL := Endpoint(md), "http://iris.ml.svc:"+itoa(want); got != wantURL {
			t.Errorf("endpoint %s, want %s", got, wantURL)
		}
	}
}

func TestHorizontalPodAutoscaler(t *testing.T) {
	tests := []struct {
		name     string
		scaling  v1alpha1.ScalingSpec
		min, max int32
		cpu      int32
		memory   *int32
	}{
		{name: "defaults", min: 3, max: 10, cpu: 70},
		{name: "custom", scaling: v1alpha1.ScalingSpec{MinReplicas: ptr.To(int32(2)), MaxReplicas: ptr.To(int32(4)), TargetCPUUtilization: ptr.To(int32(50))}, min: 2, max: 4, cpu: 50},
		{name: "memory target", scaling: v1alpha1.ScalingSpec{TargetMemoryUtilization: ptr.To(int32(80))}, min: 3, max: 10, cpu: 70, memory: ptr.To(int32(80))},
		{name: "max below min is raised", scaling: v1alpha1.ScalingSpec{MinReplicas: ptr.To(int32(12))}, min: 12, max: 12, cpu: 70},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			md := newMD(func(md *v1alpha1.ModelDeployment) { md.Spec.Scaling = tc.scaling })
			h := HorizontalPodAutoscaler(md)
			assertOwned(t, h.ObjectMeta, md)
			if h.APIVersion != "autoscaling/v2" {
				t.Errorf("apiVersion %s", h.APIVersion)
			}
			ref := h.Spec.ScaleTargetRef
			if ref.Kind != "Deployment" || ref.Name != md.Name || ref.APIVersion != "apps/v1" {
				t.Errorf("scale target %+v", ref)
			}
			if ptr.Deref(h.Spec.MinReplicas, 0) != tc.min || h.Spec.MaxReplicas != tc.max {
				t.Errorf("replicas %d..%d, want %d..%d", ptr.Deref(h.Spec.MinReplicas, 0), h.Spec.MaxReplicas, tc.min, tc.max)
			}
			got := map[corev1.ResourceName]int32{}
			for _, m := range h.Spec.Metrics {
				got[m.Resource.Name] = ptr.Deref(m.Resource.Target.AverageUtilization, 0)
			}
			want := map[corev1.ResourceName]int32{corev1.ResourceCPU: tc.cpu}
			if tc.memory != nil {
				want[corev1.ResourceMemory] = *tc.memory
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("metrics %v, want %v", got, want)
			}
		})
	}
}

func TestPodDisruptionBudget(t *testing.T) {
	tests := []struct {
		name                         string
		minReplicas                  int32
		disruption                   v1alpha1.DisruptionSpec
		wantMinAvail, wantMaxUnavail *intstr.IntOrString
	}{
		{name: "default keeps 2 available", minReplicas: 3, wantMinAvail: ptr.To(intstr.FromInt32(2))},
		{name: "one replica never blocks eviction", minReplicas: 1, wantMaxUnavail: ptr.To(intstr.FromInt32(1))},
		{name: "two replicas never block eviction", minReplicas: 2, wantMaxUnavail: ptr.To(intstr.FromInt32(1))},
		{name: "explicit minAvailable", minReplicas: 5, disruption: v1alpha1.DisruptionSpec{MinAvailable: ptr.To(intstr.FromString("60%"))}, wantMinAvail: ptr.To(intstr.FromString("60%"))},
		{name: "explicit maxUnavailable", minReplicas: 3, disruption: v1alpha1.DisruptionSpec{MaxUnavailable: ptr.To(intstr.FromInt32(2))}, wantMaxUnavail: ptr.To(intstr.FromInt32(2))},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			md := newMD(func(md *v1alpha1.ModelDeployment) {
				md.Spec.Scaling.MinReplicas = ptr.To(tc.minReplicas)
				md.Spec.Disruption = tc.disruption
			})
			p := PodDisruptionBudget(md)
			assertOwned(t, p.ObjectMeta, md)
			if !reflect.DeepEqual(p.Spec.MinAvailable, tc.wantMinAvail) || !reflect.DeepEqual(p.Spec.MaxUnavailable, tc.wantMaxUnavail) {
				t.Errorf("minAvailable %v maxUnavailable %v, want %v %v", p.Spec.MinAvailable, p.Spec.MaxUnavailable, tc.wantMinAvail, tc.wantMaxUnavail)
			}
			if !reflect.DeepEqual(p.Spec.Selector.MatchLabels, SelectorLabels(md)) {
				t.Errorf("selector %v", p.Spec.Selector.MatchLabels)
			}
			if ptr.Deref(p.Spec.UnhealthyPodEvictionPolicy, "") != policyv1.AlwaysAllow {
				t.Error("unhealthy pods may block evictions")
			}
		})
	}
}

func TestNetworkPolicy(t *testing.T) {
	operator := networkingv1.NetworkPolicyPeer{NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/metadata.name": "mlflow-operator-system"}}}
	gateway := networkingv1.NetworkPolicyPeer{NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"role": "gateway"}}}
	tests := []struct {
		name      string
		allowFrom []networkingv1.NetworkPolicyPeer
		extra     []networkingv1.NetworkPolicyPeer
		want      []networkingv1.NetworkPolicyPeer
	}{
		{name: "same namespace by default", want: []networkingv1.NetworkPolicyPeer{{PodSelector: &metav1.LabelSelector{}}}},
		{name: "configured peers", allowFrom: []networkingv1.NetworkPolicyPeer{gateway}, want: []networkingv1.NetworkPolicyPeer{gateway}},
		{name: "operator peer added", allowFrom: []networkingv1.NetworkPolicyPeer{gateway}, extra: []networkingv1.NetworkPolicyPeer{operator}, want: []networkingv1.NetworkPolicyPeer{gateway, operator}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			md := newMD(func(md *v1alpha1.ModelDeployment) {
				md.Spec.NetworkPolicy.AllowFrom = tc.allowFrom
				md.Spec.Serving.Port = 8500
			})
			np := NetworkPolicy(md, tc.extra...)
			assertOwned(t, np.ObjectMeta, md)
			if !reflect.DeepEqual(np.Spec.PolicyTypes, []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}) {
				t.Errorf("policy types %v", np.Spec.PolicyTypes)
			}
			if np.Spec.PodSelector.MatchLabels[v1alpha1.LabelName] != md.Name || len(np.Spec.PodSelector.MatchLabels) != 1 {
				t.Errorf("pod selector %v", np.Spec.PodSelector)
			}
			// The serving port by number and by the name the Service targets.
			if len(np.Spec.Ingress) != 1 || len(np.Spec.Ingress[0].Ports) != 2 || np.Spec.Ingress[0].Ports[0].Port.IntValue() != 8500 ||
				np.Spec.Ingress[0].Ports[1].Port.String() != PortName {
				t.Fatalf("ingress %+v admits more than the serving port", np.Spec.Ingress)
			}
			if !reflect.DeepEqual(np.Spec.Ingress[0].From, tc.want) {
				t.Errorf("from %+v, want %+v", np.Spec.Ingress[0].From, tc.want)
			}
			if len(tc.allowFrom) > 0 && len(md.Spec.NetworkPolicy.AllowFrom) != len(tc.allowFrom) {
				t.Error("the spec's allowFrom was changed")
			}
		})
	}
}

func TestCandidateDeployment(t *testing.T) {
	md := newMD(func(md *v1alpha1.ModelDeployment) {
		md.Spec.Serving.Env = []corev1.EnvVar{{Name: "A", Value: "b"}}
		md.Spec.Scaling.MinReplicas = ptr.To(int32(5))
	})
	w := Workload{Image: testImage, ModelVersion: "8"}
	c := CandidateDeployment(md, w)
	prod := Deployment(md, w)
	owned := *c.ObjectMeta.DeepCopy()
	owned.Name = md.Name // checked below
	assertOwned(t, owned, md)
	if c.Name != "iris-candidate" || ptr.Deref(c.Spec.Replicas, 0) != 1 {
		t.Errorf("name %s replicas %d, want iris-candidate with 1", c.Name, ptr.Deref(c.Spec.Replicas, 0))
	}
	// The production Service must not select the candidate.
	svc := Service(md)
	matches := true
	for k, v := range svc.Spec.Selector {
		if c.Spec.Template.Labels[k] != v {
			matches = false
		}
	}
	if matches {
		t.Errorf("the production Service selector %v selects the candidate's pods %v", svc.Spec.Selector, c.Spec.Template.Labels)
	}
	for k, v := range c.Spec.Selector.MatchLabels {
		if c.Spec.Template.Labels[k] != v {
			t.Errorf("candidate selector %v does not match its pods %v", c.Spec.Selector.MatchLabels, c.Spec.Template.Labels)
		}
	}
	// Otherwise the same pod template as production.
	cs, ps := c.Spec.Template.Spec, prod.Spec.Template.Spec
	if !reflect.DeepEqual(cs.Containers, ps.Containers) || !reflect.DeepEqual(cs.SecurityContext, ps.SecurityContext) || !reflect.DeepEqual(cs.Volumes, ps.Volumes) {
		t.Error("the candidate's pod spec differs from production's")
	}
	// The NetworkPolicy covers the candidate too.
	np := NetworkPolicy(md)
	for k, v := range np.Spec.PodSelector.MatchLabels {
		if c.Spec.Template.Labels[k] != v {
			t.Errorf("the NetworkPolicy does not cover the candidate")
		}
	}
}
