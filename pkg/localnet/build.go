package localnet

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// Addresses of the emulation. Every address lives only inside the run's
// namespaces, which have no link to the root namespace.
const (
	// VPCSubnet is the emulated VPC subnet (one L2 segment: bridge br0 in
	// the vpc namespace).
	VPCSubnet = "10.77.0.0/24"
	// VPCRouter is the VPC router's address on the VPC bridge.
	VPCRouter = "10.77.0.1"
	// ClusterCIDR holds the Global Router pod CIDRs, one /24 per node.
	ClusterCIDR = "172.20.0.0/16"
	// ServiceClusterIP is the emulated Service's ClusterIP (KindNodePort).
	ServiceClusterIP = "172.21.0.10"
	// podGateway is the link-local gateway VPC-CNI pods route through
	// (answered by proxy ARP on the node's end of the pod's veth).
	podGateway = "169.254.1.1"
)

func vpcIP(n int) string    { return "10.77.0." + strconv.Itoa(n) }
func podNet(n int) string   { return "172.20." + strconv.Itoa(n) + ".0/24" }
func podIP(n, i int) string { return "172.20." + strconv.Itoa(n) + "." + strconv.Itoa(i) }

// Up builds the topology of spec and returns it ready: links up, routes and
// rules in place, sidecars (if any) listening. On any failure (or panic) it
// tears down what it made before returning (or re-panicking). ctx bounds the
// build; cancelling it aborts the build.
func Up(ctx context.Context, spec Spec) (env *Env, err error) {
	if ctx == nil {
		ctx = context.Background()
	}
	s, err := spec.normalize()
	if err != nil {
		return nil, err
	}
	if err := Requirements(s); err != nil {
		return nil, err
	}
	prefix, dir, err := claimPrefix()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	e := &Env{Prefix: prefix, Spec: s, StateDir: dir, Listen: "0.0.0.0:" + strconv.Itoa(s.ServerPort)}
	e.mu.Lock()
	register(e, cancel)
	defer func() {
		if r := recover(); r != nil {
			_ = e.downLocked()
			e.mu.Unlock()
			panic(r)
		}
		if err != nil {
			if derr := e.downLocked(); derr != nil {
				err = errors.Join(err, fmt.Errorf("localnet: teardown after failed Up: %w", derr))
			}
			e.mu.Unlock()
			env = nil
			return
		}
		e.mu.Unlock()
	}()

	b := &builder{ctx: ctx, e: e, ip: toolPath(toolIP)}
	b.note(fmt.Sprintf("run prefix %s: every object lives in network namespaces named %s-*; nothing is linked to the root namespace; state in %s", prefix, prefix, dir))
	b.hook("start")
	b.vpc()
	switch s.Kind {
	case KindPlain:
		b.plain()
	case KindGR:
		b.gr()
	case KindVPCCNI:
		b.vpccni()
	case KindNodePort:
		b.nodeport()
	}
	if s.Istio {
		b.istio()
	}
	b.hook("built")
	b.note("links are veth pairs and Linux bridges: they carry GSO/GRO super-packets (up to 64 KB) with no wire, so interface byte counters include one header per super-packet, not per MTU-sized segment as a NIC's would")
	b.note("IPv6 is disabled and rp_filter off in every namespace; sysctls are set only inside the run's namespaces, never in the root one")
	if b.ccSet && !b.ccRestricted {
		b.note("every namespace's default TCP congestion control is " + s.Congestion + ", so the sidecars' connections use it too")
	}
	b.note("all emulated hosts share this machine's cores and kernel: per-node CPU/idle is not separable; per-process CPU is")
	if b.err != nil {
		return nil, b.err
	}
	if err := e.writeEnvFile(); err != nil {
		return nil, err
	}
	return e, nil
}

// upHook, if set (by tests), runs at stages of Up ("start": prefix and
// state dir claimed, nothing built; "built": topology and sidecars up); an
// error or panic from it makes Up fail.
var upHook func(stage string, e *Env) error

func (b *builder) hook(stage string) {
	if upHook != nil && b.err == nil {
		b.fail(upHook(stage, b.e))
	}
}

// builder runs the steps of Up; after the first error every step is a no-op
// and b.err holds the error.
type builder struct {
	ctx context.Context
	e   *Env
	ip  string
	err error

	ccSet, ccRestricted bool // Spec.Congestion became the namespaces' default / was refused
}

func (b *builder) fail(err error) {
	if b.err == nil && err != nil {
		b.err = fmt.Errorf("localnet: up %s (%s): %w", b.e.Prefix, b.e.Spec.Kind, err)
	}
}

func (b *builder) note(s string) { b.e.Notes = append(b.e.Notes, s) }

// ipc runs `ip -n ns args...`.
func (b *builder) ipc(ns string, args ...string) {
	if b.err != nil {
		return
	}
	if err := b.ctx.Err(); err != nil {
		b.fail(err)
		return
	}
	_, err := run(b.ctx, "", b.ip, append([]string{"-n", ns}, args...)...)
	b.fail(err)
}

func (b *builder) sysctl(ns string, kvs ...sysctl) {
	if b.err != nil {
		return
	}
	b.fail(setSysctls(ns, kvs...))
}

// newNS creates a namespace for a role with the baseline every namespace
// gets: loopback up, no IPv6 (no ND/MLD chatter on the counters), no reverse
// path filter (asymmetric routes are part of the topologies).
func (b *builder) newNS(role string) string {
	name := b.e.Prefix + "-" + role
	if b.err != nil {
		return name
	}
	b.e.namespaces = append(b.e.namespaces, name)
	if _, err := run(b.ctx, "", b.ip, "netns", "add", name); err != nil {
		b.fail(err)
		return name
	}
	b.sysctl(name,
		sysctl{"net/ipv6/conf/all/disable_ipv6", "1", true},
		sysctl{"net/ipv6/conf/default/disable_ipv6", "1", true},
		sysctl{"net/ipv4/conf/all/rp_filter", "0", false},
		sysctl{"net/ipv4/conf/default/rp_filter", "0", false},
	)
	b.congestion(name)
	b.ipc(name, "link", "set", "lo", "up")
	return name
}

// congestion makes Spec.Congestion the namespace's default TCP congestion control. Outside the
// root namespace Linux lets a default be set only to an algorithm the root namespace allows
// (net.ipv4.tcp_allowed_congestion_control); we never change the root namespace, so for another
// one the namespaces keep the machine's default, and a note says so.
func (b *builder) congestion(ns string) {
	cc := b.e.Spec.Congestion
	if cc == "" || b.err != nil {
		return
	}
	err := setSysctls(ns, sysctl{"net/ipv4/tcp_congestion_control", cc, false})
	switch {
	case err == nil:
		b.ccSet = true
	case errors.Is(err, os.ErrPermission):
		if !b.ccRestricted {
			b.ccRestricted = true
			allowed := readTrimmed("/proc/sys/net/ipv4/tcp_allowed_congestion_control")
			def := readTrimmed("/proc/sys/net/ipv4/tcp_congestion_control")
			b.note(fmt.Sprintf("TCP congestion control %s is not among those this machine allows as a namespace's default (net.ipv4.tcp_allowed_congestion_control: %s): the namespaces keep the machine's default %s, which sockets that do not choose their own (the sidecars') use", cc, allowed, def))
		}
	default:
		b.fail(fmt.Errorf("TCP congestion control %q (available: %s): %w", cc, readTrimmed("/proc/sys/net/ipv4/tcp_available_congestion_control"), err))
	}
}

// readTrimmed returns a small file's content without surrounding space, or "unknown".
func readTrimmed(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(b))
}

// vpc creates the VPC: bridge br0 (the subnet's L2 segment) in its own
// namespace, which also plays the VPC router at VPCRouter.
func (b *builder) vpc() {
	ns := b.newNS("vpc")
	b.sysctl(ns,
		sysctl{"net/ipv4/ip_forward", "1", false},
		sysctl{"net/ipv4/conf/all/send_redirects", "0", false},
		sysctl{"net/ipv4/conf/default/send_redirects", "0", false},
	)
	b.ipc(ns, "link", "add", "br0", "type", "bridge")
	b.ipc(ns, "addr", "add", VPCRouter+"/24", "dev", "br0")
	b.ipc(ns, "link", "set", "br0", "up")
	b.e.VPC = Host{Name: "vpc", NetNS: ns, Addr: VPCRouter, Node: "vpc"}
}

// plug links ns's interface ifname to the VPC bridge through a veth pair
// whose VPC end is port, and gives it cidr (plus ip-addr options).
func (b *builder) plug(ns, ifname, port, cidr string, opts ...string) {
	vpc := b.e.VPC.NetNS
	b.ipc(ns, "link", "add", ifname, "type", "veth", "peer", "name", port, "netns", vpc)
	b.ipc(vpc, "link", "set", port, "master", "br0", "up")
	b.ipc(ns, append([]string{"addr", "add", cidr, "dev", ifname}, opts...)...)
	b.ipc(ns, "link", "set", ifname, "up")
}

// vm creates a VM (or node) on the VPC: eth0 = vpcIP(n)/24, default route
// via the VPC router.
func (b *builder) vm(name string, n int) Host {
	ns := b.newNS(name)
	b.plug(ns, "eth0", "v-"+name, vpcIP(n)+"/24")
	b.ipc(ns, "route", "add", "default", "via", VPCRouter, "dev", "eth0")
	h := Host{Name: name, NetNS: ns, Addr: vpcIP(n), Node: name}
	b.e.Nodes = append(b.e.Nodes, h)
	return h
}

// role returns h renamed to a role, keeping namespace, address and node.
func role(h Host, name string) Host { h.Name = name; return h }

// plain: two VMs on the VPC segment.
func (b *builder) plain() {
	vm1 := b.vm("vm1", 11)
	vm2 := b.vm("vm2", 12)
	b.e.Client = role(vm1, "client")
	b.e.Server = role(vm2, "server")
	b.e.Target = vm2.Addr + ":" + strconv.Itoa(b.e.Spec.ServerPort)
	b.note(fmt.Sprintf("plain: client VM %s (eth0) -> VPC bridge br0 -> server VM %s (eth0); one L2 segment, no routing", vm1.Addr, vm2.Addr))
}

// grNode creates a Global Router node: a VM plus bridge cni0 holding the
// node's pod CIDR, forwarding on, and the VPC route table entry
// pod CIDR -> node that Global Router programs.
func (b *builder) grNode(name string, n, net int) Host {
	h := b.vm(name, n)
	b.sysctl(h.NetNS, sysctl{"net/ipv4/ip_forward", "1", false})
	b.ipc(h.NetNS, "link", "add", "cni0", "type", "bridge")
	b.ipc(h.NetNS, "addr", "add", podIP(net, 1)+"/24", "dev", "cni0")
	b.ipc(h.NetNS, "link", "set", "cni0", "up")
	b.ipc(b.e.VPC.NetNS, "route", "add", podNet(net), "via", h.Addr, "dev", "br0")
	return h
}

// grPod creates a pod on a Global Router node: eth0 in the pod, its veth peer
// a port of the node's cni0, default route via cni0's address.
func (b *builder) grPod(name string, node Host, net, i int) Host {
	ns := b.newNS(name)
	hostIf := "veth-" + name
	b.ipc(ns, "link", "add", "eth0", "type", "veth", "peer", "name", hostIf, "netns", node.NetNS)
	b.ipc(node.NetNS, "link", "set", hostIf, "master", "cni0", "up")
	b.ipc(ns, "addr", "add", podIP(net, i)+"/24", "dev", "eth0")
	b.ipc(ns, "link", "set", "eth0", "up")
	b.ipc(ns, "route", "add", "default", "via", podIP(net, 1), "dev", "eth0")
	return Host{Name: name, NetNS: ns, Addr: podIP(net, i), Node: node.Name}
}

// gr: client pod on node1, server pod on node2, Global Router routing.
func (b *builder) gr() {
	n1 := b.grNode("node1", 11, 1)
	n2 := b.grNode("node2", 12, 2)
	b.e.Client = b.grPod("client", n1, 1, 2)
	b.e.Server = b.grPod("server", n2, 2, 2)
	b.e.Target = b.e.Server.Addr + ":" + strconv.Itoa(b.e.Spec.ServerPort)
	b.note(fmt.Sprintf("gr (Global Router): client pod %s eth0 -> veth -> node1 cni0 (pod CIDR %s) -> node1 routes (forwarding) -> node1 eth0 %s -> VPC router %s (route %s via node2) -> node2 eth0 %s -> cni0 (pod CIDR %s) -> veth -> server pod %s; replies take the mirror path",
		b.e.Client.Addr, podNet(1), n1.Addr, VPCRouter, podNet(2), n2.Addr, podNet(2), b.e.Server.Addr))
}

// eniNode creates a VPC-CNI node: eth0 is the node's primary NIC; eth1 is
// the shared ENI (its own VPC address, no main-table prefix route), with
// route table `table` for the ENI's pods, ARP proxy for them, forwarding on.
func (b *builder) eniNode(name string, n, eniN, table int) Host {
	h := b.vm(name, n)
	ns := h.NetNS
	b.sysctl(ns,
		sysctl{"net/ipv4/ip_forward", "1", false},
		sysctl{"net/ipv4/conf/all/arp_ignore", "1", false},
		sysctl{"net/ipv4/conf/all/arp_announce", "2", false},
	)
	b.plug(ns, "eth1", "v-"+name+"-eni", vpcIP(eniN)+"/24", "noprefixroute")
	b.sysctl(ns, sysctl{"net/ipv4/neigh/eth1/proxy_delay", "0", false})
	t := strconv.Itoa(table)
	b.ipc(ns, "route", "add", VPCSubnet, "dev", "eth1", "scope", "link", "src", vpcIP(eniN), "table", t)
	b.ipc(ns, "route", "add", "default", "via", VPCRouter, "dev", "eth1", "table", t)
	return h
}

// eniPod creates a VPC-CNI pod with VPC address vpcIP(ipN)/32: default route
// via a link-local gateway answered by proxy ARP on the node's veth end; on
// the node a /32 route to the pod, policy rules (to pod -> main, from pod ->
// ENI table) and a proxy-ARP entry for the pod on the ENI.
func (b *builder) eniPod(name string, node Host, ipN, table int) Host {
	ns := b.newNS(name)
	hostIf := "veth-" + name
	addr := vpcIP(ipN)
	b.ipc(ns, "link", "add", "eth0", "type", "veth", "peer", "name", hostIf, "netns", node.NetNS)
	b.sysctl(node.NetNS,
		sysctl{"net/ipv4/conf/" + hostIf + "/proxy_arp", "1", false},
		sysctl{"net/ipv4/neigh/" + hostIf + "/proxy_delay", "0", false},
	)
	b.ipc(node.NetNS, "link", "set", hostIf, "up")
	b.ipc(ns, "addr", "add", addr+"/32", "dev", "eth0")
	b.ipc(ns, "link", "set", "eth0", "up")
	b.ipc(ns, "route", "add", podGateway, "dev", "eth0", "scope", "link")
	b.ipc(ns, "route", "add", "default", "via", podGateway, "dev", "eth0")
	b.ipc(node.NetNS, "route", "add", addr+"/32", "dev", hostIf, "scope", "link")
	b.ipc(node.NetNS, "rule", "add", "to", addr, "lookup", "main", "pref", "512")
	b.ipc(node.NetNS, "rule", "add", "from", addr, "lookup", strconv.Itoa(table), "pref", "1536")
	b.ipc(node.NetNS, "neigh", "add", "proxy", addr, "dev", "eth1")
	return Host{Name: name, NetNS: ns, Addr: addr, Node: node.Name}
}

// vpccni: pods with VPC addresses behind each node's shared ENI.
func (b *builder) vpccni() {
	n1 := b.eniNode("node1", 11, 21, 101)
	n2 := b.eniNode("node2", 12, 22, 102)
	b.e.Client = b.eniPod("client", n1, 101, 101)
	b.e.Server = b.eniPod("server", n2, 102, 102)
	b.e.Target = b.e.Server.Addr + ":" + strconv.Itoa(b.e.Spec.ServerPort)
	b.note(fmt.Sprintf("vpccni (shared ENI, multiple IPs): pods take VPC addresses (%s, %s in %s); client pod eth0 (/32, default via %s answered by proxy ARP) -> veth -> node1: `ip rule from %s lookup 101` -> table 101 (%s dev eth1) -> node1 ENI eth1 %s -> VPC bridge -> node2 ENI eth1 %s (proxy ARP entry for %s) -> `ip rule to %s lookup main` -> /32 route -> veth -> server pod; node eth0 (%s, %s) carries none of the pods' traffic",
		b.e.Client.Addr, b.e.Server.Addr, VPCSubnet, podGateway, b.e.Client.Addr, VPCSubnet, vpcIP(21), vpcIP(22), b.e.Server.Addr, b.e.Server.Addr, n1.Addr, n2.Addr))
	b.note("vpccni: same-subnet traffic goes ENI to ENI over the VPC segment (the ENI table holds the subnet route); off-subnet traffic would use the VPC router")
}

// nodeport: VM A dials node B's NodePort; B DNATs to the server pod on C.
func (b *builder) nodeport() {
	a := b.vm("vmA", 11)
	nb := b.grNode("nodeB", 12, 2)
	nc := b.grNode("nodeC", 13, 3)
	b.e.Server = b.grPod("server", nc, 3, 2)
	b.e.Client = role(a, "client")
	fw := role(nb, "forwarder")
	b.e.Forwarder = &fw
	b.e.Target = nb.Addr + ":" + strconv.Itoa(b.e.Spec.NodePort)
	rules := kubeProxyRules(b.e.Spec, b.e.Server.Addr)
	b.iptablesRestore(nb.NetNS, rules)
	b.iptablesRestore(nc.NetNS, rules)
	b.note(fmt.Sprintf("nodeport: client VM A %s -> VPC bridge -> node B %s:%d: kube-proxy (iptables mode) nat rules PREROUTING -> KUBE-SERVICES -> KUBE-NODEPORTS -> %s -> KUBE-MARK-MASQ + %s -> %s DNAT %s:%d; B forwards via the VPC router (route %s via node C) -> node C %s -> cni0 -> server pod; POSTROUTING -> KUBE-POSTROUTING masquerades (source becomes B %s); replies C -> B directly on the VPC segment, B un-NATs to A",
		a.Addr, nb.Addr, b.e.Spec.NodePort, extChain, svcChain, sepChain(b.e.Server.Addr, b.e.Spec.ServerPort), b.e.Server.Addr, b.e.Spec.ServerPort, podNet(3), nc.Addr, nb.Addr))
	b.note("nodeport: the same kube-proxy rules are installed on node C (every node runs kube-proxy); externalTrafficPolicy Cluster; A is a plain VM, not a node")
}

// iptablesRestore loads a ruleset in a namespace.
func (b *builder) iptablesRestore(ns, rules string) {
	if b.err != nil {
		return
	}
	_, err := run(b.ctx, rules, toolPath(toolNsenter), "--net="+netnsPath(ns), "--", toolPath(toolIptablesRestore), "-w", "5")
	if err != nil {
		b.fail(fmt.Errorf("iptables-restore in %s: %w", ns, err))
	}
}
