package webhook

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/event"

	v1alpha1 "github.com/mlflow-operator/mlflow-operator/api/v1alpha1"
	"github.com/mlflow-operator/mlflow-operator/internal/mlflow"
)

var secret = []byte("receiver-test-secret")

// receiver returns a Receiver over ModelDeployments following "iris" (two)
// and "wine" (one), and what it enqueued and invalidated.
func receiver(t *testing.T) (*Receiver, chan event.GenericEvent, *invalidated) {
	t.Helper()
	scheme := runtime.NewScheme()
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	md := func(ns, name, model string) *v1alpha1.ModelDeployment {
		return &v1alpha1.ModelDeployment{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
			Spec: v1alpha1.ModelDeploymentSpec{Model: v1alpha1.ModelReference{Name: model, Alias: "champion"}}}
	}
	c := fake.NewClientBuilder().WithScheme(scheme).
		WithIndex(&v1alpha1.ModelDeployment{}, IndexModelName, ModelNameIndexer).
		WithObjects(md("a", "iris", "iris"), md("b", "iris-too", "iris"), md("a", "wine", "wine")).Build()
	events := make(chan event.GenericEvent, 1000)
	inv := &invalidated{}
	return &Receiver{
		Verifier:   mlflow.NewWebhookVerifier(secret, 5*time.Minute, 1000, nil),
		Reader:     c,
		Invalidate: inv.add,
		Events:     events,
		Log:        logr.Discard(),
	}, events, inv
}

type invalidated struct {
	mu     sync.Mutex
	models []string
	at     []time.Time
}

func (i *invalidated) add(m string, at time.Time) {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.models = append(i.models, m)
	i.at = append(i.at, at)
}

func delivery(id, model string, sign []byte) *http.Request {
	body := []byte(fmt.Sprintf(`{"entity":"model_version_alias","action":"created","timestamp":"2026-11-26T12:00:00Z","data":{"name":%q,"alias":"champion","version":"2"}}`, model))
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	r := httptest.NewRequest(http.MethodPost, Path, bytes.NewReader(body))
	r.Header.Set(mlflow.HeaderDeliveryID, id)
	r.Header.Set(mlflow.HeaderTimestamp, ts)
	r.Header.Set(mlflow.HeaderSignature, mlflow.Sign(sign, id, ts, body))
	return r
}

func serve(w *Receiver, r *http.Request) int {
	rec := httptest.NewRecorder()
	w.ServeHTTP(rec, r)
	return rec.Code
}

func drain(ch chan event.GenericEvent) []string {
	var out []string
	for {
		select {
		case e := <-ch:
			out = append(out, e.Object.GetNamespace()+"/"+e.Object.GetName())
		default:
			return out
		}
	}
}

func TestDeliveries(t *testing.T) {
	w, events, inv := receiver(t)

	if code := serve(w, delivery("d-1", "iris", secret)); code != http.StatusAccepted {
		t.Fatalf("a signed delivery: HTTP %d", code)
	}
	got := drain(events)
	if strings.Join(got, ",") != "a/iris,b/iris-too" {
		t.Fatalf("enqueued %v, want the two ModelDeployments following iris", got)
	}
	if len(inv.models) != 1 || inv.models[0] != "iris" {
		t.Fatalf("invalidated %v, want [iris]", inv.models)
	}

	if code := serve(w, delivery("d-1", "iris", secret)); code != http.StatusOK {
		t.Errorf("a replayed delivery: HTTP %d, want 200 (stops the sender's retries)", code)
	}
	if code := serve(w, delivery("d-2", "iris", []byte("wrong secret"))); code != http.StatusUnauthorized {
		t.Errorf("a delivery signed with another secret: HTTP %d, want 401", code)
	}
	if code := serve(w, httptest.NewRequest(http.MethodGet, Path, nil)); code != http.StatusMethodNotAllowed {
		t.Errorf("GET: HTTP %d, want 405", code)
	}
	big := httptest.NewRequest(http.MethodPost, Path, bytes.NewReader(make([]byte, maxBody+1)))
	if code := serve(w, big); code != http.StatusRequestEntityTooLarge {
		t.Errorf("a body over %d bytes: HTTP %d, want 413", maxBody, code)
	}
	if got := drain(events); len(got) != 0 {
		t.Errorf("refused deliveries enqueued %v", got)
	}
	if code := serve(w, delivery("d-3", "unknown-model", secret)); code != http.StatusAccepted {
		t.Errorf("a delivery for a model nobody follows: HTTP %d", code)
	}
	if got := drain(events); len(got) != 0 {
		t.Errorf("a model nobody follows enqueued %v", got)
	}
}

// TestConcurrentDeliveries: MLflow's thread pool sends several at once.
func TestConcurrentDeliveries(t *testing.T) {
	w, events, _ := receiver(t)
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			model := []string{"iris", "wine"}[i%2]
			if code := serve(w, delivery(fmt.Sprintf("c-%d", i), model, secret)); code != http.StatusAccepted {
				t.Errorf("delivery %d: HTTP %d", i, code)
			}
		}()
	}
	wg.Wait()
	// 10 for iris (two each) and 10 for wine (one each).
	if got := len(drain(events)); got != 30 {
		t.Errorf("%d events, want 30", got)
	}
}

// TestServeStopsWithContext: the receiver is a manager Runnable; it must
// stop listening when the manager stops.
func TestServeStopsWithContext(t *testing.T) {
	w, events, _ := receiver(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Serve(ctx, ln) }()

	r := delivery("s-1", "wine", secret)
	r.RequestURI = ""
	r.URL.Scheme, r.URL.Host = "http", ln.Addr().String()
	resp, err := http.DefaultClient.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted || len(drain(events)) != 1 {
		t.Fatalf("over HTTP: %d", resp.StatusCode)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Serve: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after its context ended")
	}
	if _, err := net.DialTimeout("tcp", ln.Addr().String(), time.Second); err == nil {
		t.Fatal("still listening after the context ended")
	}
	if !w.NeedLeaderElection() {
		t.Fatal("a standby would take deliveries it cannot act on")
	}
}

// TestTLS: with CertDir, deliveries are taken over HTTPS only.
func TestTLS(t *testing.T) {
	dir := t.TempDir()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "webhooks"},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	if err := os.WriteFile(filepath.Join(dir, "tls.crt"), certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "tls.key"), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	w, events, _ := receiver(t)
	w.Addr, w.CertDir = fmt.Sprintf("127.0.0.1:%d", port), dir
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- w.Start(ctx) }()

	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(certPEM)
	httpsClient := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	send := func(c *http.Client, scheme string) (int, error) {
		r := delivery(fmt.Sprint("tls-", time.Now().UnixNano()), "wine", secret)
		r.RequestURI = ""
		r.URL.Scheme, r.URL.Host = scheme, w.Addr
		resp, err := c.Do(r)
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	var code int
	for range 50 {
		if code, err = send(httpsClient, "https"); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil || code != http.StatusAccepted || len(drain(events)) != 1 {
		t.Fatalf("over HTTPS: %d %v", code, err)
	}
	if code, err := send(http.DefaultClient, "http"); err == nil && code == http.StatusAccepted {
		t.Fatal("a plain-HTTP delivery was taken while TLS is on")
	}
	cancel()
	<-done
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
