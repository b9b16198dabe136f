// Package crd checks the generated CRD on a real kube-apiserver: every
// invalid ModelDeployment is refused with a message a person understands,
// and the defaults are applied. Add a row to the table with every new rule.
package crd

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/mlflow-operator/mlflow-operator/api/v1alpha1"
	"github.com/mlflow-operator/mlflow-operator/test/harness/fixtures"
	"github.com/mlflow-operator/mlflow-operator/test/harness/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) {
	var err error
	env, err = testenv.Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	_ = env.Stop()
	os.Exit(code)
}

func createNamespace(t *testing.T) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "validation-"}}
	if err := env.Client.Create(context.Background(), ns); err != nil {
		t.Fatal(err)
	}
	return ns.Name
}

// TestDefaults checks that the API server fills in the documented defaults.
func TestDefaults(t *testing.T) {
	ctx := context.Background()
	md := fixtures.Valid(createNamespace(t), "defaults")
	if err := env.Client.Create(ctx, md); err != nil {
		t.Fatalf("valid object refused: %v", err)
	}
	got := &v1alpha1.ModelDeployment{}
	if err := env.Client.Get(ctx, client.ObjectKeyFromObject(md), got); err != nil {
		t.Fatal(err)
	}
	s := got.Spec
	checks := []struct {
		name      string
		got, want any
	}{
		{"serving.port", s.Serving.Port, int32(8080)},
		{"scaling.minReplicas", ptr.Deref(s.Scaling.MinReplicas, 0), int32(3)},
		{"scaling.maxReplicas", ptr.Deref(s.Scaling.MaxReplicas, 0), int32(10)},
		{"scaling.targetCPUUtilization", ptr.Deref(s.Scaling.TargetCPUUtilization, 0), int32(70)},
		{"mlflow.pollInterval", s.MLflow.PollInterval.Duration, time.Minute},
		{"image.tagTemplate", s.Image.TagTemplate, "{name}-v{version}"},
		{"image.dependencyPolicy", s.Image.DependencyPolicy, v1alpha1.DependencyPolicyWarn},
		{"networkPolicy.enabled", ptr.Deref(s.NetworkPolicy.Enabled, false), true},
		{"rollout.progressDeadline", s.Rollout.ProgressDeadline.Duration, 10 * time.Minute},
		{"rollout.autoRollback", ptr.Deref(s.Rollout.AutoRollback, false), true},
		{"rollout.historyLimit", ptr.Deref(s.Rollout.HistoryLimit, 0), int32(10)},
		{"rollout.smokeTest.enabled", ptr.Deref(s.Rollout.SmokeTest.Enabled, false), true},
		{"rollout.smokeTest.path", s.Rollout.SmokeTest.Path, "/invocations"},
		{"rollout.smokeTest.timeout", s.Rollout.SmokeTest.Timeout.Duration, 30 * time.Second},
		{"rollout.approval", s.Rollout.Approval, v1alpha1.ApprovalAutomatic},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("spec.%s defaulted to %v, want %v", c.name, c.got, c.want)
		}
	}
}

// TestValidObjectsAccepted: variations that must stay valid, so that the
// refusals below are about the field they change and nothing else.
func TestValidObjectsAccepted(t *testing.T) {
	ns := createNamespace(t)
	cases := map[string]func(*v1alpha1.ModelDeployment){
		"alias":         func(md *v1alpha1.ModelDeployment) {},
		"stage":         func(md *v1alpha1.ModelDeployment) { md.Spec.Model.Alias = ""; md.Spec.Model.Stage = "Production" },
		"version":       func(md *v1alpha1.ModelDeployment) { md.Spec.Model.Alias = ""; md.Spec.Model.Version = "12" },
		"registry port": func(md *v1alpha1.ModelDeployment) { md.Spec.Image.Repository = "127.0.0.1:5000/models/iris" },
		"base by digest": func(md *v1alpha1.ModelDeployment) {
			md.Spec.Image.BaseImage = "reg.io/a/b@sha256:" + strings.Repeat("a", 64)
		},
		"percent pdb": func(md *v1alpha1.ModelDeployment) {
			md.Spec.Disruption.MaxUnavailable = ptr.To(intstr.FromString("25%"))
		},
		"min equals max": func(md *v1alpha1.ModelDeployment) {
			md.Spec.Scaling.MinReplicas, md.Spec.Scaling.MaxReplicas = ptr.To(int32(2)), ptr.To(int32(2))
		},
		"one replica": func(md *v1alpha1.ModelDeployment) {
			md.Spec.Scaling.MinReplicas, md.Spec.Scaling.MaxReplicas = ptr.To(int32(1)), ptr.To(int32(1))
		},
		"https and durations": func(md *v1alpha1.ModelDeployment) {
			md.Spec.MLflow.TrackingURI = "https://mlflow.example.com/"
			md.Spec.MLflow.PollInterval = &metav1.Duration{Duration: 90 * time.Second}
			md.Spec.Rollout.ProgressDeadline = &metav1.Duration{Duration: 15 * time.Minute}
		},
	}
	cases["name of 63 characters"] = func(md *v1alpha1.ModelDeployment) { md.Name = strings.Repeat("b", 63) }
	cases["smoke test required"] = func(md *v1alpha1.ModelDeployment) { md.Spec.Rollout.SmokeTest.Required = true }
	cases["manual approval"] = func(md *v1alpha1.ModelDeployment) { md.Spec.Rollout.Approval = v1alpha1.ApprovalManual }
	cases["blue-green with a delay"] = func(md *v1alpha1.ModelDeployment) {
		md.Spec.Rollout.Strategy = v1alpha1.StrategyBlueGreen
		md.Spec.Rollout.BlueGreen = &v1alpha1.BlueGreenSpec{ScaleDownDelay: &metav1.Duration{Duration: 10 * time.Minute}}
	}
	cases["blue-green without delay"] = func(md *v1alpha1.ModelDeployment) {
		md.Spec.Rollout.Strategy = v1alpha1.StrategyBlueGreen
		md.Spec.Rollout.BlueGreen = &v1alpha1.BlueGreenSpec{ScaleDownDelay: &metav1.Duration{}}
	}
	cases["canary with defaults"] = func(md *v1alpha1.ModelDeployment) { md.Spec.Rollout.Strategy = v1alpha1.StrategyCanary }
	cases["canary with steps and both analyses"] = func(md *v1alpha1.ModelDeployment) {
		md.Spec.Rollout.Strategy = v1alpha1.StrategyCanary
		md.Spec.Rollout.Canary = &v1alpha1.CanarySpec{
			Steps: []v1alpha1.CanaryStep{{Weight: 10, Pause: &metav1.Duration{Duration: 5 * time.Minute}}, {Weight: 50}},
			Analysis: &v1alpha1.CanaryAnalysis{Probe: &v1alpha1.ProbeAnalysis{Requests: 20, MinSuccessPercent: 95},
				Prometheus: &v1alpha1.PrometheusAnalysis{Query: `sum(rate(x{namespace="{{namespace}}"}[1m]))`, Min: "0.99", Max: "1e3"}},
		}
	}
	for name, mutate := range cases {
		t.Run(name, func(t *testing.T) {
			md := fixtures.Valid(ns, strings.ReplaceAll(name, " ", "-"))
			mutate(md)
			if err := env.Client.Create(context.Background(), md); err != nil {
				t.Fatalf("refused: %v", err)
			}
		})
	}
}

// TestInvalidObjectsRefused creates invalid ModelDeployments in the real API
// server and checks that each is refused with a message naming the field.
func TestInvalidObjectsRefused(t *testing.T) {
	ns := createNamespace(t)
	cases := []struct {
		name   string
		mutate func(*v1alpha1.ModelDeployment)
		// field must appear in the message; so must each of words.
		field string
		words []string
	}{
		{"alias and version", func(md *v1alpha1.ModelDeployment) { md.Spec.Model.Version = "3" },
			"spec.model", []string{"exactly one of alias, stage or version"}},
		{"alias and stage", func(md *v1alpha1.ModelDeployment) { md.Spec.Model.Stage = "Production" },
			"spec.model", []string{"exactly one"}},
		{"none of alias, stage, version", func(md *v1alpha1.ModelDeployment) { md.Spec.Model.Alias = "" },
			"spec.model", []string{"exactly one"}},
		{"empty model name", func(md *v1alpha1.ModelDeployment) { md.Spec.Model.Name = "" },
			"spec.model.name", nil},
		{"reserved alias latest", func(md *v1alpha1.ModelDeployment) { md.Spec.Model.Alias = "latest" },
			"spec.model.alias", []string{"reserved"}},
		{"reserved alias v3", func(md *v1alpha1.ModelDeployment) { md.Spec.Model.Alias = "v3" },
			"spec.model.alias", []string{"reserved"}},
		{"unknown stage", func(md *v1alpha1.ModelDeployment) { md.Spec.Model.Alias = ""; md.Spec.Model.Stage = "Prod" },
			"spec.model.stage", []string{"Production"}},
		{"version not a number", func(md *v1alpha1.ModelDeployment) { md.Spec.Model.Alias = ""; md.Spec.Model.Version = "latest" },
			"spec.model.version", nil},
		{"empty tracking URI", func(md *v1alpha1.ModelDeployment) { md.Spec.MLflow.TrackingURI = "" },
			"spec.mlflow.trackingURI", nil},
		{"tracking URI without scheme", func(md *v1alpha1.ModelDeployment) { md.Spec.MLflow.TrackingURI = "mlflow:5000" },
			"spec.mlflow.trackingURI", []string{"http://"}},
		{"bad poll interval", func(md *v1alpha1.ModelDeployment) {
			md.Spec.MLflow.PollInterval = &metav1.Duration{Duration: -time.Second}
		},
			"spec.mlflow.pollInterval", nil},
		{"poll interval too short", func(md *v1alpha1.ModelDeployment) {
			md.Spec.MLflow.PollInterval = &metav1.Duration{Duration: time.Second}
		}, "spec.mlflow.pollInterval", []string{"at least 5s"}},
		{"repository with a tag", func(md *v1alpha1.ModelDeployment) { md.Spec.Image.Repository = "registry.example.com/models/iris:v1" },
			"spec.image.repository", []string{"must not contain a tag"}},
		{"repository with a digest", func(md *v1alpha1.ModelDeployment) {
			md.Spec.Image.Repository = "registry.example.com/models/iris@sha256:" + strings.Repeat("a", 64)
		}, "spec.image.repository", []string{"must not contain a digest"}},
		{"repository with upper case", func(md *v1alpha1.ModelDeployment) { md.Spec.Image.Repository = "registry.example.com/Models/Iris" },
			"spec.image.repository", []string{"lower-case"}},
		{"empty base image", func(md *v1alpha1.ModelDeployment) { md.Spec.Image.BaseImage = "" },
			"spec.image.baseImage", nil},
		{"base image with spaces", func(md *v1alpha1.ModelDeployment) { md.Spec.Image.BaseImage = "my image" },
			"spec.image.baseImage", []string{"image reference"}},
		{"tag template without version", func(md *v1alpha1.ModelDeployment) { md.Spec.Image.TagTemplate = "{name}-latest" },
			"spec.image.tagTemplate", []string{"{version}"}},
		{"unknown dependency policy", func(md *v1alpha1.ModelDeployment) { md.Spec.Image.DependencyPolicy = "Strict" },
			"spec.image.dependencyPolicy", []string{"Enforce"}},
		{"privileged port", func(md *v1alpha1.ModelDeployment) { md.Spec.Serving.Port = 80 },
			"spec.serving.port", nil},
		{"reserved pod label", func(md *v1alpha1.ModelDeployment) {
			md.Spec.Serving.PodLabels = map[string]string{v1alpha1.LabelRole: "x"}
		}, "spec.serving.podLabels", []string{"set by the operator"}},
		{"negative min replicas", func(md *v1alpha1.ModelDeployment) { md.Spec.Scaling.MinReplicas = ptr.To(int32(-1)) },
			"spec.scaling.minReplicas", nil},
		{"zero max replicas", func(md *v1alpha1.ModelDeployment) { md.Spec.Scaling.MaxReplicas = ptr.To(int32(0)) },
			"spec.scaling.maxReplicas", nil},
		{"min above max", func(md *v1alpha1.ModelDeployment) {
			md.Spec.Scaling.MinReplicas, md.Spec.Scaling.MaxReplicas = ptr.To(int32(5)), ptr.To(int32(4))
		}, "spec.scaling", []string{"minReplicas must not be greater than maxReplicas"}},
		{"cpu target above 100", func(md *v1alpha1.ModelDeployment) { md.Spec.Scaling.TargetCPUUtilization = ptr.To(int32(150)) },
			"spec.scaling.targetCPUUtilization", nil},
		{"both minAvailable and maxUnavailable", func(md *v1alpha1.ModelDeployment) {
			md.Spec.Disruption.MinAvailable = ptr.To(intstr.FromInt32(1))
			md.Spec.Disruption.MaxUnavailable = ptr.To(intstr.FromInt32(1))
		}, "spec.disruption", []string{"at most one of minAvailable and maxUnavailable"}},
		{"minAvailable 100%", func(md *v1alpha1.ModelDeployment) {
			md.Spec.Disruption.MinAvailable = ptr.To(intstr.FromString("100%"))
		},
			"spec.disruption.minAvailable", []string{"block every eviction"}},
		{"maxUnavailable 0", func(md *v1alpha1.ModelDeployment) { md.Spec.Disruption.MaxUnavailable = ptr.To(intstr.FromInt32(0)) },
			"spec.disruption.maxUnavailable", []string{"block every eviction"}},
		{"maxSurge 0", func(md *v1alpha1.ModelDeployment) { md.Spec.Rollout.MaxSurge = ptr.To(intstr.FromInt32(0)) },
			"spec.rollout.maxSurge", []string{"0 would never start a new pod"}},
		{"maxSurge 150%", func(md *v1alpha1.ModelDeployment) { md.Spec.Rollout.MaxSurge = ptr.To(intstr.FromString("150%")) },
			"spec.rollout.maxSurge", []string{"from 1% to 100%"}},
		{"unknown strategy", func(md *v1alpha1.ModelDeployment) { md.Spec.Rollout.Strategy = "Shadow" },
			"spec.rollout.strategy", []string{"RollingUpdate", "BlueGreen", "Canary"}},
		{"canary settings with BlueGreen", func(md *v1alpha1.ModelDeployment) {
			md.Spec.Rollout.Strategy = v1alpha1.StrategyBlueGreen
			md.Spec.Rollout.Canary = &v1alpha1.CanarySpec{}
		}, "spec.rollout", []string{"canary is only read with strategy: Canary"}},
		{"canary weight 100", func(md *v1alpha1.ModelDeployment) {
			md.Spec.Rollout.Strategy = v1alpha1.StrategyCanary
			md.Spec.Rollout.Canary = &v1alpha1.CanarySpec{Steps: []v1alpha1.CanaryStep{{Weight: 100}}}
		}, "spec.rollout.canary.steps[0].weight", []string{"99"}},
		{"eleven canary steps", func(md *v1alpha1.ModelDeployment) {
			md.Spec.Rollout.Strategy = v1alpha1.StrategyCanary
			md.Spec.Rollout.Canary = &v1alpha1.CanarySpec{Steps: make([]v1alpha1.CanaryStep, 11)}
			for i := range md.Spec.Rollout.Canary.Steps {
				md.Spec.Rollout.Canary.Steps[i].Weight = 10
			}
		}, "spec.rollout.canary.steps", []string{"at most 10"}},
		{"empty canary analysis", func(md *v1alpha1.ModelDeployment) {
			md.Spec.Rollout.Strategy = v1alpha1.StrategyCanary
			md.Spec.Rollout.Canary = &v1alpha1.CanarySpec{Analysis: &v1alpha1.CanaryAnalysis{}}
		}, "spec.rollout.canary.analysis", []string{"set probe, prometheus or both"}},
		{"query without bounds", func(md *v1alpha1.ModelDeployment) {
			md.Spec.Rollout.Strategy = v1alpha1.StrategyCanary
			md.Spec.Rollout.Canary = &v1alpha1.CanarySpec{Analysis: &v1alpha1.CanaryAnalysis{Prometheus: &v1alpha1.PrometheusAnalysis{Query: "up"}}}
		}, "spec.rollout.canary.analysis.prometheus", []string{"a query without bounds checks nothing"}},
		{"min above max", func(md *v1alpha1.ModelDeployment) {
			md.Spec.Rollout.Strategy = v1alpha1.StrategyCanary
			md.Spec.Rollout.Canary = &v1alpha1.CanarySpec{Analysis: &v1alpha1.CanaryAnalysis{Prometheus: &v1alpha1.PrometheusAnalysis{Query: "up", Min: "2", Max: "1.5"}}}
		}, "spec.rollout.canary.analysis.prometheus", []string{"min must not be greater than max"}},
		{"bound not a number", func(md *v1alpha1.ModelDeployment) {
			md.Spec.Rollout.Strategy = v1alpha1.StrategyCanary
			md.Spec.Rollout.Canary = &v1alpha1.CanarySpec{Analysis: &v1alpha1.CanaryAnalysis{Prometheus: &v1alpha1.PrometheusAnalysis{Query: "up", Min: "ninety"}}}
		}, "spec.rollout.canary.analysis.prometheus.min", []string{"should match"}},
		{"blueGreen settings with RollingUpdate", func(md *v1alpha1.ModelDeployment) {
			md.Spec.Rollout.BlueGreen = &v1alpha1.BlueGreenSpec{ScaleDownDelay: &metav1.Duration{Duration: time.Minute}}
		}, "spec.rollout", []string{"blueGreen is only read with strategy: BlueGreen"}},
		{"scale-down delay above a day", func(md *v1alpha1.ModelDeployment) {
			md.Spec.Rollout.Strategy = v1alpha1.StrategyBlueGreen
			md.Spec.Rollout.BlueGreen = &v1alpha1.BlueGreenSpec{ScaleDownDelay: &metav1.Duration{Duration: 25 * time.Hour}}
		}, "spec.rollout.blueGreen.scaleDownDelay", []string{"at most 24h"}},
		{"minAvailable not below minReplicas", func(md *v1alpha1.ModelDeployment) {
			md.Spec.Disruption.MinAvailable = ptr.To(intstr.FromInt32(3))
		}, "spec.disruption.minAvailable", []string{"lower than spec.scaling.minReplicas"}},
		{"progress deadline too short", func(md *v1alpha1.ModelDeployment) {
			md.Spec.Rollout.ProgressDeadline = &metav1.Duration{Duration: time.Second}
		}, "spec.rollout.progressDeadline", []string{"at least 10s"}},
		{"smoke test path without slash", func(md *v1alpha1.ModelDeployment) { md.Spec.Rollout.SmokeTest.Path = "invocations" },
			"spec.rollout.smokeTest.path", nil},
		{"history limit zero", func(md *v1alpha1.ModelDeployment) { md.Spec.Rollout.HistoryLimit = ptr.To(int32(0)) },
			"spec.rollout.historyLimit", nil},
		{"unknown approval", func(md *v1alpha1.ModelDeployment) { md.Spec.Rollout.Approval = "manual" },
			"spec.rollout.approval", []string{`Unsupported value: "manual"`, `"Automatic"`, `"Manual"`}},
		{"smoke test required but disabled", func(md *v1alpha1.ModelDeployment) {
			md.Spec.Rollout.SmokeTest.Required, md.Spec.Rollout.SmokeTest.Enabled = true, ptr.To(false)
		}, "spec.rollout.smokeTest", []string{"required needs the smoke test enabled"}},
		// The name is the Service's name and a label value of every serving
		// pod: 64 characters would be accepted, then every apply would fail.
		{"name of 64 characters", func(md *v1alpha1.ModelDeployment) { md.Name = strings.Repeat("a", 64) },
			"metadata.name", []string{"at most 63 characters", "names the model's Service"}},
		{"name starting with a digit (no Service can have it)", func(md *v1alpha1.ModelDeployment) { md.Name = "1-iris" },
			"metadata.name", []string{"starting with a letter"}},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			md := fixtures.Valid(ns, fmt.Sprintf("invalid-%d", i))
			tc.mutate(md)
			err := env.Client.Create(context.Background(), md)
			assertRefused(t, err, tc.field, tc.words)
		})
	}

	// Raw objects, for values a typed Go struct cannot hold.
	raw := []struct {
		name  string
		path  []string
		value any
		field string
	}{
		{"bad cpu quantity", []string{"spec", "serving", "resources", "requests", "cpu"}, "lots", "spec.serving.resources.requests.cpu"},
		{"bad memory quantity", []string{"spec", "serving", "resources", "limits", "memory"}, "1 GB", "spec.serving.resources.limits.memory"},
		{"poll interval not a duration", []string{"spec", "mlflow", "pollInterval"}, "soon", "spec.mlflow.pollInterval"},
		{"smoke test timeout not a duration", []string{"spec", "rollout", "smokeTest", "timeout"}, "30 seconds", "spec.rollout.smokeTest.timeout"},
		{"minAvailable garbage string", []string{"spec", "disruption", "minAvailable"}, "two", "spec.disruption.minAvailable"},
		{"replicas as string", []string{"spec", "scaling", "minReplicas"}, "three", "spec.scaling.minReplicas"},
	}
	// Every duration field: values that match a duration's shape but
	// overflow Go's parser (a typed client could not decode the object, and
	// a watch of it would stop the operator), and values past the bounds.
	for _, d := range []struct {
		path  []string
		field string
		over  string // just past the maximum
		under string // just below the minimum
	}{
		{[]string{"spec", "mlflow", "pollInterval"}, "spec.mlflow.pollInterval", "24h1s", "4s"},
		{[]string{"spec", "rollout", "progressDeadline"}, "spec.rollout.progressDeadline", "24h1s", "9s"},
		{[]string{"spec", "rollout", "smokeTest", "timeout"}, "spec.rollout.smokeTest.timeout", "5m1s", "999ms"},
	} {
		for _, v := range []string{"99999999999h", "2562048h", "9223372036854775807ns", "99999h99999m99999s99999ms", d.over, d.under} {
			raw = append(raw, struct {
				name  string
				path  []string
				value any
				field string
			}{d.field + " " + v, d.path, v, d.field})
		}
	}
	for i, tc := range raw {
		t.Run(tc.name, func(t *testing.T) {
			u, err := toUnstructured(fixtures.Valid(ns, fmt.Sprintf("raw-%d", i)))
			if err != nil {
				t.Fatal(err)
			}
			if err := setNested(u.Object, tc.value, tc.path...); err != nil {
				t.Fatal(err)
			}
			err = env.Client.Create(context.Background(), u)
			assertRefused(t, err, tc.field, nil)
		})
	}
	if n := len(cases) + len(raw); n < 20 {
		t.Fatalf("only %d invalid cases; the table must keep at least 20", n)
	}
}

func assertRefused(t *testing.T, err error, field string, words []string) {
	t.Helper()
	if err == nil {
		t.Fatalf("accepted, want refused naming %s", field)
	}
	if !apierrors.IsInvalid(err) && !apierrors.IsBadRequest(err) {
		t.Fatalf("refused for another reason than validation: %v", err)
	}
	msg := err.Error()
	if !strings.Contains(msg, field) {
		t.Errorf("message does not name %s: %s", field, msg)
	}
	for _, w := range words {
		if !strings.Contains(msg, w) {
			t.Errorf("message lacks %q: %s", w, msg)
		}
	}
	t.Logf("refused: %s", msg)
}

func toUnstructured(obj runtime.Object) (*unstructured.Unstructured, error) {
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return nil, err
	}
	return &unstructured.Unstructured{Object: m}, nil
}

func setNested(obj map[string]any, value any, path ...string) error {
	return unstructured.SetNestedField(obj, value, path...)
}
