package mlflow

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"syscall"
	"time"

	"github.com/mlflow-operator/mlflow-operator/internal/failure"
)

// Where the client's requests may go. The tracking server is named by the
// ModelDeployment, but everything else comes from MLflow's answers, which an
// attacker may write (anyone who can create a ModelDeployment can name a
// server of theirs): artifact URIs with other hosts, and redirects. The
// client follows them only to hosts the operator's administrator listed
// (WithArtifactHosts), sends credentials only to the tracking server
// (authorize), and its own transport never connects to addresses that reach
// the node or the cloud's metadata service (addressGuard).

// Transport timeouts of the client's own transport: a server that accepts a
// connection and then says nothing must not hold a worker. The body of an
// artifact has its own idle timeout (WithIdleTimeout).
const (
	dialTimeout           = 10 * time.Second
	tlsHandshakeTimeout   = 10 * time.Second
	responseHeaderTimeout = 30 * time.Second
	// maxRedirects is how many redirects one request follows.
	maxRedirects = 5
)

// newTransport is the client's own transport: the default one's settings
// (proxy from the environment, HTTP/2), the TLS settings of WithCA and
// WithInsecureSkipVerify, timeouts, and the dial guard.
func (c *Client) newTransport() (*http.Transport, error) {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = 16
	t.TLSHandshakeTimeout = tlsHandshakeTimeout
	t.ResponseHeaderTimeout = responseHeaderTimeout
	if c.caPEM != nil || c.insecure {
		cfg := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: c.insecure} //nolint:gosec // opt-in
		if c.caPEM != nil {
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(c.caPEM) {
				return nil, failure.Errorf(failure.Invalid, failure.MLflow, "the CA bundle holds no PEM certificate")
			}
			cfg.RootCAs = pool
		}
		t.TLSClientConfig = cfg
	}
	guard := addressGuard{loopback: isLoopbackHost(c.home.Hostname()), allowed: c.allowed}
	d := &net.Dialer{
		Timeout:   dialTimeout,
		KeepAlive: 30 * time.Second,
		// Control runs on the address being connected to, after DNS:
		// a name that resolves to a refused address is refused too.
		Control: func(_, address string, _ syscall.RawConn) error { return guard.check(address) },
	}
	hosts := c.hosts
	t.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		if host, port, err := net.SplitHostPort(addr); err == nil && hosts[host] != "" {
			addr = net.JoinHostPort(hosts[host], port)
		}
		return d.DialContext(ctx, network, addr)
	}
	return t, nil
}

// isLoopbackHost tells whether the tracking URI's host is loopback: an
// address in 127.0.0.0/8 or ::1, or localhost, which resolves to loopback
// only (RFC 6761). Tests and local setups run MLflow there, and then the
// client must connect to loopback.
func isLoopbackHost(host string) bool {
	if ip, err := netip.ParseAddr(host); err == nil {
		return ip.Unmap().IsLoopback()
	}
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	return host == "localhost" || strings.HasSuffix(host, ".localhost")
}

// addressGuard decides which addresses the client's transport connects to.
type addressGuard struct {
	// loopback allows loopback addresses: the tracking server is on one.
	loopback bool
	// allowed are the networks the administrator opened.
	allowed []*net.IPNet
}

// check refuses address (ip:port) when it is unspecified (0.0.0.0/8, ::),
// which reaches the node itself; link-local, where cloud metadata services
// answer with the node's credentials; or loopback, the operator's own pod,
// unless the tracking server is there. An address in an allowed network
// passes, unless it is unspecified, which is never a server.
func (g addressGuard) check(address string) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return failure.Errorf(failure.Refused, failure.MLflow, "cannot check the address %s before connecting", quote(address))
	}
	ip := ap.Addr().Unmap()
	var what string
	switch {
	case ip.IsUnspecified() || (ip.Is4() && ip.As4()[0] == 0):
		return failure.Errorf(failure.Refused, failure.MLflow, "connecting to %s is refused: it is the unspecified address", ip)
	case ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast():
		what = "link-local"
	case ip.IsLoopback() && !g.loopback:
		what = "loopback, and the tracking server is not"
	default:
		return nil
	}
	for _, n := range g.allowed {
		if n != nil && n.Contains(ip.AsSlice()) {
			return nil
		}
	}
	return failure.Errorf(failure.Refused, failure.MLflow,
		"connecting to %s is refused: the address is %s (operator flag --mlflow-allowed-addresses)", ip, what)
}

// hostAllowed tells whether requests may go to host (host[:port]): the
// tracking server's or a listed artifact host.
func (c *Client) hostAllowed(host string) bool {
	host = strings.ToLower(host)
	return host == strings.ToLower(c.home.Host) || c.artifactHosts[host]
}

// refuseHost is the failure for an artifact or redirect host that is neither
// the tracking server nor listed.
func refuseHost(host string) *failure.Error {
	return failure.Errorf(failure.Refused, failure.MLflow,
		"artifact host %s is not the tracking server and is not allowed (operator flag --mlflow-artifact-hosts)", quote(host))
}

// checkRedirect is the client's redirect policy: at most maxRedirects, each
// to the request's own host, the tracking server or a listed artifact host,
// and credentials set again for where the redirect goes (authorize), rather
// than trusting net/http to strip them: it keeps them across ports of one
// host name.
func (c *Client) checkRedirect(req *http.Request, via []*http.Request) error {
	if len(via) > maxRedirects {
		return failure.Errorf(failure.Other, failure.MLflow, "stopped after %d redirects", maxRedirects)
	}
	if !strings.EqualFold(req.URL.Host, via[0].URL.Host) && !c.hostAllowed(req.URL.Host) {
		return refuseHost(req.URL.Host)
	}
	c.authorize(req)
	return nil
}
