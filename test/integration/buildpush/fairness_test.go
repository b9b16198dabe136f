package buildpush

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1alpha1 "github.com/mlflow-operator/mlflow-operator/api/v1alpha1"
)

// tarpit stands in front of the real MLflow server as a hostile one would:
// it answers the registry API, and starts every artifact download, then
// sends nothing more until the test ends.
func tarpit(t *testing.T) string {
	t.Helper()
	target, err := url.Parse(server.URL)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(target)
	director := proxy.Director
	proxy.Director = func(r *http.Request) {
		director(r)
		r.Host = target.Host // MLflow checks the Host header
	}
	done := make(chan struct{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/api/2.0/mlflow-artifacts/artifacts/") {
			w.Header().Set("Content-Length", "1000000")
			w.WriteHeader(http.StatusOK)
			_, _ = w.Write([]byte("x"))
			w.(http.Flusher).Flush()
			select {
			case <-done:
			case <-r.Context().Done():
			}
			return
		}
		proxy.ServeHTTP(w, r)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() {
		close(done)
		srv.Close()
	})
	return "http://" + ln.Addr().String()
}

// TestTarpitDoesNotStarveOtherNamespaces: two ModelDeployments of one
// namespace point at a server that never finishes a download. A healthy
// ModelDeployment in another namespace is built at once all the same: one
// namespace holds at most half the build workers.
func TestTarpitDoesNotStarveOtherNamespaces(t *testing.T) {
	slow := tarpit(t)
	ns := namespace(t)
	pushSecret(t, ns, "registry", regUser, regPass)
	for _, name := range []string{"tarpit-a", "tarpit-b"} {
		newMD(t, ns, name, fullBase, "registry", func(md *v1alpha1.ModelDeployment) {
			md.Spec.MLflow.TrackingURI = slow
			md.Spec.Image.Repository = reg.Host + "/models/" + name
		})
	}
	eventually(t, 60*time.Second, "a tarpit download under way", func() error {
		for _, name := range []string{"tarpit-a", "tarpit-b"} {
			m := get(t, &v1alpha1.ModelDeployment{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}})
			if c := meta.FindStatusCondition(m.Status.Conditions, v1alpha1.ConditionImageReady); c != nil && strings.Contains(c.Message, "downloading") {
				return nil
			}
		}
		return fmt.Errorf("no tarpit download yet")
	})

	healthyNS := namespace(t)
	pushSecret(t, healthyNS, "registry", regUser, regPass)
	healthy := newMD(t, healthyNS, "healthy", fullBase, "registry", func(md *v1alpha1.ModelDeployment) {
		md.Spec.Image.Repository = reg.Host + "/models/healthy"
	})
	start := time.Now()
	eventually(t, 30*time.Second, "the healthy namespace's image", func() error {
		return cond(get(t, healthy), v1alpha1.ConditionImageReady, metav1.ConditionTrue, "")
	})
	t.Logf("MEASURED healthy image ready %s after creation, beside two tarpit builds", time.Since(start).Round(100*time.Millisecond))
}
