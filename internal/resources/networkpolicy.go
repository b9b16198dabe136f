package resources

import (
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	v1alpha1 "github.com/mlflow-operator/mlflow-operator/api/v1alpha1"
)

// NetworkPolicy admits ingress to the model's pods (production and
// candidates) on the serving port only, from spec.networkPolicy.allowFrom, or
// from the pods of the same namespace when that is empty. extraPeers are
// added to the allowed peers (the operator's own pods, which smoke-test
// candidates). Other ingress to the pods is denied; egress is not restricted.
//
// The serving port is admitted by number and by the name the Service
// targets (PortName): with request metrics the name is the sidecar's port
// on the new pods and still the model's on the old ones, so traffic reaches
// both while the pods roll out after the feature is turned on or off. The
// sidecar's traffic port is admitted by number too, for network plugins
// that do not resolve names. With request metrics the metrics port is
// admitted from spec.networkPolicy.metricsFrom, or from every pod of every
// namespace when that is empty (it serves counts and latencies, nothing a
// request carried).
func NetworkPolicy(md *v1alpha1.ModelDeployment, extraPeers ...networkingv1.NetworkPolicyPeer) *networkingv1.NetworkPolicy {
	peers := md.Spec.NetworkPolicy.AllowFrom
	if len(peers) == 0 {
		peers = []networkingv1.NetworkPolicyPeer{{PodSelector: &metav1.LabelSelector{}}}
	}
	peers = append(append([]networkingv1.NetworkPolicyPeer{}, peers...), extraPeers...)
	ports := []networkingv1.NetworkPolicyPort{tcp(intstr.FromInt32(md.Spec.ServingPort())), tcp(intstr.FromString(PortName))}
	if md.Spec.RequestMetricsEnabled() {
		ports = append(ports, tcp(intstr.FromInt32(md.Spec.RequestMetricsTrafficPort())))
	}
	ingress := []networkingv1.NetworkPolicyIngressRule{{Ports: ports, From: peers}}
	if md.Spec.RequestMetricsEnabled() {
		scrapers := md.Spec.NetworkPolicy.MetricsFrom
		if len(scrapers) == 0 {
			scrapers = []networkingv1.NetworkPolicyPeer{{NamespaceSelector: &metav1.LabelSelector{}}}
		}
		ingress = append(ingress, networkingv1.NetworkPolicyIngressRule{
			Ports: []networkingv1.NetworkPolicyPort{tcp(intstr.FromInt32(md.Spec.RequestMetricsPort()))},
			From:  append([]networkingv1.NetworkPolicyPeer{}, scrapers...),
		})
	}
	return &networkingv1.NetworkPolicy{
		TypeMeta:   metav1.TypeMeta{APIVersion: networkingv1.SchemeGroupVersion.String(), Kind: "NetworkPolicy"},
		ObjectMeta: objectMeta(md, md.Name),
		Spec: networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{v1alpha1.LabelName: md.Name}},
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress},
			Ingress:     ingress,
		},
	}
}

func tcp(port intstr.IntOrString) networkingv1.NetworkPolicyPort {
	return networkingv1.NetworkPolicyPort{Protocol: ptr.To(corev1.ProtocolTCP), Port: ptr.To(port)}
}
