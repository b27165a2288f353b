// Package provider is the one interface between the scenario suite and the places a scenario can
// run. Build tags choose WHAT is measured (a topo.Spec); a Provider chooses WHERE: network
// namespaces on this machine (pkg/provider/local), a Kubernetes cluster (pkg/provider/kube), hosts
// over ssh. The suite talks to Paths and Hosts only, so running, collecting, aggregating and gating
// are written once for every provider.
//
// Every process the suite starts is tcpload (server, client or sample), and every record comes
// back the same way: `tcpload ... --json -` on the process's stdout.
//
// Optional capabilities are interfaces a value may also implement, asserted where they are used
// (as e2e-framework does with its cluster providers): Closer and Sweeper on a Provider, Separator
// on a Path, Commander on a Host.
package provider

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/pathcost/pathcost/pkg/topo"
)

// Provider realises scenarios.
type Provider interface {
	// Name is the -provider value: local, nskube, kubeconfig, kind, ssh, vm.
	Name() string
	// Check returns nil when the provider can realise s here. A *Skip error (see Skipf) says why
	// it cannot and the suite skips the scenario with that reason (e.g. "nodeport needs 3
	// schedulable nodes, the cluster has 2: node-a, node-b"); any other error is a failure (an
	// API server that does not answer, RBAC forbidding a verb).
	Check(ctx context.Context, s topo.Spec) error
	// Up realises s and returns it ready for traffic. On error it has removed what it made.
	// Realising topo.Plain gives the baseline: on a cluster, host-network pods on the same two
	// nodes the pod scenarios use.
	Up(ctx context.Context, s topo.Spec) (Path, error)
}

// Path is one realised scenario.
type Path interface {
	// Spec is the scenario realised.
	Spec() topo.Spec
	// Client is where `tcpload client` runs, Server where `tcpload server` runs.
	Client() Host
	Server() Host
	// Forwarder is the node that forwards the traffic (NodePort's node B), where `tcpload sample`
	// runs; nil when the path has none.
	Forwarder() Host
	// Target is the host:port the client dials; Listen is what the server binds.
	Target() string
	Listen() string
	// Sidecars are the proxies in the path, client-side first; empty without sidecars.
	Sidecars() []Sidecar
	// SharedKernel is true when client, server and forwarder run on one kernel (and so one set
	// of CPUs): then node figures are the machine's, not each node's.
	SharedKernel() bool
	// Notes say what was realised and how (emulated parts, what was found on a cluster), for the
	// report. They are stable across Ups of the same spec on one provider.
	Notes() []string
	// Down removes everything Up made. It is safe to call more than once.
	Down(ctx context.Context) error
}

// Host is one place a process runs: a network namespace, a pod, a VM.
type Host interface {
	// Name names the host for logs and errors (e.g. "client", "node-b").
	Name() string
	// Start starts tcpload with args (without the program name: "server", "--listen", ...) on
	// the host, its standard output to stdout and its standard error to stderr. Cancelling ctx
	// kills it. The record comes back on stdout when args hold "--json -".
	Start(ctx context.Context, args []string, stdout, stderr io.Writer) (Proc, error)
}

// Proc is a started tcpload process.
type Proc interface {
	// Wait waits for the process to exit and for its output to be copied; a non-zero exit
	// status is an error that names the host.
	Wait() error
}

// Sidecar is one proxy in the path.
type Sidecar struct {
	// Side is "client-side" or "server-side".
	Side string
	// Host is the pod (or namespace) the proxy runs in.
	Host Host
	// Watch is what `tcpload --watch sidecar=WATCH` needs to find the proxy from the tcpload
	// process beside it: a pid ("4711"), or "comm:NAME" (a process of that name visible to
	// tcpload, e.g. in a pod with shareProcessNamespace).
	Watch string
	// Proxy names the proxy and its version, e.g. "haproxy 2.6.12" or "envoy 1.27".
	Proxy string
	// Emulated is true when the proxy stands in for Istio's Envoy (HAProxy with istio-iptables
	// shaped rules), false when it is a real Istio sidecar.
	Emulated bool
}

// Sidecar sides.
const (
	ClientSide = "client-side"
	ServerSide = "server-side"
)

// Closer is implemented by providers that hold something for the whole run (a cluster they
// brought up): Close releases it. The suite calls it once at the end.
type Closer interface {
	Close(ctx context.Context) error
}

// Sweeper is implemented by providers that can find and remove what earlier runs left behind
// (their process gone), and list what is still there.
type Sweeper interface {
	// Sweep removes what runs whose process is gone left behind.
	Sweep(ctx context.Context) error
	// Leftovers lists what of this process's own runs is still there (empty after every Down).
	Leftovers(ctx context.Context) ([]string, error)
}

// Commander is implemented by hosts that can run a program other than tcpload, as the suite's
// self-tests need (tc to throttle a link, iptables to bypass a sidecar). It returns the combined
// output.
type Commander interface {
	Command(ctx context.Context, name string, args ...string) ([]byte, error)
}

// Separator is implemented by paths whose nodes share one machine's CPUs (the local provider's
// namespaces): Separate(true) gives each node that runs processes CPUs of its own, as separate
// machines have, for the tcpload processes started next and the sidecars already running;
// Separate(false) lets them share every CPU again. The suite separates the nodes for its cost
// runs: which CPU a process lands on next to which other process otherwise moves CPU per byte by
// a fifth from run to run. It returns what it did, for the run's notes ("" when it did nothing:
// too few CPUs).
type Separator interface {
	Separate(separate bool) (string, error)
}

// ErrNotImplemented is wrapped by providers that exist by name but cannot run yet.
var ErrNotImplemented = errors.New("not implemented")

// Skip is a Check error meaning "this provider cannot realise the scenario here".
type Skip struct {
	Reason string
}

func (s *Skip) Error() string { return s.Reason }

// Skipf returns a *Skip with a formatted reason.
func Skipf(format string, args ...any) error { return &Skip{Reason: fmt.Sprintf(format, args...)} }

// IsSkip reports whether err is (or wraps) a *Skip.
func IsSkip(err error) bool {
	var s *Skip
	return errors.As(err, &s)
}
