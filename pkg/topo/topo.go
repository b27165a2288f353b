// Package topo holds the seed's scenarios as data: what is measured (which path, whether sidecars
// are in it, how many nodes it needs), and nothing of how or where it is realised. Providers
// (pkg/provider) turn a Spec into a running path; the e2e suite's build tags pick which Specs run.
package topo

import (
	"fmt"
	"strings"
)

// Kind is the shape of the network path between client and server.
type Kind string

// The path shapes of the seed.
const (
	// KindPlain is two hosts on one L2 segment (the seed's plain VMs); on a cluster, host-network
	// pods on two nodes. It is also every scenario's baseline.
	KindPlain Kind = "plain"
	// KindGR is pods on two nodes of a routed pod network (per-node pod CIDRs, routes held by the
	// VPC router: TKE Global Router; nskube's bridge CNI).
	KindGR Kind = "gr"
	// KindVPCCNI is pods with VPC addresses (shared ENI, /32 routes: TKE VPC-CNI; nskube's ptp CNI).
	KindVPCCNI Kind = "vpccni"
	// KindNodePort is a client on host A dialling a NodePort on node B, which forwards (kube-proxy
	// DNAT and masquerade) to the server pod on node C.
	KindNodePort Kind = "nodeport"
)

// Spec is one scenario: a path shape, with or without sidecars.
type Spec struct {
	// Name is the scenario's name in thresholds files, tables and results: plain, gr, gr+istio,
	// vpccni, vpccni+istio, nodeport.
	Name string
	// Title is the seed's description, numbered as in the seed.
	Title string
	// Seed is the seed's scenario number (1-6).
	Seed int
	// Kind is the path shape.
	Kind Kind
	// Istio puts a sidecar proxy into the client's and the server's pod (gr and vpccni only).
	Istio bool
	// Nodes is how many distinct nodes (or hosts) the scenario needs: client and server on two,
	// plus the forwarding node for NodePort.
	Nodes int
}

// The seed's six scenarios.
var (
	// Plain is the seed's scenario 1.
	Plain = Spec{Name: "plain", Seed: 1, Kind: KindPlain, Nodes: 2,
		Title: "1. plain VMs: client and server hosts on one L2 segment (VPC)"}
	// GR is the seed's scenario 2.
	GR = Spec{Name: "gr", Seed: 2, Kind: KindGR, Nodes: 2,
		Title: "2. K8s, Global Router CNI, pods pinned to different nodes"}
	// GRIstio is the seed's scenario 3.
	GRIstio = Spec{Name: "gr+istio", Seed: 3, Kind: KindGR, Istio: true, Nodes: 2,
		Title: "3. as 2, traffic through Istio sidecars"}
	// VPCCNI is the seed's scenario 4.
	VPCCNI = Spec{Name: "vpccni", Seed: 4, Kind: KindVPCCNI, Nodes: 2,
		Title: "4. K8s, VPC-CNI (shared ENI, multiple IPs)"}
	// VPCCNIIstio is the seed's scenario 5.
	VPCCNIIstio = Spec{Name: "vpccni+istio", Seed: 5, Kind: KindVPCCNI, Istio: true, Nodes: 2,
		Title: "5. as 4, through Istio sidecars"}
	// NodePort is the seed's scenario 6.
	NodePort = Spec{Name: "nodeport", Seed: 6, Kind: KindNodePort, Nodes: 3,
		Title: "6. NodePort 32000: client on A dials node B, B forwards to the server pod on C"}
)

// All lists the six scenarios in the seed's order.
var All = []Spec{Plain, GR, GRIstio, VPCCNI, VPCCNIIstio, NodePort}

// Names lists the scenario names a thresholds file may use.
func Names() []string {
	out := make([]string, len(All))
	for i, s := range All {
		out[i] = s.Name
	}
	return out
}

// ByName returns the scenario called name.
func ByName(name string) (Spec, error) {
	for _, s := range All {
		if s.Name == name {
			return s, nil
		}
	}
	return Spec{}, fmt.Errorf("unknown scenario %q (known: %s)", name, strings.Join(Names(), ", "))
}

// Pod returns the pod scenario of the given pod network, with or without sidecars.
func Pod(kind Kind, istio bool) (Spec, error) {
	for _, s := range All {
		if s.Kind == kind && s.Istio == istio && (kind == KindGR || kind == KindVPCCNI) {
			return s, nil
		}
	}
	return Spec{}, fmt.Errorf("no pod scenario with pod network %q (want gr or vpccni)", kind)
}

// Validate reports a Spec that no provider can realise.
func (s Spec) Validate() error {
	switch s.Kind {
	case KindPlain, KindGR, KindVPCCNI, KindNodePort:
	default:
		return fmt.Errorf("scenario %q: unknown kind %q (want plain, gr, vpccni or nodeport)", s.Name, s.Kind)
	}
	if s.Istio && s.Kind != KindGR && s.Kind != KindVPCCNI {
		return fmt.Errorf("scenario %q: sidecars compose with gr or vpccni, not %s", s.Name, s.Kind)
	}
	if s.Name == "" {
		return fmt.Errorf("scenario of kind %s has no name", s.Kind)
	}
	return nil
}
