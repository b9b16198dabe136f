package cluster

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ChaosLabel on a pod makes kwok fail its containers once it runs (the
// pod-container-running-failed stage).
const ChaosLabel = "pod-container-running-failed.stage.kwok.x-k8s.io"

// CrashVersionLabel, set on a pod template (spec.serving.podLabels of a
// ModelDeployment), makes kwok fail the production pods whose
// serving.mlflow-operator.io/model-version label has the same value, about
// a second after they run. Candidates (role candidate) are spared, so this
// plays a version that passes its smoke test and then crashes under
// production traffic; the other versions' pods, carrying the same label,
// keep running.
const CrashVersionLabel = "chaos.mlflow-operator.io/crash-version"

// crashVersionStage is kwok's pod-container-running-failed stage narrowed
// to the pods of one model version (see CrashVersionLabel). kwok's
// selector keys are jq expressions, so one can compare two labels.
const crashVersionStage = `apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: crash-model-version
spec:
  resourceRef:
    apiGroup: v1
    kind: Pod
  selector:
    matchExpressions:
    - key: '.metadata.labels["` + CrashVersionLabel + `"]'
      operator: 'Exists'
    - key: '.metadata.labels["` + CrashVersionLabel + `"] == .metadata.labels["serving.mlflow-operator.io/model-version"]'
      operator: 'In'
      values: ['true']
    - key: '.metadata.labels["serving.mlflow-operator.io/role"]'
      operator: 'In'
      values: ['production']
    - key: '.metadata.deletionTimestamp'
      operator: 'DoesNotExist'
    - key: '.status.phase'
      operator: 'In'
      values: ['Running']
  delay:
    durationMilliseconds: 1000
    jitterDurationMilliseconds: 1000
  weight: 10000
  next:
    statusTemplate: |
      {{ $now := Now }}
      conditions:
      - lastProbeTime: null
        lastTransitionTime: {{ $now | Quote }}
        status: "True"
        reason: ""
        type: Initialized
      - lastTransitionTime: {{ $now | Quote }}
        status: "False"
        reason: ""
        type: Ready
      - lastTransitionTime: {{ $now | Quote }}
        status: "False"
        reason: ""
        type: ContainersReady
      containerStatuses:
      {{ range $index, $item := .spec.containers }}
      - image: {{ $item.image | Quote }}
        name: {{ $item.name | Quote }}
        ready: false
        restartCount: 0
        started: false
        state:
          terminated:
            exitCode: 1
            finishedAt: {{ $now | Quote }}
            reason: Error
            message: crashed (chaos.mlflow-operator.io/crash-version)
            startedAt: {{ $now | Quote }}
      {{ end }}
      hostIP: {{ NodeIPWith .spec.nodeName | Quote }}
      podIP: {{ PodIPWith .spec.nodeName ( or .spec.hostNetwork false ) ( or .metadata.uid "" ) ( or .metadata.name "" ) ( or .metadata.namespace "" ) | Quote }}
      phase: Failed
      startTime: {{ $now | Quote }}
`

// startKwok starts kwok with its stages and ours, and creates n fake nodes
// in two zones for it to manage.
func (c *Cluster) startKwok(ctx context.Context, bin string, n int) error {
	stages, err := script("--kwok-stages")
	if err != nil {
		return err
	}
	kwokArgs := []string{"--kubeconfig=" + c.Kubeconfig, "--manage-all-nodes=true", "--cidr=127.1.0.0/16", "--node-ip=127.0.0.1"}
	for _, s := range []string{"node/fast/node-initialize.yaml", "node/heartbeat/node-heartbeat.yaml",
		"pod/general/pod-create.yaml", "pod/general/pod-ready.yaml", "pod/general/pod-complete.yaml", "pod/general/pod-delete.yaml",
		"pod/general/pod-init-container-running.yaml", "pod/general/pod-init-container-completed.yaml",
		"pod/chaos/pod-container-running-failed.yaml"} {
		kwokArgs = append(kwokArgs, "--config="+filepath.Join(stages, s))
	}
	crashStage := filepath.Join(c.Dir, "crash-model-version.yaml")
	if err := os.WriteFile(crashStage, []byte(crashVersionStage), 0o644); err != nil {
		return err
	}
	kwokArgs = append(kwokArgs, "--config="+crashStage)
	if _, err := c.run(nil, filepath.Join(bin, "kwok"), kwokArgs...); err != nil {
		return err
	}
	for i := 0; i < n; i++ {
		name := fmt.Sprintf("node-%d", i)
		node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{
			Name:        name,
			Annotations: map[string]string{"kwok.x-k8s.io/node": "fake"},
			Labels: map[string]string{"kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
				"topology.kubernetes.io/zone": fmt.Sprintf("zone-%d", i%2), "type": "kwok"},
		}, Status: corev1.NodeStatus{Allocatable: corev1.ResourceList{}}}
		if err := c.Client.Create(ctx, node); err != nil {
			return fmt.Errorf("create node %s: %w", name, err)
		}
	}
	return nil
}
