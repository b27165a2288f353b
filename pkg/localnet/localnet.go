// Package localnet realises the seed's network paths on one Linux machine with
// network namespaces, veth pairs, Linux bridges, routes, policy routing and
// iptables rules of the same shape that real clusters program (TKE Global
// Router, TKE VPC-CNI shared ENI, kube-proxy in iptables mode, istio-iptables),
// plus real L4 proxies (HAProxy with mutual TLS) standing in for the Envoy
// sidecars.
//
// Every object lives inside network namespaces whose names start with a
// per-run prefix ("pc" + 6 hex digits); nothing is connected to, or changed
// in, the root network namespace. A run keeps its state (owner pid, sidecar
// configuration, certificates, logs) under /run/pathcost/localnet/<prefix>/.
//
// Typical use from a test binary:
//
//	func TestMain(m *testing.M) {
//		localnet.HandleSignals(func(sig os.Signal, err error) {
//			if err != nil {
//				fmt.Fprintln(os.Stderr, err)
//			}
//			os.Exit(interrupt.ExitCode(sig))
//		})
//		_ = localnet.Reap("")
//		os.Exit(m.Run())
//	}
//
//	env, err := localnet.Up(ctx, localnet.Spec{Kind: localnet.KindGR, Istio: true})
//	defer env.Down()
//	srv := env.Command(ctx, env.Server, "tcpload", "server", "-listen", env.Listen)
//	cli := env.Command(ctx, env.Client, "tcpload", "client", "-connect", env.Target)
package localnet

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"syscall"

	"github.com/pathcost/pathcost/pkg/sidecar"
)

// Kind names a topology of the seed.
type Kind string

// The topologies of the seed.
const (
	// KindPlain is two VMs on one VPC subnet (seed scenario 1).
	KindPlain Kind = "plain"
	// KindGR is two Kubernetes nodes with Global Router pod networking:
	// per-node bridge and pod CIDR, VPC route table entries pod CIDR -> node
	// (seed scenarios 2 and, with Istio, 3).
	KindGR Kind = "gr"
	// KindVPCCNI is two Kubernetes nodes with VPC-CNI shared-ENI pod
	// networking: pods take addresses of the VPC subnet (seed scenarios 4
	// and, with Istio, 5).
	KindVPCCNI Kind = "vpccni"
	// KindNodePort is a VM A dialling a NodePort on node B, which forwards
	// (kube-proxy iptables DNAT + masquerade) to the server pod on node C
	// (seed scenario 6).
	KindNodePort Kind = "nodeport"
)

// Kinds lists every supported Kind.
var Kinds = []Kind{KindPlain, KindGR, KindVPCCNI, KindNodePort}

// Defaults and fixed numbers of the emulation.
const (
	// DefaultServerPort is the seed's server port.
	DefaultServerPort = 50012
	// DefaultNodePort is the seed's NodePort.
	DefaultNodePort = 32000
	// ProxyUID is the uid (and gid) the sidecar proxies run as, as Istio's
	// istio-proxy does; istio-iptables exempts its traffic from capture.
	ProxyUID = sidecar.ProxyUID
	// OutboundCapturePort is where istio-iptables redirects outbound TCP.
	OutboundCapturePort = sidecar.OutboundPort
	// InboundCapturePort is where istio-iptables redirects inbound TCP.
	InboundCapturePort = sidecar.InboundPort
	// StateRoot holds one directory per run, named by its prefix.
	StateRoot = "/run/pathcost/localnet"
	// NetnsDir is where iproute2 keeps named network namespaces.
	NetnsDir = "/run/netns"
)

// Spec says which topology to build.
type Spec struct {
	// Kind is the topology.
	Kind Kind
	// Istio adds sidecar capture and proxies to both pods; valid with KindGR
	// and KindVPCCNI only.
	Istio bool
	// ServerPort is the port the server listens on; 0 means DefaultServerPort.
	ServerPort int
	// NodePort is the Service's node port (KindNodePort); 0 means
	// DefaultNodePort.
	NodePort int
	// SidecarThreads is the number of proxy threads per sidecar (HAProxy
	// nbthread); 0 means 1. Istio's default sidecar concurrency is 2 Envoy
	// workers; one connection is served by one worker either way.
	SidecarThreads int
	// SidecarEnv is added to the proxies' environment (NAME=value), noted in the path's notes:
	// the gate-power self-test preloads a CPU burner into them with it. Empty in measurements.
	SidecarEnv []string
	// Congestion, when set, is every namespace's default TCP congestion
	// control (net.ipv4.tcp_congestion_control, per namespace), so sockets
	// that do not choose their own (the sidecars') use it too; "" keeps the
	// machine's default, which new namespaces inherit.
	Congestion string
}

// Host is one place a process can run: an emulated VM, node or pod.
type Host struct {
	// Name is the role: "client", "server", "forwarder", or a node's name
	// ("node1", "nodeB", ...) in Env.Nodes, "vpc" for Env.VPC.
	Name string
	// NetNS is the network namespace's name (a file in /run/netns).
	NetNS string
	// Addr is the host's IP address.
	Addr string
	// Node is the emulated node (or VM) the host sits on.
	Node string
}

// Sidecar is one running proxy process.
type Sidecar struct {
	// Name is "client-side" or "server-side".
	Name string
	// Host is the pod the sidecar runs in.
	Host Host
	// PID is the proxy process's pid (the proxy itself, not a wrapper).
	PID int
	// Proxy names the proxy and version, e.g. "haproxy 2.6.12 (emulating Envoy)".
	Proxy string
}

// Env is one realised topology. Its exported fields are read-only after Up.
type Env struct {
	// Prefix is the run's unique prefix; every namespace name starts with
	// Prefix + "-".
	Prefix string
	// Spec is the normalised spec (defaults filled in).
	Spec Spec
	// Client is where the load client runs; Server where the load server runs.
	Client, Server Host
	// Forwarder is node B of KindNodePort (nil otherwise), where a sampler
	// can run.
	Forwarder *Host
	// Nodes are the emulated VMs/nodes, in order (the client's first).
	Nodes []Host
	// VPC is the namespace holding the VPC bridge and the VPC router.
	VPC Host
	// Target is the "IP:port" the client must dial.
	Target string
	// Listen is what the server must bind, e.g. "0.0.0.0:50012".
	Listen string
	// Sidecars are the running proxies (Istio only), client-side first.
	Sidecars []Sidecar
	// Notes say what is emulated and how, for the report.
	Notes []string
	// StateDir is the run's state directory.
	StateDir string

	mu         sync.Mutex
	namespaces []string
	procs      []*proc
	down       bool
}

// proc is a process started by the package (a sidecar).
type proc struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
	err  error // Wait's result, valid after done is closed
}

// normalize fills in defaults and validates the spec.
func (s Spec) normalize() (Spec, error) {
	switch s.Kind {
	case KindPlain, KindGR, KindVPCCNI, KindNodePort:
	case "":
		return s, errors.New("localnet: spec: Kind is empty (want plain, gr, vpccni or nodeport)")
	default:
		return s, fmt.Errorf("localnet: spec: unknown Kind %q (want plain, gr, vpccni or nodeport)", s.Kind)
	}
	if s.Istio && s.Kind != KindGR && s.Kind != KindVPCCNI {
		return s, fmt.Errorf("localnet: spec: Istio composes with gr or vpccni, not %q", s.Kind)
	}
	if s.ServerPort == 0 {
		s.ServerPort = DefaultServerPort
	}
	if s.NodePort == 0 {
		s.NodePort = DefaultNodePort
	}
	if s.SidecarThreads == 0 {
		s.SidecarThreads = 1
	}
	if s.ServerPort < 1 || s.ServerPort > 65535 {
		return s, fmt.Errorf("localnet: spec: ServerPort %d out of range 1-65535", s.ServerPort)
	}
	if s.NodePort < 1 || s.NodePort > 65535 {
		return s, fmt.Errorf("localnet: spec: NodePort %d out of range 1-65535", s.NodePort)
	}
	if s.SidecarThreads < 1 || s.SidecarThreads > 64 {
		return s, fmt.Errorf("localnet: spec: SidecarThreads %d out of range 1-64", s.SidecarThreads)
	}
	if s.Istio {
		switch s.ServerPort {
		case OutboundCapturePort, InboundCapturePort:
			return s, fmt.Errorf("localnet: spec: ServerPort %d collides with the sidecar capture ports", s.ServerPort)
		}
	}
	if s.Kind == KindNodePort && s.NodePort == s.ServerPort {
		return s, fmt.Errorf("localnet: spec: NodePort and ServerPort are both %d", s.NodePort)
	}
	return s, nil
}

// geteuidFn is os.Geteuid, replaceable by tests.
var geteuidFn = os.Geteuid

// tool is an external program the package runs.
type tool struct {
	name string // binary
	pkg  string // Debian package providing it
}

var (
	toolIP              = tool{"ip", "iproute2"}
	toolNsenter         = tool{"nsenter", "util-linux"}
	toolIptablesRestore = tool{"iptables-restore", "iptables"}
	toolHAProxy         = tool{"haproxy", "haproxy"}
)

// toolsFor lists the programs a spec needs.
func toolsFor(s Spec) []tool {
	ts := []tool{toolIP, toolNsenter}
	if s.Istio || s.Kind == KindNodePort {
		ts = append(ts, toolIptablesRestore)
	}
	if s.Istio {
		ts = append(ts, toolHAProxy)
	}
	return ts
}

// lookToolFn is lookTool, replaceable by tests.
var lookToolFn = lookTool

// lookTool finds a program on PATH or in the sbin directories root's PATH
// usually has.
func lookTool(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, dir := range []string{"/usr/sbin", "/sbin", "/usr/bin", "/bin", "/usr/local/sbin", "/usr/local/bin"} {
		p := dir + "/" + name
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s not found on PATH or in sbin", name)
}

// toolPath returns the resolved path of a program, or its bare name (so an
// exec error names it) when it cannot be found.
func toolPath(t tool) string {
	if p, err := lookTool(t.name); err == nil {
		return p
	}
	return t.name
}

// Requirements reports everything missing to Up the spec: an invalid spec,
// not running as root, missing capabilities or kernel support, and every
// missing program with the Debian package that provides it. It returns nil
// when Up can proceed.
func Requirements(spec Spec) error {
	s, err := spec.normalize()
	if err != nil {
		return err
	}
	var problems []string
	if geteuidFn() != 0 {
		problems = append(problems, "must run as root (network namespaces, veth, routes and iptables need CAP_SYS_ADMIN and CAP_NET_ADMIN)")
	} else if missing := missingCaps(); missing != "" {
		problems = append(problems, "missing capabilities "+missing+" (run as real root, not in a restricted container)")
	}
	if _, err := os.Stat("/proc/self/ns/net"); err != nil {
		problems = append(problems, "kernel without network namespaces (/proc/self/ns/net missing)")
	}
	var pkgs []string
	for _, t := range toolsFor(s) {
		if _, err := lookToolFn(t.name); err != nil {
			problems = append(problems, fmt.Sprintf("%s missing (Debian package %s)", t.name, t.pkg))
			if !slices.Contains(pkgs, t.pkg) {
				pkgs = append(pkgs, t.pkg)
			}
		}
	}
	if len(problems) == 0 {
		return nil
	}
	msg := "localnet: requirements not met: " + strings.Join(problems, "; ")
	if len(pkgs) > 0 {
		msg += "; install with: apt-get install -y " + strings.Join(pkgs, " ")
	}
	return errors.New(msg)
}

// missingCaps names the needed capabilities absent from the effective set.
func missingCaps() string {
	eff, err := effectiveCaps()
	if err != nil {
		return ""
	}
	var out []string
	const capNetAdmin, capSysAdmin = 12, 21
	if eff&(1<<capNetAdmin) == 0 {
		out = append(out, "CAP_NET_ADMIN")
	}
	if eff&(1<<capSysAdmin) == 0 {
		out = append(out, "CAP_SYS_ADMIN")
	}
	return strings.Join(out, " ")
}

// Command returns a command that runs name with args inside h's network
// namespace (through nsenter, which execs the program in place, so the
// command's pid is the program's). If h is not a host of a live env, the
// command's Err is set and Start fails.
//
// The command carries Pdeathsig SIGKILL so it dies with the test process.
// Linux ties Pdeathsig to the thread that forks: start it from an ordinary
// goroutine (not one that locks its OS thread and exits), or clear
// SysProcAttr.Pdeathsig. Down kills whatever still runs in the env's
// namespaces anyway.
func (e *Env) Command(ctx context.Context, h Host, name string, args ...string) *exec.Cmd {
	if ctx == nil {
		ctx = context.Background()
	}
	nsArg := "--net=" + netnsPath(h.NetNS)
	cmd := exec.CommandContext(ctx, toolPath(toolNsenter), append([]string{nsArg, "--", name}, args...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := e.checkHost(h); err != nil {
		cmd.Err = err
	}
	return cmd
}

// checkHost verifies that h is one of e's namespaces and e is up.
func (e *Env) checkHost(h Host) error {
	if e == nil {
		return errors.New("localnet: Command on a nil Env")
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.down {
		return fmt.Errorf("localnet: env %s is down", e.Prefix)
	}
	for _, ns := range e.namespaces {
		if ns == h.NetNS {
			return nil
		}
	}
	return fmt.Errorf("localnet: host %q (netns %q) is not part of env %s", h.Name, h.NetNS, e.Prefix)
}
