package buildpush

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1alpha1 "github.com/mlflow-operator/mlflow-operator/api/v1alpha1"
	"github.com/mlflow-operator/mlflow-operator/test/harness/mlflowserver"
)

// What the image steps say must be what happened: these are the cases where
// they once claimed more.

// slowBlobs slows the download of large model artifacts (blob.bin of the
// "sized" fixture models) to bytesPerSecond, so that a test can act while a
// build is downloading. Everything else passes untouched.
type slowBlobs struct {
	next           http.RoundTripper
	bytesPerSecond int
}

func (s slowBlobs) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := s.next.RoundTrip(r)
	if err != nil || !strings.HasSuffix(r.URL.Path, "/blob.bin") {
		return resp, err
	}
	resp.Body = &slowReader{ReadCloser: resp.Body, chunk: s.bytesPerSecond / 10}
	return resp, nil
}

type slowReader struct {
	io.ReadCloser
	chunk int
}

func (s *slowReader) Read(p []byte) (int, error) {
	time.Sleep(100 * time.Millisecond)
	return s.ReadCloser.Read(p[:min(len(p), s.chunk)])
}

// putCounter counts the manifests pushed to each repository.
type putCounter struct {
	mu   sync.Mutex
	puts map[string]int
}

var manifestPath = regexp.MustCompile(`^/v2/(.+)/manifests/[^/]+$`)

var manifestPuts = &putCounter{puts: map[string]int{}}

func (c *putCounter) RoundTrip(r *http.Request) (*http.Response, error) {
	if m := manifestPath.FindStringSubmatch(r.URL.Path); m != nil && r.Method == http.MethodPut {
		c.mu.Lock()
		c.puts[m[1]]++
		c.mu.Unlock()
	}
	return http.DefaultTransport.RoundTrip(r)
}

func (c *putCounter) count(repo string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.puts[repo]
}

// TestEnforceAppliesToReusedImages: an image pushed under the default Warn
// (its base lacks the model's packages) is found by a ModelDeployment with
// Enforce in another namespace. Reuse must not bypass the check: the
// verdict is the real one, and Enforce refuses what it would refuse on a
// fresh build. A Warn reuser is told the truth as well.
func TestEnforceAppliesToReusedImages(t *testing.T) {
	repo := reg.Host + "/models/enf"
	inRepo := func(md *v1alpha1.ModelDeployment) { md.Spec.Image.Repository = repo }
	ns1 := namespace(t)
	pushSecret(t, ns1, "registry", regUser, regPass)
	warn := newMD(t, ns1, "warn", bareBase, "registry", inRepo)
	eventually(t, 120*time.Second, "Warn pushes despite the missing packages", func() error {
		return cond(get(t, warn), v1alpha1.ConditionImageReady, metav1.ConditionTrue, v1alpha1.ReasonPushed)
	})

	ns2 := namespace(t)
	pushSecret(t, ns2, "registry", regUser, regPass)
	enforce := newMD(t, ns2, "enforce", bareBase, "registry", inRepo, func(md *v1alpha1.ModelDeployment) {
		md.Spec.Image.DependencyPolicy = v1alpha1.DependencyPolicyEnforce
	})
	warnAgain := newMD(t, ns2, "warn-again", bareBase, "registry", inRepo)
	eventually(t, 120*time.Second, "Enforce refuses the reused image", func() error {
		m := get(t, enforce)
		if err := cond(m, v1alpha1.ConditionDependenciesSatisfied, metav1.ConditionFalse, v1alpha1.ReasonDependenciesNotSatisfied); err != nil {
			return err
		}
		if msg := meta.FindStatusCondition(m.Status.Conditions, v1alpha1.ConditionDependenciesSatisfied).Message; !strings.Contains(msg, "missing") {
			return fmt.Errorf("the verdict does not name what is missing: %q", msg)
		}
		if err := cond(m, v1alpha1.ConditionImageReady, metav1.ConditionFalse, v1alpha1.ReasonDependenciesRefused); err != nil {
			return err
		}
		if m.Status.Target == nil || m.Status.Target.Image != "" {
			return fmt.Errorf("target %+v: Enforce took the image", m.Status.Target)
		}
		return cond(m, v1alpha1.ConditionStalled, metav1.ConditionTrue, v1alpha1.ReasonDependenciesRefused)
	})
	eventually(t, 120*time.Second, "Warn reuses and says the packages are missing", func() error {
		m := get(t, warnAgain)
		if err := cond(m, v1alpha1.ConditionImageReady, metav1.ConditionTrue, v1alpha1.ReasonReused); err != nil {
			return err
		}
		return cond(m, v1alpha1.ConditionDependenciesSatisfied, metav1.ConditionFalse, v1alpha1.ReasonDependenciesNotSatisfied)
	})
	if n := manifestPuts.count("models/enf"); n != 1 {
		t.Errorf("%d manifests pushed to models/enf, want 1 (the others reuse it)", n)
	}
}

// TestDeletedModelDeploymentStopsItsBuild: a ModelDeployment deleted while
// its model downloads has its build cancelled: nothing is pushed for an
// object that is gone.
func TestDeletedModelDeploymentStopsItsBuild(t *testing.T) {
	res, err := server.Fixture(context.Background(), mlflowserver.Op{"op": "register", "model": "big", "kind": "sized", "size_bytes": 48 << 20, "alias": "champion"})
	if err != nil {
		t.Fatal(err)
	}
	ns := namespace(t)
	pushSecret(t, ns, "registry", regUser, regPass)
	md := newMD(t, ns, "big", fullBase, "registry", func(md *v1alpha1.ModelDeployment) {
		md.Spec.Model.Name = "big"
		md.Spec.Image.Repository = reg.Host + "/models/big"
	})
	eventually(t, 60*time.Second, "downloading", func() error {
		c := meta.FindStatusCondition(get(t, md).Status.Conditions, v1alpha1.ConditionImageReady)
		if c == nil || !strings.Contains(c.Message, "downloading the model") {
			return fmt.Errorf("ImageReady %+v", c)
		}
		return nil
	})
	if err := k8s.Delete(context.Background(), md); err != nil {
		t.Fatal(err)
	}
	// The download alone takes 6 s at the test's 8 MiB/s; the push would
	// follow it. Wait well past both.
	time.Sleep(15 * time.Second)
	if m := reg.Manifests("models/big"); len(m) != 0 || manifestPuts.count("models/big") != 0 {
		t.Fatalf("version %s of a deleted ModelDeployment was pushed: %v", res[0].Version, m)
	}
}

// TestOneBuildPerTag: two namespaces follow one model version into one
// repository at the same time. One pushes; the other waits for it, finds
// the image with its own credentials and reuses it.
func TestOneBuildPerTag(t *testing.T) {
	repo := reg.Host + "/models/shared"
	var mds []*v1alpha1.ModelDeployment
	for range 2 {
		ns := namespace(t)
		pushSecret(t, ns, "registry", regUser, regPass)
		mds = append(mds, newMD(t, ns, "iris", fullBase, "registry", func(md *v1alpha1.ModelDeployment) { md.Spec.Image.Repository = repo }))
	}
	reasons := map[v1alpha1.Reason]int{}
	images := map[string]bool{}
	for _, md := range mds {
		eventually(t, 120*time.Second, "image of "+md.Namespace, func() error {
			c := meta.FindStatusCondition(get(t, md).Status.Conditions, v1alpha1.ConditionImageReady)
			if c == nil || c.Status != metav1.ConditionTrue {
				return fmt.Errorf("ImageReady %+v", c)
			}
			reasons[v1alpha1.Reason(c.Reason)]++
			images[get(t, md).Status.Target.Image] = true
			return nil
		})
	}
	if n := manifestPuts.count("models/shared"); n != 1 {
		t.Errorf("%d pushes of one tag, want 1", n)
	}
	if reasons[v1alpha1.ReasonPushed] != 1 || reasons[v1alpha1.ReasonReused] != 1 || len(images) != 1 {
		t.Errorf("reasons %v images %v: want one Pushed and one Reused of one image", reasons, images)
	}
}
