package cluster

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
)

// auditArgs writes an audit policy that records the requests of users
// only, at level Metadata (who, verb, resource, answer code; no bodies):
// a request once its answer is complete, a watch once it started (its
// completion may be many minutes later). The log is not rotated.
func (c *Cluster) auditArgs(users []string) ([]string, error) {
	u, err := json.Marshal(users)
	if err != nil {
		return nil, err
	}
	policy := fmt.Sprintf(`apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
- level: Metadata
  users: %s
  verbs: ["watch"]
  omitStages: ["ResponseComplete"]
- level: Metadata
  users: %s
- level: None
`, u, u)
	path := filepath.Join(c.Dir, "audit-policy.yaml")
	if err := os.WriteFile(path, []byte(policy), 0o644); err != nil {
		return nil, err
	}
	c.AuditLog = filepath.Join(c.Dir, "audit.log")
	return []string{"--audit-policy-file=" + path, "--audit-log-path=" + c.AuditLog, "--audit-log-format=json",
		"--audit-log-mode=blocking", "--audit-log-maxsize=100000", "--audit-log-maxbackup=0"}, nil
}

// UserKubeconfig writes a kubeconfig for a user of its own, name, in group
// system:masters (it may do anything, as the admin): its requests are told
// apart from the others', in the audit log (Options.AuditUsers) and in
// the API server's view. It returns the kubeconfig's path.
func (c *Cluster) UserKubeconfig(name string) (string, error) {
	if c.pki == nil || c.server == "" {
		return "", fmt.Errorf("the cluster is not started")
	}
	file := filepath.Join(c.Dir, "user-"+name)
	certPEM, keyPEM, err := c.pki.leaf(&x509.Certificate{
		Subject:     pkix.Name{CommonName: name, Organization: []string{"system:masters"}},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}, file+".crt", file+".key")
	if err != nil {
		return "", err
	}
	path := file + ".kubeconfig"
	return path, writeKubeconfig(path, c.server, name, c.pki.caPEM, certPEM, keyPEM)
}
