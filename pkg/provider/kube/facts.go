package kube

import (
	"context"
	"fmt"
	"sort"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/pathcost/pathcost/pkg/topo"
)

// Facts is what the provider found on a cluster, for the notes.
type Facts struct {
	// Server is the API server's version (e.g. v1.34.4).
	Server string
	// DaemonSets are the DaemonSets in kube-system (CNI agents, kube-proxy, ...).
	DaemonSets []string
	// ProxyMode is kube-proxy's mode from its ConfigMap ("iptables", "ipvs", "nftables"), "" when
	// not found; ProxySource says where it was read.
	ProxyMode, ProxySource string
	// CNI is the pod network the provider recognised ("gr", "vpccni"), "" when it could not tell;
	// CNIEvidence says from what.
	CNI, CNIEvidence string
	// Istio is true when an Istio sidecar injector webhook is installed; IstioEvidence names it.
	Istio         bool
	IstioEvidence string
	// Problems are look-ups that failed (RBAC), reported in the notes rather than fatal.
	Problems []string
}

// cniAgents maps DaemonSet names (prefixes) in kube-system to the pod network shape they give.
// TKE: tke-bridge-agent / tke-cni-agent run Global Router; tke-eni-agent runs VPC-CNI. Others by
// their usual shape: routed per-node pod CIDRs (gr) or pod IPs from the VPC (vpccni).
var cniAgents = []struct{ prefix, kind, what string }{
	{"tke-eni-agent", "vpccni", "TKE VPC-CNI"},
	{"tke-eni-ipamd", "vpccni", "TKE VPC-CNI"},
	{"tke-bridge-agent", "gr", "TKE Global Router"},
	{"tke-cni-agent", "gr", "TKE Global Router"},
	{"aws-node", "vpccni", "AWS VPC CNI"},
	{"azure-cni", "vpccni", "Azure CNI"},
	{"kube-flannel", "gr", "flannel"},
	{"calico-node", "gr", "Calico"},
	{"kube-router", "gr", "kube-router"},
	{"cilium", "", "Cilium (shape depends on its IPAM mode)"},
	{"weave-net", "", "Weave Net (overlay)"},
}

// Discover looks at the cluster: API server version, DaemonSets in kube-system, kube-proxy's mode,
// the CNI and whether Istio's injector is there. Only the server version is required; what RBAC
// forbids is recorded in Problems.
func Discover(ctx context.Context, cs kubernetes.Interface) (Facts, error) {
	var f Facts
	v, err := cs.Discovery().ServerVersion()
	if err != nil {
		return f, fmt.Errorf("API server version: %w", err)
	}
	f.Server = v.GitVersion
	dss, err := cs.AppsV1().DaemonSets("kube-system").List(ctx, metav1.ListOptions{})
	if err != nil {
		f.Problems = append(f.Problems, "DaemonSets in kube-system: "+err.Error())
	} else {
		for _, d := range dss.Items {
			f.DaemonSets = append(f.DaemonSets, d.Name)
		}
		sort.Strings(f.DaemonSets)
	}
	for _, d := range f.DaemonSets {
		for _, a := range cniAgents {
			if strings.HasPrefix(d, a.prefix) && f.CNIEvidence == "" {
				f.CNI, f.CNIEvidence = a.kind, fmt.Sprintf("DaemonSet kube-system/%s (%s)", d, a.what)
			}
		}
	}
	cm, err := cs.CoreV1().ConfigMaps("kube-system").Get(ctx, "kube-proxy", metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
	case err != nil:
		f.Problems = append(f.Problems, "ConfigMap kube-system/kube-proxy: "+err.Error())
	default:
		for key, data := range cm.Data {
			if m := proxyMode(data); m != "" {
				f.ProxyMode, f.ProxySource = m, "ConfigMap kube-system/kube-proxy "+key
			}
		}
	}
	whs, err := cs.AdmissionregistrationV1().MutatingWebhookConfigurations().List(ctx, metav1.ListOptions{})
	if err != nil {
		f.Problems = append(f.Problems, "MutatingWebhookConfigurations (to find Istio's injector): "+err.Error())
	} else {
		for _, w := range whs.Items {
			for _, h := range w.Webhooks {
				if strings.HasSuffix(h.Name, "sidecar-injector.istio.io") {
					f.Istio, f.IstioEvidence = true, "MutatingWebhookConfiguration "+w.Name+" (webhook "+h.Name+")"
				}
			}
		}
	}
	return f, nil
}

// proxyMode reads `mode: X` from a KubeProxyConfiguration; an empty mode is kube-proxy's default,
// iptables on Linux.
func proxyMode(conf string) string {
	if !strings.Contains(conf, "KubeProxyConfiguration") {
		return ""
	}
	for _, l := range strings.Split(conf, "\n") {
		l = strings.TrimSpace(l)
		if v, ok := strings.CutPrefix(l, "mode:"); ok {
			v = strings.Trim(strings.TrimSpace(v), `"'`)
			if v == "" {
				return "iptables (default)"
			}
			return v
		}
	}
	return "iptables (default)"
}

// Notes turns the facts and the nodes into report notes; a scenario whose pod network does not
// match what was found gets a warning (the figures then measure the cluster's network, not the
// tag's).
func (f Facts) Notes(s topo.Spec, pl Placement) []string {
	var out []string
	out = append(out, fmt.Sprintf("cluster: Kubernetes %s; %s", f.Server, pl))
	for _, n := range []Node{pl.Client, pl.Forward, pl.Server} {
		if n.Name != "" {
			out = append(out, fmt.Sprintf("node %s: kernel %s, %s, %s, kubelet %s, %s CPUs", n.Name, n.Kernel, n.OS, n.Runtime, n.Kubelet, n.CPUs))
		}
	}
	if len(f.DaemonSets) > 0 {
		out = append(out, "DaemonSets in kube-system: "+strings.Join(f.DaemonSets, ", "))
	}
	if f.ProxyMode != "" {
		out = append(out, "kube-proxy mode: "+f.ProxyMode+" ("+f.ProxySource+")")
	}
	out = append(out, f.Problems...)
	if w := f.Mismatch(s); w != "" {
		out = append(out, w)
	}
	return out
}

// Mismatch warns when the scenario's pod network (gr, vpccni) is not the one found on the cluster
// ("" when it matches or the scenario has no pod network).
func (f Facts) Mismatch(s topo.Spec) string {
	if s.Kind != topo.KindGR && s.Kind != topo.KindVPCCNI {
		return ""
	}
	switch {
	case f.CNIEvidence == "":
		return fmt.Sprintf("WARNING: scenario %s asks for the %s pod network, but no known CNI agent was found in kube-system; the figures measure whatever pod network the cluster has", s.Name, s.Kind)
	case f.CNI == "":
		return fmt.Sprintf("WARNING: scenario %s asks for the %s pod network; found %s, whose shape the provider cannot tell", s.Name, s.Kind, f.CNIEvidence)
	case f.CNI != string(s.Kind):
		return fmt.Sprintf("WARNING: scenario %s asks for the %s pod network, but the cluster runs %s (%s); the figures measure that network", s.Name, s.Kind, f.CNI, f.CNIEvidence)
	}
	return ""
}
