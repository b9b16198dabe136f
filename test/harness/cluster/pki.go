package cluster

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"github.com/mlflow-operator/mlflow-operator/test/harness/realnode"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// pki is the cluster's certificates and keys, written to dir.
type pki struct {
	caCert, caKey         string
	serverCert, serverKey string
	adminCert, adminKey   string
	saKey, saPub          string
	caPEM                 []byte
	adminCertPEM          []byte
	adminKeyPEM           []byte

	// What leaf signs with.
	dir      string
	ca       *x509.Certificate
	caSigner *ecdsa.PrivateKey
	serial   int64
}

func writePEM(path, typ string, der []byte) ([]byte, error) {
	b := pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
	return b, os.WriteFile(path, b, 0o600)
}

// newPKI makes a CA, a serving certificate for the API server on loopback,
// an admin client certificate (group system:masters) and the
// service-account signing key pair.
func newPKI(dir string) (*pki, error) {
	p := &pki{
		caCert: filepath.Join(dir, "ca.crt"), caKey: filepath.Join(dir, "ca.key"),
		serverCert: filepath.Join(dir, "apiserver.crt"), serverKey: filepath.Join(dir, "apiserver.key"),
		adminCert: filepath.Join(dir, "admin.crt"), adminKey: filepath.Join(dir, "admin.key"),
		saKey: filepath.Join(dir, "sa.key"), saPub: filepath.Join(dir, "sa.pub"),
	}
	now := time.Now().Add(-time.Hour)
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "mlflow-operator-local-ca"},
		NotBefore: now, NotAfter: now.Add(10 * 365 * 24 * time.Hour),
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature, IsCA: true, BasicConstraintsValid: true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	p.ca, _ = x509.ParseCertificate(caDER)
	p.caSigner, p.dir, p.serial = caKey, dir, 1
	if p.caPEM, err = writePEM(p.caCert, "CERTIFICATE", caDER); err != nil {
		return nil, err
	}
	caKeyDER, _ := x509.MarshalECPrivateKey(caKey)
	if _, err := writePEM(p.caKey, "EC PRIVATE KEY", caKeyDER); err != nil {
		return nil, err
	}

	if _, _, err := p.leaf(&x509.Certificate{
		Subject:     pkix.Name{CommonName: "kube-apiserver"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:    []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc"},
		// The real node's pods reach it at the kubernetes Service's IP, its
		// endpoint at the node's IP.
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("10.0.0.1"), net.ParseIP(realnode.NodeIP)},
	}, p.serverCert, p.serverKey); err != nil {
		return nil, err
	}
	if p.adminCertPEM, p.adminKeyPEM, err = p.leaf(&x509.Certificate{
		Subject:     pkix.Name{CommonName: "admin", Organization: []string{"system:masters"}},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}, p.adminCert, p.adminKey); err != nil {
		return nil, err
	}

	saKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	if _, err := writePEM(p.saKey, "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(saKey)); err != nil {
		return nil, err
	}
	pubDER, _ := x509.MarshalPKIXPublicKey(&saKey.PublicKey)
	if _, err := writePEM(p.saPub, "PUBLIC KEY", pubDER); err != nil {
		return nil, err
	}
	return p, nil
}

// leaf signs a certificate from tmpl (subject, usages, names) with the CA,
// for a year, and writes it and its new key.
func (p *pki) leaf(tmpl *x509.Certificate, certPath, keyPath string) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	p.serial++
	now := time.Now().Add(-time.Hour)
	tmpl.SerialNumber, tmpl.NotBefore, tmpl.NotAfter = big.NewInt(p.serial), now, now.Add(365*24*time.Hour)
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.ca, &key.PublicKey, p.caSigner)
	if err != nil {
		return nil, nil, err
	}
	if certPEM, err = writePEM(certPath, "CERTIFICATE", der); err != nil {
		return nil, nil, err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	keyPEM, err = writePEM(keyPath, "EC PRIVATE KEY", keyDER)
	return certPEM, keyPEM, err
}

// nodePKI is a real node's certificates.
type nodePKI struct {
	// apiserverClientCert/Key: the API server's identity towards the
	// kubelet (logs, exec), in system:masters.
	apiserverClientCert, apiserverClientKey string
	// kubeletCert/Key: the kubelet's serving certificate for its node IP,
	// so the API server verifies whom it talks to.
	kubeletCert, kubeletKey string
	// nodeCertPEM/KeyPEM: the node's identity (system:node:<name> in
	// system:nodes), what the Node authorizer and NodeRestriction know.
	nodeCertPEM, nodeKeyPEM []byte
}

func (p *pki) node(name, ip string) (*nodePKI, error) {
	n := &nodePKI{
		apiserverClientCert: filepath.Join(p.dir, "apiserver-kubelet-client.crt"),
		apiserverClientKey:  filepath.Join(p.dir, "apiserver-kubelet-client.key"),
		kubeletCert:         filepath.Join(p.dir, "kubelet.crt"),
		kubeletKey:          filepath.Join(p.dir, "kubelet.key"),
	}
	if _, _, err := p.leaf(&x509.Certificate{
		Subject:     pkix.Name{CommonName: "kube-apiserver-kubelet-client", Organization: []string{"system:masters"}},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}, n.apiserverClientCert, n.apiserverClientKey); err != nil {
		return nil, fmt.Errorf("kubelet client certificate: %w", err)
	}
	if _, _, err := p.leaf(&x509.Certificate{
		Subject:     pkix.Name{CommonName: "system:node:" + name, Organization: []string{"system:nodes"}},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:    []string{name, "localhost"},
		IPAddresses: []net.IP{net.ParseIP(ip), net.ParseIP("127.0.0.1")},
	}, n.kubeletCert, n.kubeletKey); err != nil {
		return nil, fmt.Errorf("kubelet serving certificate: %w", err)
	}
	var err error
	if n.nodeCertPEM, n.nodeKeyPEM, err = p.leaf(&x509.Certificate{
		Subject:     pkix.Name{CommonName: "system:node:" + name, Organization: []string{"system:nodes"}},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}, filepath.Join(p.dir, "node.crt"), filepath.Join(p.dir, "node.key")); err != nil {
		return nil, fmt.Errorf("node client certificate: %w", err)
	}
	return n, nil
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
