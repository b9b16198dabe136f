package samples

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/mlflow-operator/mlflow-operator/api/v1alpha1"
	"github.com/mlflow-operator/mlflow-operator/test/harness/fixtures"
	"github.com/mlflow-operator/mlflow-operator/test/harness/procs"
)

// pluginKubectl runs kubectl with hack/ on the PATH, so that kubectl finds
// hack/kubectl-modeldeployment as the plugin `kubectl modeldeployment`, and
// the plugin finds this kubectl.
func pluginKubectl(args ...string) (string, error) {
	path := filepath.Join(procs.RepoRoot(), "hack") + string(os.PathListSeparator) + filepath.Dir(kubectlBin) +
		string(os.PathListSeparator) + os.Getenv("PATH")
	cmd := exec.CommandContext(context.Background(), kubectlBin, args...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+kubeconfig, "PATH="+path)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// TestApprovalPlugin: `kubectl modeldeployment approve|abort NAME` sets the
// annotation to the version status.awaitingApproval names, with a time that
// makes each value new, and refuses when no version waits.
func TestApprovalPlugin(t *testing.T) {
	ctx := context.Background()
	md := fixtures.Valid("default", "plugin-approval")
	if err := env.Client.Create(ctx, md); err != nil {
		t.Fatal(err)
	}
	out, err := pluginKubectl("modeldeployment", "approve", md.Name, "-n", md.Namespace)
	if err == nil || !strings.Contains(out, "holds no version for approval") {
		t.Fatalf("approve with nothing waiting: %v\n%s", err, out)
	}

	md.Status.AwaitingApproval = &v1alpha1.ApprovalRequest{ModelVersionRef: v1alpha1.ModelVersionRef{Version: "7"}, Verification: v1alpha1.ReasonVerified}
	if err := env.Client.Status().Update(ctx, md); err != nil {
		t.Fatal(err)
	}
	for _, action := range []string{"approve", "abort"} {
		out, err := pluginKubectl("modeldeployment", action, md.Name, "-n", md.Namespace)
		if err != nil {
			t.Fatalf("kubectl modeldeployment %s: %v\n%s", action, err, out)
		}
		got := &v1alpha1.ModelDeployment{}
		if err := env.Client.Get(ctx, client.ObjectKeyFromObject(md), got); err != nil {
			t.Fatal(err)
		}
		key := map[string]string{"approve": v1alpha1.AnnotationApprove, "abort": v1alpha1.AnnotationAbort}[action]
		if v := got.Annotations[key]; !strings.HasPrefix(v, "7@") || len(v) != len("7@2006-01-02T15:04:05Z") {
			t.Errorf("%s=%q, want 7@<UTC time>", key, v)
		}
		t.Logf("%s", strings.TrimSpace(out))
	}
	out, err = pluginKubectl("modeldeployment", "status", md.Name, "-n", md.Namespace)
	if err != nil || !strings.Contains(out, "waiting:  7") {
		t.Errorf("kubectl modeldeployment status: %v\n%s", err, out)
	}

	// A Canary rollout under way can be aborted; not approved.
	got := &v1alpha1.ModelDeployment{}
	if err := env.Client.Get(ctx, client.ObjectKeyFromObject(md), got); err != nil {
		t.Fatal(err)
	}
	got.Status.AwaitingApproval = nil
	got.Status.Canary = &v1alpha1.CanaryStatus{ModelVersionRef: v1alpha1.ModelVersionRef{Version: "8"}, Weight: 25, Replicas: 1}
	if err := env.Client.Status().Update(ctx, got); err != nil {
		t.Fatal(err)
	}
	if out, err := pluginKubectl("modeldeployment", "approve", md.Name, "-n", md.Namespace); err == nil {
		t.Errorf("approve during a canary step should be refused:\n%s", out)
	}
	if out, err := pluginKubectl("modeldeployment", "abort", md.Name, "-n", md.Namespace); err != nil {
		t.Fatalf("abort during a canary step: %v\n%s", err, out)
	}
	if err := env.Client.Get(ctx, client.ObjectKeyFromObject(md), got); err != nil {
		t.Fatal(err)
	}
	if v := got.Annotations[v1alpha1.AnnotationAbort]; !strings.HasPrefix(v, "8@") {
		t.Errorf("abort annotation %q, want the canary's version 8", v)
	}
}
