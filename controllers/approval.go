package controllers

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1alpha1 "github.com/mlflow-operator/mlflow-operator/api/v1alpha1"
	"github.com/mlflow-operator/mlflow-operator/internal/rollout"
)

// The approval gate (spec.rollout.approval: Manual): rollout.Decide holds a
// verified version (ActionAwaitApproval) until the approve annotation names
// it, or rejects it when the abort annotation does. This file reads the
// annotations for the decision and records what the gate did in status.
//
// The annotations stay on the object (the operator writes only status, and
// a GitOps tool may own the annotations): each value acts once, recorded in
// status.lastApproval and status.lastAbort, like the retry annotation.

// approvalInput tells whether the approve and the abort annotations name the
// target version with a value not acted upon before.
func approvalInput(md *v1alpha1.ModelDeployment) (approved, aborted bool) {
	t := md.Status.Target
	if t == nil || t.Version == "" {
		return false, false
	}
	fresh := func(annotation, last string) bool {
		v, ok := md.Annotations[annotation]
		return ok && namesVersion(v, t.Version) && handledValue(v) != last
	}
	return fresh(v1alpha1.AnnotationApprove, md.Status.LastApproval), fresh(v1alpha1.AnnotationAbort, md.Status.LastAbort)
}

// namesVersion tells whether an approve or abort annotation value names
// version: the value is the version, optionally followed by '@' and
// anything (which makes a new value for the same version).
func namesVersion(value, version string) bool {
	v, _, _ := strings.Cut(value, "@")
	return version != "" && strings.TrimSpace(v) == version
}

// recordGate records in status what the approval gate did in decision d,
// before the decision is carried out (a promotion persists the status
// before production changes): the version waiting and since when, the
// annotation values acted upon; and it records the gate's events. Any
// decision the gate had no part in means nothing waits any more.
func (r *ModelDeploymentReconciler) recordGate(s *scope, d rollout.Decision) {
	md := s.md
	t := md.Status.Target
	switch d.Approval {
	case v1alpha1.ReasonAwaitingApproval:
		if w := md.Status.AwaitingApproval; w == nil || w.Image != t.Image || w.Version != t.Version {
			now := metav1.NewTime(s.now)
			md.Status.AwaitingApproval = &v1alpha1.ApprovalRequest{ModelVersionRef: *t.DeepCopy(), Since: &now, Verification: d.Reason}
			r.event(md, corev1.EventTypeNormal, v1alpha1.ReasonAwaitingApproval, v1alpha1.ActionApprove, awaitingMessage(md, d))
			s.log.Info("Verified version awaits approval", "modelVersion", t.Version)
		} else {
			md.Status.AwaitingApproval.Verification = d.Reason
		}
	case v1alpha1.ReasonApproved:
		value := md.Annotations[v1alpha1.AnnotationApprove]
		md.Status.LastApproval = handledValue(value)
		md.Status.AwaitingApproval = nil
		r.event(md, corev1.EventTypeNormal, v1alpha1.ReasonApproved, v1alpha1.ActionApprove,
			fmt.Sprintf("version %s approved (%s=%s); promoting", t.Version, v1alpha1.AnnotationApprove, handledValue(value)))
		s.log.Info("Version approved", "modelVersion", t.Version)
	case v1alpha1.ReasonAborted:
		md.Status.LastAbort = handledValue(md.Annotations[v1alpha1.AnnotationAbort])
		if v, ok := md.Annotations[v1alpha1.AnnotationApprove]; ok && namesVersion(v, t.Version) {
			// Overruled by the abort: it must not promote the version
			// should it wait again (after a retry).
			md.Status.LastApproval = handledValue(v)
		}
		md.Status.AwaitingApproval = nil
		// The Aborted event is the failed candidate's (act).
		s.log.Info("Version aborted", "modelVersion", t.Version)
	default:
		md.Status.AwaitingApproval = nil
	}
}

// awaitingMessage says which version waits, what serves meanwhile, and how
// to approve or abort it.
func awaitingMessage(md *v1alpha1.ModelDeployment, d rollout.Decision) string {
	t := md.Status.Target
	serving := "nothing else serves"
	if sv := md.Status.Serving; sv != nil && sv.Version != "" {
		serving = "version " + sv.Version + " keeps serving"
	}
	command := func(annotation, last string) string {
		value := t.Version
		if handledValue(value) == last {
			// That value acted before: a new one names the same version.
			value += "@$(date +%s)"
		}
		return fmt.Sprintf("kubectl -n %s annotate modeldeployment %s %s=%s --overwrite", md.Namespace, md.Name, annotation, value)
	}
	return fmt.Sprintf("%s (spec.rollout.approval: Manual); %s. Approve: %s. Abort: %s",
		d.Message, serving, command(v1alpha1.AnnotationApprove, md.Status.LastApproval), command(v1alpha1.AnnotationAbort, md.Status.LastAbort))
}
