package notify

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"time"
)

// maxResponse bounds what is read of a receiver's answer.
const maxResponse = 64 << 10

// Circuit breaker: after breakerFailures failed attempts in a row to one
// recipient of one service, attempts to it are skipped for breakerOpen.
// A receiver that hangs then costs no worker time.
const (
	breakerFailures = 5
	breakerOpen     = 30 * time.Second
)

// maxRedirects bounds the redirects followed, to the same host only.
const maxRedirects = 3

// newClient is the HTTP client of every delivery: bounded in time, TLS 1.2
// at least, redirects only to the same scheme and host (a webhook URL or
// token never follows a redirect elsewhere).
func newClient(rt http.RoundTripper, timeout time.Duration) *http.Client {
	if rt == nil {
		rt = &http.Transport{
			Proxy:                  http.ProxyFromEnvironment,
			DialContext:            (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			TLSClientConfig:        &tls.Config{MinVersion: tls.VersionTLS12},
			TLSHandshakeTimeout:    5 * time.Second,
			ResponseHeaderTimeout:  timeout,
			ExpectContinueTimeout:  time.Second,
			MaxIdleConns:           16,
			MaxIdleConnsPerHost:    2,
			IdleConnTimeout:        90 * time.Second,
			MaxResponseHeaderBytes: 64 << 10,
			ForceAttemptHTTP2:      true,
		}
	}
	return &http.Client{Transport: rt, Timeout: timeout, CheckRedirect: sameHost}
}

// errRedirect: a redirect was refused; trying again would not help.
var errRedirect = errors.New("redirect refused")

func sameHost(req *http.Request, via []*http.Request) error {
	if len(via) >= maxRedirects {
		return fmt.Errorf("%w: more than %d", errRedirect, maxRedirects)
	}
	if req.URL.Scheme != via[0].URL.Scheme || req.URL.Host != via[0].URL.Host {
		return fmt.Errorf("%w: to another host (%s)", errRedirect, req.URL.Host)
	}
	return nil
}

// redact keeps a URL's scheme and host: the path of a Slack or Teams
// webhook URL is its secret.
func redact(u *url.URL) string { return u.Scheme + "://" + u.Host }

// attempt makes one delivery attempt. Its error never holds a URL's path,
// a token or the body.
func (n *Notifier) attempt(ctx context.Context, d *delivery) error {
	key := d.service + "\x00" + d.recipient
	now := n.o.Clock.Now()
	if until, open := n.breakerOpen(key, now); open {
		return &deliveryError{msg: fmt.Sprintf("not tried: the receiver failed %d times in a row; next try after %s", breakerFailures, until.Format(time.RFC3339)), retryable: true}
	}
	ctx, cancel := context.WithTimeout(ctx, n.o.Timeout)
	defer cancel()
	req, err := d.svc.request(ctx, d, now)
	if err != nil {
		return &deliveryError{msg: "building the request: " + err.Error()}
	}
	target := redact(req.URL)
	resp, err := n.client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			// url.Error repeats the whole URL.
			err = ue.Err
		}
		refused := errors.Is(err, errRedirect)
		n.breakerResult(key, refused, now)
		return &deliveryError{msg: fmt.Sprintf("POST %s: %v", target, err), retryable: !refused}
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	_ = resp.Body.Close()
	if err := d.svc.check(resp.StatusCode, resp.Header, body); err != nil {
		var de *deliveryError
		if errors.As(err, &de) {
			de.msg = fmt.Sprintf("POST %s: %s", target, de.msg)
		}
		// Only a receiver that is down or overloaded opens the breaker.
		n.breakerResult(key, de == nil || !de.retryable, now)
		return err
	}
	n.breakerResult(key, true, now)
	return nil
}

type breaker struct {
	failures  int
	openUntil time.Time
}

func (n *Notifier) breakerOpen(key string, now time.Time) (time.Time, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	b := n.breakers[key]
	if b == nil || !now.Before(b.openUntil) {
		return time.Time{}, false
	}
	return b.openUntil, true
}

func (n *Notifier) breakerResult(key string, ok bool, now time.Time) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if ok {
		delete(n.breakers, key)
		return
	}
	b := n.breakers[key]
	if b == nil {
		if len(n.breakers) >= 1024 {
			return
		}
		b = &breaker{}
		n.breakers[key] = b
	}
	b.failures++
	if b.failures >= breakerFailures {
		b.failures = 0
		b.openUntil = now.Add(breakerOpen)
		n.log.Info("Notification receiver keeps failing; not tried for a while", "service", serviceOf(key), "for", breakerOpen.String())
	}
}

func serviceOf(key string) string {
	for i := range len(key) {
		if key[i] == 0 {
			return key[:i]
		}
	}
	return key
}

// jitter spreads d by ±20%.
func jitter(d time.Duration) time.Duration {
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}
