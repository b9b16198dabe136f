package chart

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestBadValuesRefused: values.schema.json and the templates refuse what
// would give a broken operator, and the message names the value.
func TestBadValuesRefused(t *testing.T) {
	requireHelm(t)
	cases := []struct {
		name, values, want string
	}{
		{"misspelt key", "replicas: 2", "additional properties 'replicas' not allowed"},
		{"misspelt nested key", "metrics:\n  serviceMonitor:\n    enable: true", "/metrics/serviceMonitor"},
		{"misspelt rule key", "metrics:\n  prometheusRule:\n    enable: true", "/metrics/prometheusRule"},
		{"rule label not text", "metrics:\n  prometheusRule:\n    labels:\n      release: [a]", "/metrics/prometheusRule/labels/release"},
		{"no replica", "replicaCount: 0", "/replicaCount"},
		{"replicas as text", "replicaCount: two", "/replicaCount"},
		{"short digest", "image:\n  digest: sha256:abc", "/image/digest"},
		{"tag in the repository", "image:\n  repository: ghcr.io/x/y:v1", "/image/repository"},
		{"pull policy", "image:\n  pullPolicy: Sometimes", "/image/pullPolicy"},
		{"namespace name", "watchNamespaces: [Team_A]", "/watchNamespaces/0"},
		{"namespace twice", "watchNamespaces: [team-a, team-a]", "/watchNamespaces"},
		{"duration", "buildTimeout: 30 minutes", "/buildTimeout"},
		{"quantity", "maxModelBytes: 8 GB", "/maxModelBytes"},
		{"volume size", "tempVolume:\n  sizeLimit: lots", "/tempVolume/sizeLimit"},
		{"no build worker", "buildWorkers: 0", "/buildWorkers"},
		{"gogc", "gogc: fast", "/gogc"},
		{"gogc zero", "gogc: 0", "/gogc"},
		{"grant without prefix", "operatorRegistryCredentials:\n  - namespace: team-a", "repositoryPrefix"},
		{"grant prefix without path", "operatorRegistryCredentials:\n  - namespace: team-a\n    repositoryPrefix: myacr.azurecr.io", "/operatorRegistryCredentials/0/repositoryPrefix"},
		{"unknown cloud identity", "registryCloudIdentities: [aws]", "/registryCloudIdentities/0"},
		{"CIDR", "mlflowAllowedAddresses: [169.254.169.254]", "/mlflowAllowedAddresses/0"},
		{"port", "metrics:\n  port: 70000", "/metrics/port"},
		{"flag without dashes", "extraArgs: [zap-log-level=debug]", "/extraArgs/0"},
		{"env without name", "extraEnv:\n  - value: x", "/extraEnv/0"},
		{"webhook without secret", "webhook:\n  enabled: true", "set webhook.existingSecret"},
		{"webhook with two secrets", "webhook:\n  enabled: true\n  secret: a\n  existingSecret: b", "not both"},
		{"port clash", "webhook:\n  enabled: true\n  secret: a\n  port: 8443", "must differ"},
		{"health port", "metrics:\n  port: 8081", "health probes' port"},
		{"no service account", "serviceAccount:\n  create: false", "serviceAccount.name is required"},
	}
	dir := t.TempDir()
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			file := filepath.Join(dir, strings.ReplaceAll(c.name, " ", "-")+".yaml")
			if err := os.WriteFile(file, []byte(c.values+"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			out, err := helm("template", releaseName, chartDir, "--namespace", releaseNS, "-f", file)
			if err == nil {
				t.Fatalf("case %d accepted:\n%s", i, c.values)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("refused, but the message does not say %q:\n%v\n%s", c.want, err, out)
			}
		})
	}
}
