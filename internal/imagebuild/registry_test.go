package imagebuild

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/mlflow-operator/mlflow-operator/internal/failure"
)

func TestClassify(t *testing.T) {
	answer := func(status int, codes ...transport.ErrorCode) error {
		te := &transport.Error{StatusCode: status}
		for _, c := range codes {
			te.Errors = append(te.Errors, transport.Diagnostic{Code: c})
		}
		return fmt.Errorf("GET /v2/x: %w", te)
	}
	for _, tc := range []struct {
		name string
		err  error
		want failure.Kind
	}{
		{"401", answer(http.StatusUnauthorized), failure.Unauthorized},
		{"403", answer(http.StatusForbidden), failure.Unauthorized},
		{"404", answer(http.StatusNotFound), failure.NotFound},
		{"429", answer(http.StatusTooManyRequests), failure.Unreachable},
		{"503", answer(http.StatusServiceUnavailable), failure.Unreachable},
		{"400 DENIED", answer(http.StatusBadRequest, transport.DeniedErrorCode), failure.Unauthorized},
		{"400 UNAUTHORIZED", answer(http.StatusBadRequest, transport.UnauthorizedErrorCode), failure.Unauthorized},
		{"400 MANIFEST_UNKNOWN", answer(http.StatusBadRequest, transport.ManifestUnknownErrorCode), failure.NotFound},
		{"400 NAME_UNKNOWN", answer(http.StatusBadRequest, transport.NameUnknownErrorCode), failure.NotFound},
		{"400 BLOB_UNKNOWN", answer(http.StatusBadRequest, transport.BlobUnknownErrorCode), failure.NotFound},
		{"400 MANIFEST_INVALID", answer(http.StatusBadRequest, transport.ManifestInvalidErrorCode), failure.Other},
		{"connection refused", &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}, failure.Unreachable},
		{"deadline", fmt.Errorf("get: %w", context.DeadlineExceeded), failure.Unreachable},
		{"canceled", fmt.Errorf("get: %w", context.Canceled), failure.Other},
		{"other", errors.New("unexpected EOF"), failure.Other},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := classify("push r/x:t", tc.err)
			if failure.KindOf(err) != tc.want || failure.SubjectOf(err) != failure.Registry {
				t.Errorf("kind %v subject %q, want %v of the registry", failure.KindOf(err), failure.SubjectOf(err), tc.want)
			}
			if !errors.Is(err, tc.err) || err.Error() != "push r/x:t: "+tc.err.Error() {
				t.Errorf("error %q loses the cause or the step", err)
			}
		})
	}
}

// refusePush lets a client pull from any repository but push to none.
type refusePush struct{ next http.Handler }

func (h refusePush) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.WriteHeader(http.StatusForbidden)
		return
	}
	h.next.ServeHTTP(w, r)
}

// refuseBlobs serves manifests but no blob: the base's config cannot be read.
type refuseBlobs struct{ next http.Handler }

func (h refuseBlobs) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.Contains(r.URL.Path, "/blobs/") {
		w.WriteHeader(http.StatusNotFound)
		return
	}
	h.next.ServeHTTP(w, r)
}

// layerWriters counts the goroutines still writing a streamed layer.
func layerWriters() int {
	buf := make([]byte, 4<<20)
	n := runtime.Stack(buf, true)
	return strings.Count(string(buf[:n]), "imagebuild.streamModelLayer.func")
}

func TestFailedBuildLeavesNoLayerWriter(t *testing.T) {
	for _, tc := range []struct {
		name string
		wrap func(http.Handler) http.Handler
		want failure.Kind
		op   string
	}{
		{"push refused", func(h http.Handler) http.Handler { return refusePush{h} }, failure.Unauthorized, "push "},
		{"base config unreadable", func(h http.Handler) http.Handler { return refuseBlobs{h} }, failure.NotFound, "read base config"},
	} {
		for _, file := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s, layer file %v", tc.name, file), func(t *testing.T) {
				rec, host := newRegistry(t)
				base := pushBase(t, host, types.DockerManifestSchema2)
				srv := httptest.NewServer(tc.wrap(rec))
				t.Cleanup(srv.Close)
				u, _ := url.Parse(srv.URL)
				// The same registry's storage, through the refusing handler.
				base = u.Host + strings.TrimPrefix(base, host)
				_, err := (&Builder{LayerFile: file}).Build(context.Background(), request(modelDir(t), base, u.Host+"/models/iris", "t"))
				if failure.KindOf(err) != tc.want || failure.SubjectOf(err) != failure.Registry || !strings.HasPrefix(err.Error(), tc.op) {
					t.Fatalf("err %v (kind %v, subject %q), want %v of the registry at %q", err, failure.KindOf(err), failure.SubjectOf(err), tc.want, tc.op)
				}
				// Build waits for the writer it started: no need to poll.
				if n := layerWriters(); n != 0 {
					t.Errorf("%d layer writers left after a failed build", n)
				}
			})
		}
	}
}

func TestDefaultTransportBounded(t *testing.T) {
	for _, insecure := range []bool{false, true} {
		rt, ok := (&Builder{}).transport(insecure).(*http.Transport)
		if !ok {
			t.Fatalf("transport %T", rt)
		}
		if rt.ResponseHeaderTimeout != 30*time.Second || rt.TLSHandshakeTimeout != 10*time.Second || rt.DialContext == nil {
			t.Errorf("insecure %v: answer timeout %s, TLS handshake timeout %s", insecure, rt.ResponseHeaderTimeout, rt.TLSHandshakeTimeout)
		}
		if rt.Proxy == nil {
			t.Error("the proxy settings of the environment are lost")
		}
	}
	// A transport given is used as it is.
	given := &http.Transport{}
	if (&Builder{Transport: given}).transport(false) != given {
		t.Error("the Builder's Transport is not used")
	}
}

// silentListener accepts connections and never answers on them.
func silentListener(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return ln.Addr().String()
}

func TestSilentRegistryDoesNotHoldTheBuild(t *testing.T) {
	// No deadline in the context: the transport's bounds alone end it. The
	// test shortens them; TestDefaultTransportBounded checks the defaults.
	host := silentListener(t)
	for _, insecure := range []bool{false, true} { // TLS handshake, then plain HTTP answer
		t.Run(fmt.Sprintf("insecure %v", insecure), func(t *testing.T) {
			t.Parallel() // each waits out go-containerregistry's retries
			b := &Builder{timeouts: registryTimeouts{dial: time.Second, tlsHandshake: 200 * time.Millisecond, responseHeader: 200 * time.Millisecond}}
			req := request("", host+"/serving/base:1", host+"/models/iris", "t")
			req.Insecure = insecure
			done := make(chan error, 1)
			go func() {
				_, _, err := b.Lookup(context.Background(), req)
				done <- err
			}()
			select {
			case err := <-done:
				if failure.KindOf(err) != failure.Unreachable || failure.SubjectOf(err) != failure.Registry {
					t.Errorf("err %v (kind %v, subject %q), want the registry unreachable", err, failure.KindOf(err), failure.SubjectOf(err))
				}
			case <-time.After(time.Minute):
				t.Fatal("a registry that never answers held the lookup for a minute")
			}
		})
	}
}
