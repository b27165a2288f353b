// Package local is the provider that realises scenarios in network namespaces on this machine
// (pkg/localnet): seconds to set up, needs root, every host shares one kernel.
package local

import (
	"context"
	"fmt"
	"io"
	"os/exec"
	"strconv"
	"strings"
	"sync"

	"github.com/pathcost/pathcost/pkg/localnet"
	"github.com/pathcost/pathcost/pkg/provider"
	"github.com/pathcost/pathcost/pkg/topo"
)

// Provider realises scenarios with localnet and runs the tcpload binary at Binary in them.
type Provider struct {
	// Binary is the path of the tcpload binary to run in the namespaces.
	Binary string
	// Congestion, when set, is every namespace's default TCP congestion control, so the
	// sidecars' connections use the algorithm tcpload's sockets are given (localnet.Spec).
	Congestion string
	// SidecarEnv is added to the emulated sidecars' environment (localnet.Spec): the
	// gate-power self-test preloads a CPU burner into them with it.
	SidecarEnv []string

	mu       sync.Mutex
	prefixes []string // of every env this provider brought up
}

var (
	_ provider.Provider  = (*Provider)(nil)
	_ provider.Sweeper   = (*Provider)(nil)
	_ provider.Separator = (*path)(nil)
)

// New returns the local provider running the tcpload binary at bin.
func New(bin string) *Provider { return &Provider{Binary: bin} }

// Name is "local".
func (p *Provider) Name() string { return "local" }

// spec maps a scenario to localnet's topology.
func (p *Provider) spec(s topo.Spec) localnet.Spec {
	return localnet.Spec{Kind: localnet.Kind(s.Kind), Istio: s.Istio, Congestion: p.Congestion, SidecarEnv: p.SidecarEnv}
}

// Check skips when localnet's requirements (root, capabilities, programs) are not met.
func (p *Provider) Check(_ context.Context, s topo.Spec) error {
	if err := s.Validate(); err != nil {
		return err
	}
	if err := localnet.Requirements(p.spec(s)); err != nil {
		return provider.Skipf("%v", err)
	}
	return nil
}

// Up builds the scenario's namespaces, links, rules and sidecars.
func (p *Provider) Up(ctx context.Context, s topo.Spec) (provider.Path, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	e, err := localnet.Up(ctx, p.spec(s))
	if err != nil {
		return nil, fmt.Errorf("realise %s: %w", s.Name, err)
	}
	p.mu.Lock()
	p.prefixes = append(p.prefixes, e.Prefix)
	p.mu.Unlock()
	return &path{spec: s, env: e, bin: p.Binary}, nil
}

// Sweep removes what runs whose owner process died left behind.
func (p *Provider) Sweep(context.Context) error { return localnet.Reap("") }

// Leftovers lists the namespaces, state directories and processes still there of the envs this
// provider brought up (other processes' runs on the machine are theirs to account for).
func (p *Provider) Leftovers(context.Context) ([]string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []string
	for _, prefix := range p.prefixes {
		left, err := localnet.Leftovers(prefix)
		if err != nil {
			return out, err
		}
		out = append(out, left...)
	}
	return out, nil
}

// path is a realised localnet environment.
type path struct {
	spec topo.Spec
	env  *localnet.Env
	bin  string

	mu       sync.Mutex
	separate bool // tcpload processes start on their node's CPUs (Separate)
	cpus     nodeCPUs
}

func (p *path) Spec() topo.Spec       { return p.spec }
func (p *path) Client() provider.Host { return p.host(p.env.Client) }
func (p *path) Server() provider.Host { return p.host(p.env.Server) }
func (p *path) Target() string        { return p.env.Target }
func (p *path) Listen() string        { return p.env.Listen }
func (p *path) SharedKernel() bool    { return true }
func (p *path) Notes() []string       { return withoutPrefix(p.env.Notes, p.env.Prefix) }

func (p *path) Forwarder() provider.Host {
	if p.env.Forwarder == nil {
		return nil
	}
	return p.host(*p.env.Forwarder)
}

func (p *path) Sidecars() []provider.Sidecar {
	var out []provider.Sidecar
	for _, sc := range p.env.Sidecars {
		out = append(out, provider.Sidecar{Side: sc.Name, Host: p.host(sc.Host), Watch: strconv.Itoa(sc.PID), Proxy: sc.Proxy, Emulated: true})
	}
	return out
}

func (p *path) Down(context.Context) error { return p.env.Down() }

func (p *path) host(h localnet.Host) *host { return &host{path: p, h: h} }

// Separate puts the client's node's processes (tcpload and sidecar) on the second half of this
// process's CPUs and the server's node's on the first half, or lets them all share every CPU
// again. A forwarding node runs no process of the path's own (its sampler stays unpinned): its
// work, like all packet work, is the kernel's, which runs where the kernel puts it.
func (p *path) Separate(separate bool) (string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cpus.all == nil {
		cpus, err := allowedCPUs()
		if err != nil {
			return "", fmt.Errorf("separate nodes' CPUs: %w", err)
		}
		p.cpus, _ = splitCPUs(cpus)
	}
	if p.cpus.client == nil || p.env.Client.Node == p.env.Server.Node {
		p.separate = false
		return "", nil
	}
	p.separate = separate
	for _, sc := range p.env.Sidecars {
		cpus := p.nodeCPUs(sc.Host)
		if cpus == nil {
			cpus = p.cpus.all
		}
		if err := pinProcess(sc.PID, cpus); err != nil {
			return "", fmt.Errorf("sidecar %s: %w", sc.Name, err)
		}
	}
	if !separate {
		return "", nil
	}
	return fmt.Sprintf("nodes on CPUs of their own: the client's node (%s) on CPU %s, the server's node (%s) on CPU %s, for tcpload and sidecars; the kernel's packet work runs where the kernel puts it",
		p.env.Client.Node, cpuList(p.cpus.client), p.env.Server.Node, cpuList(p.cpus.server)), nil
}

// nodeCPUs are the CPUs of h's node while the nodes are separate (nil: any CPU). The caller
// holds p.mu.
func (p *path) nodeCPUs(h localnet.Host) []int {
	switch {
	case !p.separate:
		return nil
	case h.Node == p.env.Client.Node:
		return p.cpus.client
	case h.Node == p.env.Server.Node:
		return p.cpus.server
	}
	return nil
}

// withoutPrefix drops the note naming the run's random prefix, so notes are the same on every Up
// of a spec (the report deduplicates them across rows).
func withoutPrefix(notes []string, prefix string) []string {
	var out []string
	for _, n := range notes {
		if !strings.Contains(n, prefix) {
			out = append(out, n)
		}
	}
	return out
}

// host is one namespace of an env.
type host struct {
	path *path
	h    localnet.Host
}

var _ provider.Commander = (*host)(nil)

func (h *host) Name() string { return h.h.Name }

// Start runs tcpload in the host's namespace (on its node's CPUs while the path's nodes are
// separate).
func (h *host) Start(ctx context.Context, args []string, stdout, stderr io.Writer) (provider.Proc, error) {
	name, what := h.path.bin, firstArg(args)
	h.path.mu.Lock()
	cpus := h.path.nodeCPUs(h.h)
	h.path.mu.Unlock()
	if cpus != nil {
		var err error
		if name, args, err = pinned(cpus, h.path.bin, args...); err != nil {
			return nil, err
		}
	}
	cmd := h.path.env.Command(ctx, h.h, name, args...)
	cmd.Stdout, cmd.Stderr = stdout, stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start tcpload %s in %s (netns %s): %w", what, h.h.Name, h.h.NetNS, err)
	}
	return &proc{cmd: cmd, host: h.h.Name, what: what}, nil
}

// Command runs a program in the host's namespace and returns its combined output.
func (h *host) Command(ctx context.Context, name string, args ...string) ([]byte, error) {
	out, err := h.path.env.Command(ctx, h.h, name, args...).CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("%s %s in %s (netns %s): %w: %s", name, strings.Join(args, " "), h.h.Name, h.h.NetNS, err, out)
	}
	return out, nil
}

func firstArg(args []string) string {
	if len(args) == 0 {
		return ""
	}
	return args[0]
}

// proc is a tcpload process in a namespace.
type proc struct {
	cmd        *exec.Cmd
	host, what string
}

func (p *proc) Wait() error {
	if err := p.cmd.Wait(); err != nil {
		return fmt.Errorf("tcpload %s in %s: %w", p.what, p.host, err)
	}
	return nil
}
