// Package ssh is the provider for hosts you already have: it logs in over ssh
// (golang.org/x/crypto/ssh; keys from ssh-agent or a key file, host keys checked against
// known_hosts), stages the static tcpload binary on each host (checksum-compared), runs
// tcpload there with its record coming back on stdout, and removes what it put there.
//
// It realises plain (client and server hosts) and nodeport (client, forwarder and server
// hosts; the rules kube-proxy writes in iptables mode are applied on the forwarder for the run
// and removed after); the pod scenarios need a cluster and are skipped. Every host has its own
// kernel unless two roles are given the same machine, so node figures are per host.
//
// What the provider changes on a host is undone by a guard: a shell it keeps open on each
// host that cleans up when the provider closes it or when the connection drops (this process
// was killed), so an interrupted run leaves no process, file or rule behind.
package ssh

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	xssh "golang.org/x/crypto/ssh"

	"github.com/pathcost/pathcost/pkg/localnet"
	"github.com/pathcost/pathcost/pkg/provider"
	"github.com/pathcost/pathcost/pkg/topo"
)

// Config is what the provider needs.
type Config struct {
	// Hosts are the hosts by role (see ParseHosts): client and server, forwarder for nodeport.
	Hosts []HostSpec
	// Binary is the local path of the static tcpload binary to stage.
	Binary string
	// KeyFile is a private key without passphrase (-ssh-key); keys in ssh-agent are used too.
	KeyFile string
	// Signers are extra keys (the vm provider's generated key).
	Signers []xssh.Signer
	// NoAgent ignores ssh-agent.
	NoAgent bool
	// KnownHosts is the known_hosts file (default ~/.ssh/known_hosts).
	KnownHosts string
	// Insecure accepts any host key (-ssh-insecure, for throwaway VMs).
	Insecure bool
	// HostKeyCallback, when set, checks host keys instead of known_hosts (the vm provider pins
	// the key of the image it built).
	HostKeyCallback xssh.HostKeyCallback
	// HostKeyAlgorithms, with HostKeyCallback, are the algorithms of the keys it accepts
	// (e.g. ssh-ed25519), so the host presents one of those.
	HostKeyAlgorithms []string
	// Dial dials the hosts (default net.Dialer); netns.Dialer dials from inside a namespace.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// ConnectTimeout bounds dialling and logging in to one host (default DefaultConnectTimeout).
	ConnectTimeout time.Duration
	// Keep leaves the staged binary on the hosts at Close, so the next run copies nothing.
	Keep bool
	// Name is the provider's name (default "ssh").
	Name string
	// Notes are added to every path's notes (the vm provider says what it booted).
	Notes []string
}

func (c Config) name() string {
	if c.Name == "" {
		return "ssh"
	}
	return c.Name
}

// Provider realises scenarios on ssh hosts. Connections are made on first use and kept until
// Close.
type Provider struct {
	cfg   Config
	auth  *auth
	keys  *hostKeys
	bin   *binary
	runID string

	mu      sync.Mutex
	remotes map[string]*remote // by role
	paths   int
	copied  atomic.Int64
	closed  bool
}

var (
	_ provider.Provider = (*Provider)(nil)
	_ provider.Closer   = (*Provider)(nil)
)

// binary is the local tcpload binary.
type binary struct {
	path, sum, arch string
	data            []byte
}

func loadBinary(path string) (*binary, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("tcpload binary: %w", err)
	}
	f, err := elf.Open(path)
	if err != nil {
		return nil, fmt.Errorf("tcpload binary %s: not an ELF executable: %w", path, err)
	}
	defer f.Close()
	arch := map[elf.Machine]string{elf.EM_X86_64: "x86_64", elf.EM_AARCH64: "aarch64", elf.EM_386: "i686", elf.EM_RISCV: "riscv64"}[f.Machine]
	if arch == "" {
		arch = f.Machine.String()
	}
	if interp := f.Section(".interp"); interp != nil {
		return nil, fmt.Errorf("tcpload binary %s is dynamically linked: build it with CGO_ENABLED=0 so it runs on any host", path)
	}
	sum := sha256.Sum256(data)
	return &binary{path: path, sum: hex.EncodeToString(sum[:]), arch: arch, data: data}, nil
}

// New checks cfg (hosts, keys, known_hosts, binary) without connecting.
func New(cfg Config) (*Provider, error) {
	hosts, err := validateHosts(append([]HostSpec(nil), cfg.Hosts...))
	if err != nil {
		return nil, err
	}
	cfg.Hosts = hosts
	if cfg.ConnectTimeout <= 0 {
		cfg.ConnectTimeout = DefaultConnectTimeout
	}
	if cfg.Dial == nil {
		var d net.Dialer
		cfg.Dial = d.DialContext
	}
	bin, err := loadBinary(cfg.Binary)
	if err != nil {
		return nil, err
	}
	keys, err := loadHostKeys(cfg)
	if err != nil {
		return nil, err
	}
	a, err := loadAuth(cfg)
	if err != nil {
		return nil, err
	}
	id := make([]byte, 4)
	_, _ = rand.Read(id)
	return &Provider{cfg: cfg, auth: a, keys: keys, bin: bin, runID: "run-" + hex.EncodeToString(id), remotes: map[string]*remote{}}, nil
}

// Name is "ssh" (or Config.Name).
func (p *Provider) Name() string { return p.cfg.name() }

// Copied is how many bytes of tcpload the provider has copied to hosts so far.
func (p *Provider) Copied() int64 { return p.copied.Load() }

// RunDir is the run directory the provider uses under a host's staging directory.
func (p *Provider) RunDir(h HostSpec) string { return h.dir() + "/" + p.runID }

func (p *Provider) spec(role string) (HostSpec, bool) {
	for _, h := range p.cfg.Hosts {
		if h.Role == role {
			return h, true
		}
	}
	return HostSpec{}, false
}

// roles lists the hosts a scenario needs.
func roles(s topo.Spec) []string {
	if s.Kind == topo.KindNodePort {
		return []string{RoleClient, RoleForwarder, RoleServer}
	}
	return []string{RoleClient, RoleServer}
}

// Check skips the pod scenarios, nodeport without a forwarder host, and a forwarder that
// lacks iptables or root. It connects to the hosts the check needs: a host that cannot be
// reached is an error, not a skip.
func (p *Provider) Check(ctx context.Context, s topo.Spec) error {
	if err := s.Validate(); err != nil {
		return err
	}
	switch s.Kind {
	case topo.KindPlain:
		return nil
	case topo.KindNodePort:
	default:
		return provider.Skipf("%s needs a cluster: use -provider kubeconfig", s.Name)
	}
	fw, ok := p.spec(RoleForwarder)
	if !ok {
		return provider.Skipf("nodeport needs a third host that forwards: -hosts client=USER@HOST,server=USER@HOST,forwarder=USER@HOST")
	}
	rs, err := p.connect(ctx, RoleForwarder)
	if err != nil {
		return err
	}
	r := rs[0]
	if r.info.iptables == "" {
		return provider.Skipf("nodeport needs iptables on the forwarder host %s: iptables-restore not found (apt-get install iptables)", fw.Target())
	}
	if r.info.uid != "0" {
		return provider.Skipf("nodeport needs root on the forwarder host %s to apply kube-proxy's rules: logged in as uid %s", fw.Target(), r.info.uid)
	}
	return nil
}

// connect returns the remotes of roles, connecting (in parallel) to those not connected yet.
func (p *Provider) connect(ctx context.Context, roles ...string) ([]*remote, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, fmt.Errorf("%s provider is closed", p.Name())
	}
	byTarget := map[string]*remote{}
	for _, r := range p.remotes {
		byTarget[r.spec.Target()+r.spec.dir()] = r
	}
	var fresh []*remote
	for _, role := range roles {
		if p.remotes[role] != nil {
			continue
		}
		h, ok := p.spec(role)
		if !ok {
			return nil, fmt.Errorf("no %s host given", role)
		}
		if r := byTarget[h.Target()+h.dir()]; r != nil {
			r.roles = append(r.roles, role)
			p.remotes[role] = r
			continue
		}
		r := &remote{spec: h, roles: []string{role}, run: p.RunDir(h)}
		byTarget[h.Target()+h.dir()] = r
		p.remotes[role] = r
		fresh = append(fresh, r)
	}
	errs := make([]error, len(fresh))
	var wg sync.WaitGroup
	for i, r := range fresh {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = p.open(ctx, r)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		for role, r := range p.remotes {
			if r.client == nil || r.guardSess == nil {
				delete(p.remotes, role)
			}
		}
		return nil, err
	}
	out := make([]*remote, len(roles))
	for i, role := range roles {
		out[i] = p.remotes[role]
	}
	return out, nil
}

// open logs in, starts the guard and probes the host.
func (p *Provider) open(ctx context.Context, r *remote) error {
	c, err := connect(ctx, r.spec, p.cfg.Dial, p.auth, p.keys, p.cfg.ConnectTimeout)
	if err != nil {
		return err
	}
	r.client = c
	if err := r.startGuard(p.cfg.Keep); err != nil {
		_ = c.Close()
		r.client = nil
		return err
	}
	if err := r.probe(ctx); err != nil {
		_ = r.closeGuard()
		_ = c.Close()
		r.guardSess, r.client = nil, nil
		return err
	}
	return nil
}

// Up connects to the scenario's hosts, stages tcpload on them and, for nodeport, applies the
// forwarding rules on the forwarder.
func (p *Provider) Up(ctx context.Context, s topo.Spec) (provider.Path, error) {
	if err := p.Check(ctx, s); err != nil {
		return nil, err
	}
	rs, err := p.connect(ctx, roles(s)...)
	if err != nil {
		return nil, err
	}
	errs := make([]error, len(rs))
	var wg sync.WaitGroup
	for i, r := range rs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n, err := r.stage(ctx, p.bin)
			p.copied.Add(n)
			errs[i] = err
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	p.mu.Lock()
	p.paths++
	id := "p" + strconv.Itoa(p.paths)
	p.mu.Unlock()
	pa := &path{p: p, id: id, spec: s, client: rs[0], server: rs[len(rs)-1], listen: "0.0.0.0:" + strconv.Itoa(localnet.DefaultServerPort)}
	pa.target = net.JoinHostPort(pa.server.spec.dataAddr(), strconv.Itoa(localnet.DefaultServerPort))
	if s.Kind == topo.KindNodePort {
		pa.forwarder = rs[1]
		if err := pa.applyNodePort(ctx); err != nil {
			return nil, errors.Join(err, pa.Down(ctx))
		}
	}
	return pa, nil
}

// Close stops every process the provider started, undoes every change, removes the run
// directory and (unless Keep) the binary on every host, and logs out.
func (p *Provider) Close(context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil
	}
	p.closed = true
	seen := map[*remote]bool{}
	var errs []error
	for _, r := range p.remotes {
		if seen[r] {
			continue
		}
		seen[r] = true
		errs = append(errs, r.closeGuard())
		errs = append(errs, ignoreClosed(r.client.Close()))
	}
	errs = append(errs, p.auth.closer())
	return errors.Join(errs...)
}

func ignoreClosed(err error) error {
	if err == nil || errors.Is(err, net.ErrClosed) || errors.Is(err, io.EOF) {
		return nil
	}
	return err
}

// path is a realised scenario on ssh hosts.
type path struct {
	p                         *Provider
	id                        string
	spec                      topo.Spec
	client, server, forwarder *remote
	target, listen            string
	rules                     string // the nodeport rules, for Notes

	mu    sync.Mutex
	procs []*proc
	n     int
	down  bool
}

func (pa *path) Spec() topo.Spec       { return pa.spec }
func (pa *path) Client() provider.Host { return pa.host(pa.client, RoleClient) }
func (pa *path) Server() provider.Host { return pa.host(pa.server, RoleServer) }
func (pa *path) Target() string        { return pa.target }
func (pa *path) Listen() string        { return pa.listen }

func (pa *path) Sidecars() []provider.Sidecar { return nil }

func (pa *path) Forwarder() provider.Host {
	if pa.forwarder == nil {
		return nil
	}
	return pa.host(pa.forwarder, RoleForwarder)
}

func (pa *path) remotes() []*remote {
	rs := []*remote{pa.client, pa.server}
	if pa.forwarder != nil {
		rs = append(rs, pa.forwarder)
	}
	return rs
}

// SharedKernel is true when two of the path's hosts report the same boot id (the same
// machine given twice, or network namespaces of one machine).
func (pa *path) SharedKernel() bool {
	seen := map[string]bool{}
	for _, r := range pa.remotes() {
		if seen[r.info.boot] {
			return true
		}
		seen[r.info.boot] = true
	}
	return false
}

// Notes say which hosts ran what, on which kernels.
func (pa *path) Notes() []string {
	var hosts []string
	for _, r := range pa.remotes() {
		hosts = append(hosts, fmt.Sprintf("%s %s (%s, Linux %s %s)", r.roles[0], r.spec.Target(), r.info.os, r.info.kernel, r.info.arch))
	}
	notes := append([]string(nil), pa.p.cfg.Notes...)
	notes = append(notes, pa.p.Name()+": hosts over ssh: "+strings.Join(hosts, "; "))
	if pa.SharedKernel() {
		notes = append(notes, pa.p.Name()+": some hosts share one kernel (same boot id): their node figures are one machine's")
	} else {
		notes = append(notes, pa.p.Name()+": every host has its own kernel (distinct boot ids): node figures are per host")
	}
	if pa.forwarder != nil {
		notes = append(notes, pa.rules)
	}
	return notes
}

// Down stops the path's processes that still run and undoes its rules. Safe to call twice.
func (pa *path) Down(ctx context.Context) error {
	pa.mu.Lock()
	if pa.down {
		pa.mu.Unlock()
		return nil
	}
	pa.down = true
	procs := pa.procs
	pa.mu.Unlock()
	for _, pr := range procs {
		pr.stop()
	}
	var errs []error
	seen := map[*remote]bool{}
	for _, r := range pa.remotes() {
		if seen[r] {
			continue
		}
		seen[r] = true
		_, err := r.output(ctx, nil, downScript, r.spec.dir(), r.run, pa.id)
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// downScript kills a path's processes that still run and runs its undo script; args: DIR RUN ID.
const downScript = `dir=$1; run=$2; id=$3
for f in "$run"/pids/"$id"-*; do
  [ -f "$f" ] || continue
  p=$(cat "$f")
  case "$(readlink "/proc/$p/exe" 2>/dev/null)" in "$dir/tcpload"*) kill -KILL "$p" 2>/dev/null;; esac
  rm -f "$f"
done
if [ -f "$run/undo/$id.sh" ]; then sh "$run/undo/$id.sh" && rm -f "$run/undo/$id.sh"; fi
`

func (pa *path) host(r *remote, role string) *host { return &host{pa: pa, r: r, role: role} }

// host is one role of a path on a remote.
type host struct {
	pa   *path
	r    *remote
	role string
}

var _ provider.Commander = (*host)(nil)

func (h *host) Name() string { return h.role }

// Start runs the staged tcpload with args on the host over an ssh session. Cancelling ctx
// sends SIGTERM (the record is still written), SIGKILL after 5 s.
func (h *host) Start(ctx context.Context, args []string, stdout, stderr io.Writer) (provider.Proc, error) {
	h.pa.mu.Lock()
	if h.pa.down {
		h.pa.mu.Unlock()
		return nil, fmt.Errorf("%s: path is down", h.r.name())
	}
	h.pa.n++
	pidfile := fmt.Sprintf("%s/pids/%s-%d", h.r.run, h.pa.id, h.pa.n)
	h.pa.mu.Unlock()
	what := "tcpload " + firstWord(args) + " on " + h.r.name()
	s, err := h.r.client.NewSession()
	if err != nil {
		return nil, fmt.Errorf("%s: open session: %w", what, err)
	}
	in, err := s.StdinPipe()
	if err != nil {
		_ = s.Close()
		return nil, fmt.Errorf("%s: stdin: %w", what, err)
	}
	out, errOut := &detachable{w: stdout}, &detachable{w: stderr}
	s.Stdout, s.Stderr = out, errOut
	script := fmt.Sprintf(runScript, int(stopGrace/(100*time.Millisecond)))
	if err := s.Start(shellCommand(script, append([]string{pidfile, h.r.bin()}, args...)...)); err != nil {
		_ = s.Close()
		return nil, fmt.Errorf("%s: start: %w", what, err)
	}
	pr := &proc{sess: s, stdin: in, stdout: out, stderr: errOut, what: what, stopped: make(chan struct{}), abandoned: make(chan struct{})}
	pr.cancel = context.AfterFunc(ctx, pr.stop)
	h.pa.mu.Lock()
	h.pa.procs = append(h.pa.procs, pr)
	h.pa.mu.Unlock()
	return pr, nil
}

// Command runs a program on the host and returns its combined output.
func (h *host) Command(ctx context.Context, name string, args ...string) ([]byte, error) {
	out, err := h.r.output(ctx, nil, `PATH=$PATH:/usr/sbin:/sbin; exec "$@" 2>&1`, append([]string{name}, args...)...)
	if err != nil {
		return out, fmt.Errorf("%s %s: %w", name, strings.Join(args, " "), err)
	}
	return out, nil
}

func firstWord(args []string) string {
	if len(args) == 0 {
		return ""
	}
	return args[0]
}
