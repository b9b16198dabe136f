package controllers_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/mlflow-operator/mlflow-operator/api/v1alpha1"
	"github.com/mlflow-operator/mlflow-operator/internal/resolver"
	"github.com/mlflow-operator/mlflow-operator/test/harness/testenv"
)

// envtest runs no controllers and no pods: these tests play the deployment
// controller (Deployment status) and the kubelet (a Pod with an IP and a
// Ready condition), and stand a real HTTP server on 127.0.0.1 where the
// candidate pod would listen, so the operator's smoke test really crosses
// the network.

// scoringServer is where a candidate pod's scoring server would listen.
type scoringServer struct {
	port   int32
	mu     sync.Mutex
	bodies []string
	status int
	hold   chan struct{} // when set, answers wait for it to close
}

func newScoringServer(t *testing.T) *scoringServer {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &scoringServer{port: int32(l.Addr().(*net.TCPAddr).Port), status: http.StatusOK}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		s.bodies = append(s.bodies, r.Method+" "+r.URL.Path+" "+string(body))
		status, hold := s.status, s.hold
		s.mu.Unlock()
		if hold != nil {
			select {
			case <-hold:
			case <-r.Context().Done():
				return
			}
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		if status == http.StatusOK {
			fmt.Fprint(w, `{"predictions": [0]}`)
		} else {
			fmt.Fprint(w, `{"error_code": "BAD_REQUEST", "message": "this model version is broken on purpose"}`)
		}
	})}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return s
}

func (s *scoringServer) setStatus(code int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.status = code
}

// hang makes the server hold its answers until release is called.
func (s *scoringServer) hang() (release func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hold = make(chan struct{})
	return sync.OnceFunc(func() { close(s.hold) })
}

func (s *scoringServer) requests() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.bodies...)
}

// serving creates a ModelDeployment whose version 1 serves (verified without
// smoke test), then turns the smoke test on, with the scoring port of srv.
func serving(t *testing.T, srv *scoringServer, mutate ...func(*v1alpha1.ModelDeployment)) *v1alpha1.ModelDeployment {
	t.Helper()
	md := setup(t, append([]func(*v1alpha1.ModelDeployment){func(md *v1alpha1.ModelDeployment) { md.Spec.Serving.Port = srv.port }}, mutate...)...)
	completeRollout(t, md)
	eventually(t, "v1 serves", func() error {
		m := getMD(t, md)
		if m.Status.Serving == nil || m.Status.Serving.Version != "1" {
			return fmt.Errorf("serving %+v", m.Status.Serving)
		}
		return wantCondition(m, v1alpha1.ConditionReady, metav1.ConditionTrue, "")
	})
	updateMD(t, md, func(m *v1alpha1.ModelDeployment) { m.Spec.Rollout.SmokeTest.Enabled = ptr.To(true) })
	return md
}

// moveTo makes the registry answer version v with image.
func moveTo(t *testing.T, md *v1alpha1.ModelDeployment, v, image string) {
	t.Helper()
	fake.Set(client.ObjectKeyFromObject(md), answer{Version: resolver.ModelVersion{Version: v, RunID: "run" + v}, Image: image})
	touch(t, md)
}

// candidateUp waits for the candidate of image, reports it available and
// creates its Ready pod at 127.0.0.1 (or a pod in the given waiting state).
func candidateUp(t *testing.T, md *v1alpha1.ModelDeployment, image string, waiting string) {
	t.Helper()
	ctx := context.Background()
	key := client.ObjectKey{Namespace: md.Namespace, Name: md.Name + "-candidate"}
	cand := &appsv1.Deployment{}
	eventually(t, "candidate of "+image, func() error {
		if err := k8s.Get(ctx, key, cand); err != nil {
			return err
		}
		if got := cand.Spec.Template.Spec.Containers[0].Image; got != image {
			return fmt.Errorf("candidate runs %s", got)
		}
		return nil
	})
	createPod(t, md, "candidate-"+strconv.FormatInt(time.Now().UnixNano(), 36), cand.Spec.Template, waiting)
	if waiting == "" {
		testenv.CompleteDeployment(t, k8s, key)
	}
}

// createPod creates a pod from a template with the status a kubelet would
// write: Running and Ready at 127.0.0.1, or waiting for a reason.
func createPod(t *testing.T, md *v1alpha1.ModelDeployment, name string, tmpl corev1.PodTemplateSpec, waiting string) {
	t.Helper()
	ctx := context.Background()
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: md.Namespace, Labels: tmpl.Labels}, Spec: tmpl.Spec}
	if err := k8s.Create(ctx, pod); err != nil {
		t.Fatal(err)
	}
	pod.Status = corev1.PodStatus{Phase: corev1.PodRunning, PodIP: "127.0.0.1", PodIPs: []corev1.PodIP{{IP: "127.0.0.1"}}}
	cs := corev1.ContainerStatus{Name: "model", Image: tmpl.Spec.Containers[0].Image, Ready: waiting == ""}
	if waiting == "" {
		pod.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: metav1.Now()}}
		cs.State.Running = &corev1.ContainerStateRunning{StartedAt: metav1.Now()}
	} else {
		pod.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionFalse, LastTransitionTime: metav1.Now()}}
		cs.State.Waiting = &corev1.ContainerStateWaiting{Reason: waiting, Message: "back-off restarting failed container"}
		cs.RestartCount = 4
	}
	pod.Status.ContainerStatuses = []corev1.ContainerStatus{cs}
	if err := k8s.Status().Update(ctx, pod); err != nil {
		t.Fatal(err)
	}
}

func candidateGone(md *v1alpha1.ModelDeployment) error {
	err := k8s.Get(context.Background(), client.ObjectKey{Namespace: md.Namespace, Name: md.Name + "-candidate"}, &appsv1.Deployment{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	return fmt.Errorf("candidate still there (%v)", err)
}

func events(t *testing.T, md *v1alpha1.ModelDeployment) map[v1alpha1.Reason]string {
	t.Helper()
	list := &eventsv1.EventList{}
	if err := k8s.List(context.Background(), list, client.InNamespace(md.Namespace)); err != nil {
		t.Fatal(err)
	}
	out := map[v1alpha1.Reason]string{}
	for _, e := range list.Items {
		if e.Regarding.Name == md.Name {
			out[v1alpha1.Reason(e.Reason)] = e.Type
		}
	}
	return out
}

func TestVerifiedCandidateIsPromoted(t *testing.T) {
	srv := newScoringServer(t)
	md := serving(t, srv)
	moveTo(t, md, "2", imageV2)
	candidateUp(t, md, imageV2, "")

	eventually(t, "promoted after the smoke test", func() error {
		if img := image(getDeployment(t, md)); img != imageV2 {
			return fmt.Errorf("production runs %s", img)
		}
		return candidateGone(md)
	})
	reqs := srv.requests()
	if len(reqs) != 1 || reqs[0] != "POST /invocations "+exampleBody {
		t.Errorf("scoring server received %q, want one POST /invocations of the model's input example", reqs)
	}
	eventually(t, "status says promoting", func() error {
		m := getMD(t, md)
		if err := wantCondition(m, v1alpha1.ConditionCandidateVerified, metav1.ConditionTrue, "Verified"); err != nil {
			return err
		}
		if m.Status.Promoting == nil || m.Status.Promoting.Version != "2" || m.Status.Serving.Version != "1" {
			return fmt.Errorf("promoting %+v serving %+v: v1 serves until v2 is rolled out", m.Status.Promoting, m.Status.Serving)
		}
		return nil
	})

	completeRollout(t, md)
	eventually(t, "v2 serves", func() error {
		m := getMD(t, md)
		if m.Status.Serving == nil || m.Status.Serving.Version != "2" || m.Status.LastGood == nil || m.Status.LastGood.Version != "2" || m.Status.Promoting != nil {
			return fmt.Errorf("serving %+v lastGood %+v promoting %+v", m.Status.Serving, m.Status.LastGood, m.Status.Promoting)
		}
		if len(m.Status.History) == 0 || m.Status.History[0].Version != "2" || m.Status.History[0].Outcome != "Succeeded" || m.Status.History[0].End == nil {
			return fmt.Errorf("history %+v", m.Status.History)
		}
		return wantCondition(m, v1alpha1.ConditionReady, metav1.ConditionTrue, "")
	})
	if ev := events(t, md); ev["Promoted"] != "Normal" || ev[v1alpha1.ReasonRolloutComplete] != "Normal" {
		t.Errorf("events %v lack Promoted and RolloutComplete", ev)
	}
}

func TestSmokeTestFailureLeavesProductionAlone(t *testing.T) {
	srv := newScoringServer(t)
	md := serving(t, srv)
	srv.setStatus(http.StatusBadRequest)
	moveTo(t, md, "2", imageV2)
	candidateUp(t, md, imageV2, "")

	eventually(t, "version 2 failed", func() error {
		m := getMD(t, md)
		if err := wantCondition(m, v1alpha1.ConditionCandidateVerified, metav1.ConditionFalse, "SmokeTestFailed"); err != nil {
			return err
		}
		if len(m.Status.FailedVersions) != 1 || m.Status.FailedVersions[0].Version != "2" || !strings.Contains(m.Status.FailedVersions[0].Message, "HTTP 400") {
			return fmt.Errorf("failedVersions %+v", m.Status.FailedVersions)
		}
		if err := wantCondition(m, v1alpha1.ConditionStalled, metav1.ConditionTrue, ""); err != nil {
			return err
		}
		if err := wantCondition(m, v1alpha1.ConditionReady, metav1.ConditionFalse, ""); err != nil {
			return err
		}
		return candidateGone(md)
	})
	if img := image(getDeployment(t, md)); img != imageV1 {
		t.Errorf("production runs %s after a failed candidate", img)
	}
	m := getMD(t, md)
	if m.Status.Serving.Version != "1" || m.Status.LastGood.Version != "1" {
		t.Errorf("serving %+v lastGood %+v", m.Status.Serving, m.Status.LastGood)
	}
	if ev := events(t, md); ev["SmokeTestFailed"] != "Warning" {
		t.Errorf("events %v: no SmokeTestFailed warning", ev)
	}

	// No flapping: polls keep the failed version away.
	srv.setStatus(http.StatusOK)
	for i := 0; i < 3; i++ {
		touch(t, md)
	}
	consistently(t, "failed version not retried by polling", 2*time.Second, func() error {
		if err := candidateGone(md); err != nil {
			return err
		}
		if img := image(getDeployment(t, md)); img != imageV1 {
			return fmt.Errorf("production runs %s", img)
		}
		return nil
	})

	// The retry annotation gives it one more try.
	patch := []byte(`{"metadata":{"annotations":{"` + v1alpha1.AnnotationRetry + `":"2"}}}`)
	if err := k8s.Patch(context.Background(), md, client.RawPatch("application/merge-patch+json", patch)); err != nil {
		t.Fatal(err)
	}
	candidateUp(t, md, imageV2, "")
	eventually(t, "retried and promoted", productionRuns(t, md, imageV2))
}

func TestCandidateCrashLoopFails(t *testing.T) {
	srv := newScoringServer(t)
	md := serving(t, srv)
	moveTo(t, md, "2", imageV2)
	candidateUp(t, md, imageV2, "CrashLoopBackOff")
	eventually(t, "candidate failure", func() error {
		m := getMD(t, md)
		if err := wantCondition(m, v1alpha1.ConditionCandidateVerified, metav1.ConditionFalse, "CandidateFailed"); err != nil {
			return err
		}
		if !strings.Contains(condition(m, v1alpha1.ConditionCandidateVerified).Message, "CrashLoopBackOff") {
			return fmt.Errorf("message %q", condition(m, v1alpha1.ConditionCandidateVerified).Message)
		}
		return candidateGone(md)
	})
	if img := image(getDeployment(t, md)); img != imageV1 {
		t.Errorf("production runs %s", img)
	}
	if len(srv.requests()) != 0 {
		t.Errorf("a crash-looping candidate was smoke-tested: %v", srv.requests())
	}

	// The garbage collector removes the deleted candidate's pod (envtest
	// runs none); then a changed spec gives the version another chance.
	if err := k8s.DeleteAllOf(context.Background(), &corev1.Pod{}, client.InNamespace(md.Namespace)); err != nil {
		t.Fatal(err)
	}
	updateMD(t, md, func(m *v1alpha1.ModelDeployment) {
		m.Spec.Serving.Env = []corev1.EnvVar{{Name: "OMP_NUM_THREADS", Value: "1"}}
	})
	eventually(t, "new candidate after the spec change", func() error {
		d := &appsv1.Deployment{}
		if err := k8s.Get(context.Background(), client.ObjectKey{Namespace: md.Namespace, Name: md.Name + "-candidate"}, d); err != nil {
			return err
		}
		if len(d.Spec.Template.Spec.Containers[0].Env) != 1 {
			return fmt.Errorf("candidate env %v", d.Spec.Template.Spec.Containers[0].Env)
		}
		return nil
	})
}

func TestCandidateNotReadyBeforeDeadline(t *testing.T) {
	srv := newScoringServer(t)
	md := serving(t, srv, func(md *v1alpha1.ModelDeployment) {
		md.Spec.Rollout.ProgressDeadline = &metav1.Duration{Duration: 10 * time.Second}
	})
	moveTo(t, md, "2", imageV2)
	eventually(t, "candidate created", func() error {
		return k8s.Get(context.Background(), client.ObjectKey{Namespace: md.Namespace, Name: md.Name + "-candidate"}, &appsv1.Deployment{})
	})
	// Nobody reports it Ready: after the 10 s deadline it fails.
	testenv.Eventually(t, 40*time.Second, "candidate timed out", func() error {
		m := getMD(t, md)
		if err := wantCondition(m, v1alpha1.ConditionCandidateVerified, metav1.ConditionFalse, "CandidateNotReady"); err != nil {
			return err
		}
		return candidateGone(md)
	})
	if img := image(getDeployment(t, md)); img != imageV1 {
		t.Errorf("production runs %s", img)
	}
}

// promoted brings md from v1 to a promoted (not yet rolled out) v2.
func promoted(t *testing.T, srv *scoringServer) *v1alpha1.ModelDeployment {
	t.Helper()
	md := serving(t, srv)
	moveTo(t, md, "2", imageV2)
	candidateUp(t, md, imageV2, "")
	eventually(t, "v2 promoted", productionRuns(t, md, imageV2))
	return md
}

func wantRolledBack(t *testing.T, md *v1alpha1.ModelDeployment, reason v1alpha1.Reason) {
	t.Helper()
	eventually(t, "rolled back to v1", func() error {
		if img := image(getDeployment(t, md)); img != imageV1 {
			return fmt.Errorf("production runs %s", img)
		}
		m := getMD(t, md)
		if err := wantCondition(m, v1alpha1.ConditionRolledBack, metav1.ConditionTrue, reason); err != nil {
			return err
		}
		if len(m.Status.FailedVersions) == 0 || m.Status.FailedVersions[0].Version != "2" || m.Status.FailedVersions[0].Reason != reason {
			return fmt.Errorf("failedVersions %+v", m.Status.FailedVersions)
		}
		if m.Status.Serving == nil || m.Status.Serving.Version != "1" || m.Status.Promoting != nil {
			return fmt.Errorf("serving %+v promoting %+v", m.Status.Serving, m.Status.Promoting)
		}
		if len(m.Status.History) == 0 || m.Status.History[0].Outcome != "RolledBack" {
			return fmt.Errorf("history %+v", m.Status.History)
		}
		// Degraded for Argo CD while the followed version is the failed one.
		if err := wantCondition(m, v1alpha1.ConditionStalled, metav1.ConditionTrue, ""); err != nil {
			return err
		}
		return wantCondition(m, v1alpha1.ConditionReady, metav1.ConditionFalse, "")
	})
	if ev := events(t, md); ev["RolledBack"] != "Warning" {
		t.Errorf("events %v: no RolledBack warning", ev)
	}
}

func TestRollbackOnProgressDeadline(t *testing.T) {
	md := promoted(t, newScoringServer(t))
	setDeploymentStatus(t, md, func(d *appsv1.Deployment) {
		d.Status = appsv1.DeploymentStatus{
			Replicas: 4, UpdatedReplicas: 1, ReadyReplicas: 3, AvailableReplicas: 3,
			Conditions: []appsv1.DeploymentCondition{{
				Type: appsv1.DeploymentProgressing, Status: corev1.ConditionFalse, Reason: "ProgressDeadlineExceeded",
				Message: `ReplicaSet "iris-v2" has timed out progressing.`, LastUpdateTime: metav1.Now(), LastTransitionTime: metav1.Now(),
			}},
		}
	})
	wantRolledBack(t, md, "ProgressDeadlineExceeded")
}

func TestRollbackOnFailingPods(t *testing.T) {
	md := promoted(t, newScoringServer(t))
	createPod(t, md, "iris-v2-crashing", getDeployment(t, md).Spec.Template, "CrashLoopBackOff")
	wantRolledBack(t, md, "PodsFailing")

	// A new version moves on.
	moveTo(t, md, "3", imageV1[:len(imageV1)-1]+"3")
	eventually(t, "candidate for v3", func() error {
		d := &appsv1.Deployment{}
		if err := k8s.Get(context.Background(), client.ObjectKey{Namespace: md.Namespace, Name: md.Name + "-candidate"}, d); err != nil {
			return err
		}
		if !strings.HasSuffix(d.Spec.Template.Spec.Containers[0].Image, "3") {
			return fmt.Errorf("candidate runs %s", d.Spec.Template.Spec.Containers[0].Image)
		}
		return nil
	})
}

func TestNoAutoRollbackKeepsFailedVersion(t *testing.T) {
	srv := newScoringServer(t)
	md := serving(t, srv, func(md *v1alpha1.ModelDeployment) { md.Spec.Rollout.AutoRollback = ptr.To(false) })
	moveTo(t, md, "2", imageV2)
	candidateUp(t, md, imageV2, "")
	eventually(t, "v2 promoted", productionRuns(t, md, imageV2))
	createPod(t, md, "iris-v2-crashing", getDeployment(t, md).Spec.Template, "ImagePullBackOff")
	eventually(t, "marked failed", func() error {
		m := getMD(t, md)
		if len(m.Status.FailedVersions) == 0 || m.Status.FailedVersions[0].Reason != "PodsFailing" {
			return fmt.Errorf("failedVersions %+v", m.Status.FailedVersions)
		}
		return wantCondition(m, v1alpha1.ConditionStalled, metav1.ConditionTrue, "")
	})
	if img := image(getDeployment(t, md)); img != imageV2 {
		t.Errorf("production rolled back to %s with autoRollback off", img)
	}
}

// productionRuns checks that the production Deployment's template runs image.
func productionRuns(t *testing.T, md *v1alpha1.ModelDeployment, want string) func() error {
	return func() error {
		if img := image(getDeployment(t, md)); img != want {
			return fmt.Errorf("production runs %s", img)
		}
		return nil
	}
}
