package argocd

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/cel-go/cel"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/yaml"

	mdstatus "github.com/mlflow-operator/mlflow-operator/internal/status"
	"github.com/mlflow-operator/mlflow-operator/test/harness/fixtures"
	"github.com/mlflow-operator/mlflow-operator/test/harness/procs"
)

// TestFluxHealthCheckExprs evaluates the CEL health check of
// config/flux/healthcheck-exprs.yaml as Flux's kustomize-controller does (the
// object's top-level fields as variables) against the statuses the operator
// writes: current when Ready or awaiting approval, failed when stalled,
// neither (in progress) otherwise. docs/gitops.md shows the same expressions.
func TestFluxHealthCheckExprs(t *testing.T) {
	root := procs.RepoRoot()
	data, err := os.ReadFile(filepath.Join(root, "config", "flux", "healthcheck-exprs.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var ks struct {
		Spec struct {
			HealthCheckExprs []struct {
				APIVersion string `json:"apiVersion"`
				Kind       string `json:"kind"`
				Current    string `json:"current"`
				Failed     string `json:"failed"`
			} `json:"healthCheckExprs"`
		} `json:"spec"`
	}
	if err := yaml.Unmarshal(data, &ks); err != nil {
		t.Fatal(err)
	}
	if len(ks.Spec.HealthCheckExprs) != 1 {
		t.Fatalf("%d health check expressions, want 1", len(ks.Spec.HealthCheckExprs))
	}
	exprs := ks.Spec.HealthCheckExprs[0]
	if exprs.APIVersion != "serving.mlflow-operator.io/v1alpha1" || exprs.Kind != "ModelDeployment" {
		t.Fatalf("expressions for %s %s", exprs.APIVersion, exprs.Kind)
	}
	docs, err := os.ReadFile(filepath.Join(root, "docs", "gitops.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range []string{exprs.Current, exprs.Failed} {
		if !strings.Contains(string(docs), e) {
			t.Errorf("docs/gitops.md does not show %q", e)
		}
	}

	env, err := cel.NewEnv(cel.Variable("apiVersion", cel.StringType), cel.Variable("kind", cel.StringType),
		cel.Variable("metadata", cel.DynType), cel.Variable("spec", cel.DynType), cel.Variable("status", cel.DynType))
	if err != nil {
		t.Fatal(err)
	}
	program := func(expr string) cel.Program {
		ast, iss := env.Compile(expr)
		if iss.Err() != nil {
			t.Fatalf("%s: %v", expr, iss.Err())
		}
		p, err := env.Program(ast)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	current, failed := program(exprs.Current), program(exprs.Failed)

	tests := []struct {
		name            string
		outcome         mdstatus.Outcome
		stale           bool
		current, failed bool
	}{
		{"ready", mdstatus.Outcome{Ready: true, Reason: "Succeeded"}, false, true, false},
		{"awaiting approval", mdstatus.Outcome{Paused: true, Reason: "AwaitingApproval"}, false, true, false},
		{"building", mdstatus.Outcome{Reason: "Building"}, false, false, false},
		{"mlflow down, retrying", mdstatus.Outcome{Failing: true, Reason: "MLflowUnreachable"}, false, false, false},
		{"stalled", mdstatus.Outcome{Stalled: true, Reason: "VersionFailed"}, false, false, true},
		{"ready, but the spec not yet handled", mdstatus.Outcome{Ready: true, Reason: "Succeeded"}, true, false, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			md := fixtures.Valid("ml", "iris")
			md.Generation = 4
			mdstatus.SetSummary(&md.Status.Conditions, md.Generation, tc.outcome)
			md.Status.ObservedGeneration = md.Generation
			if tc.stale {
				md.Status.ObservedGeneration--
			}
			for i := range md.Status.Conditions {
				md.Status.Conditions[i].LastTransitionTime = metav1.Now()
			}
			obj, err := runtime.DefaultUnstructuredConverter.ToUnstructured(md)
			if err != nil {
				t.Fatal(err)
			}
			eval := func(p cel.Program) bool {
				out, _, err := p.Eval(obj)
				if err != nil {
					t.Fatalf("evaluating: %v", err)
				}
				b, ok := out.Value().(bool)
				if !ok {
					t.Fatalf("expression gave %v, want a bool", out)
				}
				return b
			}
			if got := eval(current); got != tc.current {
				t.Errorf("current = %v, want %v", got, tc.current)
			}
			if got := eval(failed); got != tc.failed {
				t.Errorf("failed = %v, want %v", got, tc.failed)
			}
		})
	}
}
