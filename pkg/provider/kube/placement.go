package kube

import (
	"fmt"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/pathcost/pathcost/pkg/provider"
)

// Placement is the nodes a scenario runs on: the client on Client, the server on Server, and for
// NodePort the node the client dials, Forward. Every scenario of a run, and its baseline, uses the
// same nodes.
type Placement struct {
	Client, Server, Forward Node
	// How says how the nodes were chosen (tcprole labels, or among the schedulable nodes).
	How string
}

// Node is one node of the cluster, as the provider needs it.
type Node struct {
	Name       string
	InternalIP string
	Role       string // the tcprole label, "" without
	Kernel, OS string
	Runtime    string
	Kubelet    string
	CPUs       string
}

func nodeOf(n *corev1.Node) Node {
	out := Node{Name: n.Name, Role: n.Labels[RoleLabel], Kernel: n.Status.NodeInfo.KernelVersion,
		OS: n.Status.NodeInfo.OSImage, Runtime: n.Status.NodeInfo.ContainerRuntimeVersion,
		Kubelet: n.Status.NodeInfo.KubeletVersion}
	if q, ok := n.Status.Capacity[corev1.ResourceCPU]; ok {
		out.CPUs = q.String()
	}
	for _, a := range n.Status.Addresses {
		if a.Type == corev1.NodeInternalIP && out.InternalIP == "" {
			out.InternalIP = a.Address
		}
	}
	return out
}

// usable says whether pods can land on n: Ready, not cordoned, no NoSchedule/NoExecute taint (the
// provider's pods tolerate none), and an InternalIP. The reason is "" when it is usable.
func usable(n *corev1.Node) string {
	ready := false
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue {
			ready = true
		}
	}
	switch {
	case !ready:
		return "not Ready"
	case n.Spec.Unschedulable:
		return "cordoned"
	}
	for _, t := range n.Spec.Taints {
		if t.Effect == corev1.TaintEffectNoSchedule || t.Effect == corev1.TaintEffectNoExecute {
			return fmt.Sprintf("taint %s:%s", t.Key, t.Effect)
		}
	}
	if nodeOf(n).InternalIP == "" {
		return "no InternalIP"
	}
	return ""
}

// Place chooses the nodes for a scenario needing want distinct nodes (2, or 3 with NodePort).
// Nodes labelled tcprole=client|server (and forward) are used when there are such nodes; otherwise
// the usable nodes in name order: client the first, server the last, forward one between. Too few
// nodes is a *provider.Skip naming the nodes there are.
func Place(nodes []corev1.Node, want int) (Placement, error) {
	var ok []Node
	var unusable []string
	for i := range nodes {
		if why := usable(&nodes[i]); why != "" {
			unusable = append(unusable, nodes[i].Name+" ("+why+")")
			continue
		}
		ok = append(ok, nodeOf(&nodes[i]))
	}
	sort.Slice(ok, func(i, j int) bool { return ok[i].Name < ok[j].Name })
	byRole := map[string]Node{}
	labelled := false
	for _, n := range ok {
		if n.Role == "" {
			continue
		}
		labelled = true
		if _, dup := byRole[n.Role]; !dup {
			byRole[n.Role] = n
		}
	}
	if labelled {
		p := Placement{Client: byRole["client"], Server: byRole["server"], Forward: byRole["forward"],
			How: RoleLabel + " node labels"}
		var missing []string
		if p.Client.Name == "" {
			missing = append(missing, "client")
		}
		if p.Server.Name == "" {
			missing = append(missing, "server")
		}
		if want >= 3 && p.Forward.Name == "" {
			missing = append(missing, "forward")
		}
		if len(missing) == 0 && p.Client.Name != p.Server.Name {
			return p, nil
		}
		return Placement{}, provider.Skipf("the usable nodes carry %s labels (%s) but none for %s: label one usable node per role (kubectl label node NAME %s=ROLE)%s",
			RoleLabel, describeRoles(ok), strings.Join(missing, ", "), RoleLabel, unusableSuffix(unusable))
	}
	if len(ok) < want {
		var names []string
		for _, n := range ok {
			names = append(names, n.Name)
		}
		have := "none"
		if len(names) > 0 {
			have = strings.Join(names, ", ")
		}
		return Placement{}, provider.Skipf("needs %d Ready, schedulable nodes, the cluster has %d: %s%s", want, len(ok), have, unusableSuffix(unusable))
	}
	p := Placement{Client: ok[0], Server: ok[len(ok)-1], How: "chosen among the Ready, schedulable nodes (no " + RoleLabel + " labels)"}
	if want >= 3 {
		p.Forward = ok[1]
	}
	return p, nil
}

func describeRoles(ns []Node) string {
	var out []string
	for _, n := range ns {
		if n.Role != "" {
			out = append(out, n.Name+"="+n.Role)
		}
	}
	return strings.Join(out, ", ")
}

func unusableSuffix(u []string) string {
	if len(u) == 0 {
		return ""
	}
	return "; not usable: " + strings.Join(u, ", ")
}

// String says where each role runs.
func (p Placement) String() string {
	s := fmt.Sprintf("client on node %s (%s), server on node %s (%s)", p.Client.Name, p.Client.InternalIP, p.Server.Name, p.Server.InternalIP)
	if p.Forward.Name != "" {
		s += fmt.Sprintf(", forwarding node %s (%s)", p.Forward.Name, p.Forward.InternalIP)
	}
	return s + "; " + p.How
}

// transientTaints are put on and removed by the node lifecycle controller as nodes come and go.
var transientTaints = map[string]bool{"node.kubernetes.io/not-ready": true, "node.kubernetes.io/unreachable": true}

// transientlyUnusable says whether some node is unusable only for a reason that passes by itself
// (not Ready yet, or a not-ready/unreachable taint).
func transientlyUnusable(nodes []corev1.Node) bool {
	for i := range nodes {
		why := usable(&nodes[i])
		if why == "not Ready" {
			return true
		}
		for _, t := range nodes[i].Spec.Taints {
			if transientTaints[t.Key] && strings.HasPrefix(why, "taint "+t.Key) {
				return true
			}
		}
	}
	return false
}
