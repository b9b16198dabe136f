// Package argocd checks what Argo CD (config/argocd/health.lua, run with the
// same Lua interpreter Argo CD embeds), kstatus (what kubectl wait, Flux
// and cli-utils compute) and Flux's CEL health check
// (config/flux/healthcheck-exprs.yaml, run with cel-go) conclude from the
// status the operator writes.
package argocd

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	lua "github.com/yuin/gopher-lua"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"

	mdstatus "github.com/mlflow-operator/mlflow-operator/internal/status"
	"github.com/mlflow-operator/mlflow-operator/test/harness/fixtures"
	"github.com/mlflow-operator/mlflow-operator/test/harness/procs"
)

func TestHealth(t *testing.T) {
	script, err := os.ReadFile(filepath.Join(procs.RepoRoot(), "config", "argocd", "health.lua"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		outcome *mdstatus.Outcome // nil: no status yet
		suspend bool
		// suspendedByOperator: the Ready condition the operator writes while suspended
		suspendedByOperator bool
		stale               bool // observedGeneration behind
		argo                string
		kstatus             status.Status
		argoMessage         string // part of Argo CD's message, when set
	}{
		// Before the operator's first status write kstatus has nothing to read
		// and calls any custom resource Current; the Argo CD script waits.
		{name: "no status yet", argo: "Progressing", kstatus: status.CurrentStatus},
		{name: "ready", outcome: &mdstatus.Outcome{Ready: true, Reason: "Succeeded", Message: "version 3 serves"}, argo: "Healthy", kstatus: status.CurrentStatus},
		{name: "building", outcome: &mdstatus.Outcome{Reason: "Building", Message: "building"}, argo: "Progressing", kstatus: status.InProgressStatus},
		{name: "mlflow down, retrying", outcome: &mdstatus.Outcome{Failing: true, Reason: "MLflowUnreachable", Message: "connection refused"}, argo: "Progressing", kstatus: status.InProgressStatus},
		{name: "stalled", outcome: &mdstatus.Outcome{Stalled: true, Reason: "ProgressDeadlineExceeded", Message: "timed out"}, argo: "Degraded", kstatus: status.FailedStatus},
		// A verified version waits for a person: nothing fails, nothing is
		// under way. kubectl wait and kstatus keep waiting (the version the
		// reference means does not serve); Argo CD shows it paused.
		{name: "awaiting approval", outcome: &mdstatus.Outcome{Paused: true, Reason: "AwaitingApproval",
			Message: "candidate of version 2 answered the smoke test; waiting for approval"}, argo: "Suspended", kstatus: status.InProgressStatus,
			argoMessage: "waiting for approval"},
		// Once it is aborted the version is held like a failed one.
		{name: "aborted", outcome: &mdstatus.Outcome{Stalled: true, Reason: "Aborted", Message: "aborted before promotion"}, argo: "Degraded", kstatus: status.FailedStatus},
		{name: "spec not yet handled", outcome: &mdstatus.Outcome{Ready: true, Reason: "Succeeded"}, stale: true, argo: "Progressing", kstatus: status.InProgressStatus},
		{name: "suspended", outcome: &mdstatus.Outcome{Ready: true, Reason: "Succeeded"}, suspend: true, argo: "Suspended", kstatus: status.CurrentStatus},
		// What the operator writes once it sees spec.suspend: Ready keeps its
		// status with reason Suspended, and the suspending generation is not
		// marked handled (kstatus: in progress until resumed).
		{name: "suspended, as the operator reports it", outcome: &mdstatus.Outcome{Ready: true, Reason: "Succeeded"}, suspend: true, suspendedByOperator: true, stale: true, argo: "Suspended", kstatus: status.InProgressStatus},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			md := fixtures.Valid("ml", "iris")
			md.Generation = 4
			md.Spec.Suspend = tc.suspend
			if tc.outcome != nil {
				mdstatus.SetSummary(&md.Status.Conditions, md.Generation, *tc.outcome)
				if tc.suspendedByOperator {
					mdstatus.SetSuspended(&md.Status.Conditions, md.Generation, "reconciliation is suspended")
				}
				md.Status.ObservedGeneration = md.Generation
				for i := range md.Status.Conditions {
					md.Status.Conditions[i].LastTransitionTime = metav1.Now()
				}
			}
			if tc.stale {
				md.Status.ObservedGeneration = md.Generation - 1
			}
			obj, err := runtime.DefaultUnstructuredConverter.ToUnstructured(md)
			if err != nil {
				t.Fatal(err)
			}

			got, msg := argoHealth(t, string(script), obj)
			if got != tc.argo {
				t.Errorf("Argo CD health %s (%s), want %s", got, msg, tc.argo)
			}
			if !strings.Contains(msg, tc.argoMessage) {
				t.Errorf("Argo CD message %q lacks %q", msg, tc.argoMessage)
			}
			res, err := status.Compute(&unstructured.Unstructured{Object: obj})
			if err != nil {
				t.Fatal(err)
			}
			if res.Status != tc.kstatus {
				t.Errorf("kstatus %s (%s), want %s", res.Status, res.Message, tc.kstatus)
			}
		})
	}
}

// argoHealth runs the health script the way Argo CD does: the object as the
// global obj, the returned table's status and message.
func argoHealth(t *testing.T, script string, obj map[string]any) (string, string) {
	t.Helper()
	L := lua.NewState()
	defer L.Close()
	L.SetGlobal("obj", toLua(L, obj))
	if err := L.DoString(script); err != nil {
		t.Fatalf("health.lua: %v", err)
	}
	ret, ok := L.Get(-1).(*lua.LTable)
	if !ok {
		t.Fatalf("health.lua returned %s, want a table", L.Get(-1).Type())
	}
	return ret.RawGetString("status").String(), ret.RawGetString("message").String()
}

func toLua(L *lua.LState, v any) lua.LValue {
	switch x := v.(type) {
	case map[string]any:
		tbl := L.NewTable()
		for k, e := range x {
			tbl.RawSetString(k, toLua(L, e))
		}
		return tbl
	case []any:
		tbl := L.NewTable()
		for _, e := range x {
			tbl.Append(toLua(L, e))
		}
		return tbl
	case string:
		return lua.LString(x)
	case bool:
		return lua.LBool(x)
	case int64:
		return lua.LNumber(x)
	case float64:
		return lua.LNumber(x)
	case nil:
		return lua.LNil
	default:
		t := L.NewTable()
		return t
	}
}
