// Package vm is the provider that boots VMs here and hands them to the ssh provider, so that the
// scenarios run on hosts with their own kernels (per-host CPU figures) on one machine.
//
// The image is built offline from Debian's packages (debootstrap of this machine's release
// from the mirror apt uses: systemd, openssh-server, iproute2, iptables, ethtool, and for QEMU
// Debian's stock kernel) and cached by content under /var/cache/pathcost/vm/, with a root key
// generated per cache. Each VM boots a copy-on-write layer over it and is connected by a tap
// device to a bridge inside a network namespace of ours; the host's network is untouched.
//
// The hypervisor (Hypervisor) is QEMU with KVM where KVM runs a stock guest kernel, else
// User-Mode Linux (Debian's user-mode-linux), which runs the guest kernel as host processes
// with one vCPU per VM. A /dev/kvm without the CPU's virtualisation flags (a paravirtual KVM,
// as on the machines this project is developed on) boots no stock kernel, so auto picks UML
// there; QEMU without acceleration (tcg) runs the QEMU path anywhere, slowly. UML's and TCG's
// figures show the path's shape, not a cloud VM's speed.
package vm

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	xssh "golang.org/x/crypto/ssh"

	"github.com/pathcost/pathcost/pkg/provider"
	"github.com/pathcost/pathcost/pkg/provider/ssh"
	"github.com/pathcost/pathcost/pkg/provider/ssh/netns"
	"github.com/pathcost/pathcost/pkg/topo"
)

// The VM network, inside the provider's namespace only.
const (
	subnet    = "10.232.0"
	macPrefix = "52:54:00:77:00"
	maxVMs    = 4
)

// DefaultCacheDir is where images are cached.
const DefaultCacheDir = "/var/cache/pathcost/vm"

// linuxUML is Debian's UML kernel binary.
const linuxUML = "/usr/bin/linux.uml"

// umlModules is where Debian's user-mode-linux puts the kernel's modules (one version).
const umlModules = "/usr/lib/uml/modules"

// Config is what the provider needs.
type Config struct {
	// Binary is the local static tcpload binary, staged into the VMs.
	Binary string
	// CacheDir holds the images (DefaultCacheDir when empty).
	CacheDir string
	// Hypervisor boots the VMs (auto when empty: see Resolve).
	Hypervisor Hypervisor
	// Memory is each VM's memory, with a unit suffix as UML and QEMU take it (default 1024M).
	Memory string
	// BootTimeout bounds one VM's boot to its ssh banner (default 3 min, 6 min under TCG).
	BootTimeout time.Duration
	// Log receives progress lines (image build, boots); os.Stderr when nil.
	Log io.Writer
}

// Provider boots VMs on first use (client, server, and the forwarder for nodeport) and
// realises scenarios on them through the ssh provider. Close stops them.
type Provider struct {
	cfg Config
	hv  Hypervisor
	// why says why auto did not pick KVM ("" when it did, or the choice was explicit).
	why string

	mu      sync.Mutex
	img     *image
	rel     release
	ns      string
	run     string
	vms     map[string]*vmProc // by role
	inner   *ssh.Provider
	offload map[string]bool
	boots   []time.Duration
	closed  bool
}

var (
	_ provider.Provider = (*Provider)(nil)
	_ provider.Closer   = (*Provider)(nil)
)

// runRoot holds one directory per provider run, named after its namespace: the VMs'
// copy-on-write layers, consoles and UML's own files, and the owner (pid and start time).
const runRoot = "/var/tmp/pathcost-vm"

// New returns the provider; nothing is built or booted before the first Up.
func New(cfg Config) *Provider {
	if cfg.CacheDir == "" {
		cfg.CacheDir = DefaultCacheDir
	}
	if cfg.Memory == "" {
		cfg.Memory = "1024M"
	}
	hv, why := Resolve(cfg.Hypervisor)
	if cfg.BootTimeout <= 0 {
		cfg.BootTimeout = 3 * time.Minute
		if hv == HypervisorTCG {
			cfg.BootTimeout = 6 * time.Minute // every instruction emulated
		}
	}
	if cfg.Log == nil {
		cfg.Log = os.Stderr
	}
	return &Provider{cfg: cfg, hv: hv, why: why, vms: map[string]*vmProc{}, offload: map[string]bool{}}
}

// Hypervisor is the hypervisor the provider boots its VMs with (auto resolved).
func (p *Provider) Hypervisor() Hypervisor { return p.hv }

// Name is "vm".
func (p *Provider) Name() string { return "vm" }

// roleVM numbers the VMs: client 1, server 2, forwarder 3.
var roleVM = map[string]int{ssh.RoleClient: 1, ssh.RoleServer: 2, ssh.RoleForwarder: 3}

func vmAddr(role string) string { return fmt.Sprintf("%s.%d", subnet, 10+roleVM[role]) }

// Check skips the pod scenarios and machines that cannot build or boot the VMs.
func (p *Provider) Check(_ context.Context, s topo.Spec) error {
	if err := s.Validate(); err != nil {
		return err
	}
	if s.Kind != topo.KindPlain && s.Kind != topo.KindNodePort {
		return provider.Skipf("%s needs a cluster: use -provider kubeconfig", s.Name)
	}
	if err := Requirements(p.hv); err != nil {
		return provider.Skipf("%v", err)
	}
	return nil
}

// Up builds the image if it is not cached, boots the scenario's VMs that are not running yet,
// and realises the scenario on them over ssh.
func (p *Provider) Up(ctx context.Context, s topo.Spec) (provider.Path, error) {
	if err := p.Check(ctx, s); err != nil {
		return nil, err
	}
	roles := []string{ssh.RoleClient, ssh.RoleServer}
	if s.Kind == topo.KindNodePort {
		roles = append(roles, ssh.RoleForwarder)
	}
	if err := p.boot(ctx, roles); err != nil {
		return nil, err
	}
	if p.inner == nil {
		return nil, errors.New("vm provider: the VMs are not reachable (an earlier boot failed)")
	}
	pa, err := p.inner.Up(ctx, s)
	if err != nil {
		return nil, err
	}
	if err := p.offloadsOff(ctx, pa); err != nil {
		return nil, errors.Join(err, pa.Down(ctx))
	}
	return pa, nil
}

// boot builds or loads the image, makes the network and boots the VMs of roles not yet up.
func (p *Provider) boot(ctx context.Context, roles []string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return errors.New("vm provider is closed")
	}
	if p.img == nil {
		rel, err := hostRelease()
		if err != nil {
			return err
		}
		if rel.kernel, err = p.kernelFlavour(); err != nil {
			return err
		}
		img, err := ensureImage(ctx, p.cfg.CacheDir, rel, p.cfg.Log)
		if err != nil {
			return err
		}
		if img.built > 0 {
			fmt.Fprintf(p.cfg.Log, "vm: image built in %s: %s\n", img.built.Round(time.Second), img.dir)
		}
		p.img, p.rel = img, rel
	}
	if p.ns == "" {
		if err := sweep(); err != nil {
			fmt.Fprintf(p.cfg.Log, "vm: removing what earlier runs left: %v\n", err)
		}
		if err := p.makeNetwork(); err != nil {
			return err
		}
	}
	var todo []string
	for _, r := range roles {
		if p.vms[r] == nil {
			todo = append(todo, r)
		}
	}
	if len(todo) == 0 {
		return nil
	}
	start := time.Now()
	errs := make([]error, len(todo))
	var wg sync.WaitGroup
	for i, role := range todo {
		vm, err := p.startVM(role)
		if err != nil {
			errs[i] = err
			continue
		}
		p.vms[role] = vm
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = p.waitSSH(ctx, role, vm)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	took := time.Since(start)
	p.boots = append(p.boots, took)
	fmt.Fprintf(p.cfg.Log, "vm: booted %s (%d VMs at once, %s) in %s\n", strings.Join(todo, ", "), len(todo), p.hv.Describe(), took.Round(100*time.Millisecond))
	if p.inner == nil {
		return p.makeInner()
	}
	return nil
}

// makeNetwork creates the namespace with the bridge and the run directory.
func (p *Provider) makeNetwork() error {
	id := make([]byte, 3)
	_, _ = rand.Read(id)
	name := "pcvm" + hex.EncodeToString(id)
	run := filepath.Join(runRoot, name)
	if err := os.MkdirAll(run, 0o700); err != nil {
		return fmt.Errorf("vm run directory: %w", err)
	}
	p.run = run
	if err := os.WriteFile(filepath.Join(run, "owner"), []byte(selfOwner()), 0o600); err != nil {
		return fmt.Errorf("vm run directory: %w", err)
	}
	if err := netns.Add(name); err != nil {
		return err
	}
	p.ns = name
	for _, args := range [][]string{
		{"-n", name, "link", "add", "br0", "type", "bridge"},
		{"-n", name, "addr", "add", subnet + ".1/24", "dev", "br0"},
		{"-n", name, "link", "set", "br0", "up"},
	} {
		if err := netns.IP(args...); err != nil {
			return err
		}
	}
	// The host side segments its own packets to the VMs (ssh, staging): a guest with GRO off
	// (offloads off, below) drops incoming GSO frames.
	if out, err := exec.Command("ip", "netns", "exec", name, "ethtool", "-K", "br0", "tso", "off", "gso", "off").CombinedOutput(); err != nil {
		return fmt.Errorf("ethtool -K br0 tso off gso off in %s: %w: %s", name, err, out)
	}
	return nil
}

// vmProc is a running VM (UML kernel or QEMU).
type vmProc struct {
	cmd    *exec.Cmd
	exited chan struct{}
}

// startVM creates the VM's tap on the bridge and starts the VM in the namespace.
func (p *Provider) startVM(role string) (*vmProc, error) {
	n := roleVM[role]
	tap := fmt.Sprintf("tap%d", n)
	for _, args := range [][]string{
		{"-n", p.ns, "tuntap", "add", tap, "mode", "tap"},
		{"-n", p.ns, "link", "set", tap, "master", "br0", "up"},
	} {
		if err := netns.IP(args...); err != nil {
			return nil, err
		}
	}
	log, err := os.Create(filepath.Join(p.run, role+".console"))
	if err != nil {
		return nil, err
	}
	defer log.Close()
	args := append([]string{"netns", "exec", p.ns}, p.bootArgs(role, tap, fmt.Sprintf("%s:%02x", macPrefix, 10+n))...)
	cmd := exec.Command("ip", args...)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.Env = append(os.Environ(), "TMPDIR="+p.run)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s VM: %w", role, err)
	}
	vm := &vmProc{cmd: cmd, exited: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(vm.exited) }()
	return vm, nil
}

// waitSSH waits until the VM's sshd sends its banner.
func (p *Provider) waitSSH(ctx context.Context, role string, vm *vmProc) error {
	ctx, cancel := context.WithTimeout(ctx, p.cfg.BootTimeout)
	defer cancel()
	dial := netns.Dialer(netns.Path(p.ns))
	addr := vmAddr(role) + ":22"
	for {
		c, err := dial(ctx, "tcp", addr)
		if err == nil {
			buf := make([]byte, 4)
			_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
			_, err = io.ReadFull(c, buf)
			_ = c.Close()
			if err == nil && string(buf) == "SSH-" {
				return nil
			}
		}
		select {
		case <-vm.exited:
			return fmt.Errorf("%s VM exited during boot (console: %s)", role, filepath.Join(p.run, role+".console"))
		case <-ctx.Done():
			return fmt.Errorf("%s VM (%s) did not answer on ssh within %s (console: %s): %v", role, addr, p.cfg.BootTimeout, filepath.Join(p.run, role+".console"), err)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// makeInner creates the ssh provider for the VMs.
func (p *Provider) makeInner() error {
	var hosts []ssh.HostSpec
	for role := range roleVM {
		hosts = append(hosts, ssh.HostSpec{Role: role, User: "root", Addr: vmAddr(role) + ":22", Dir: ssh.DefaultDir})
	}
	inner, err := ssh.New(ssh.Config{
		Hosts:             hosts,
		Binary:            p.cfg.Binary,
		Signers:           []xssh.Signer{p.img.signer},
		NoAgent:           true,
		HostKeyCallback:   xssh.FixedHostKey(p.img.hostKey),
		HostKeyAlgorithms: []string{p.img.hostKey.Type()},
		Dial:              netns.Dialer(netns.Path(p.ns)),
		Name:              "vm",
		Notes:             []string{p.note()},
	})
	if err != nil {
		return err
	}
	p.inner = inner
	return nil
}

// note describes the VMs for the run's notes.
func (p *Provider) note() string {
	var s string
	switch p.hv {
	case HypervisorUML:
		s = fmt.Sprintf("vm: hypervisor User-Mode Linux (Debian user-mode-linux, guest kernel %s as host processes, 1 vCPU and %s per VM)", strings.TrimPrefix(p.rel.kernel, "uml"), p.cfg.Memory)
	default:
		s = fmt.Sprintf("vm: hypervisor %s (Debian's kernel %s, 1 vCPU and %s per VM, virtio disk and network)", p.hv.Describe(), p.img.kernelVersion, p.cfg.Memory)
	}
	s += fmt.Sprintf(", image debootstrap %s; VMs on a bridge in a network namespace of the run", p.rel.suite)
	switch p.hv {
	case HypervisorUML:
		s += ". UML's figures show the path's shape, not a cloud VM's speed"
	case HypervisorTCG:
		s += ". TCG emulates every guest instruction: its figures show the path's shape at a small fraction of a real VM's speed"
	}
	if p.why != "" {
		s += " (" + p.why + ")"
	}
	return s
}

// kernelFlavour names the guest kernel in the image's cache key: "uml" and the UML kernel's
// version, or qemuKernel.
func (p *Provider) kernelFlavour() (string, error) {
	if p.hv.qemu() {
		return qemuKernel, nil
	}
	v, err := umlKernel()
	return "uml" + v, err
}

// offloadsOff turns off the segmentation and checksum offloads of each UML VM's eth0 (vec0)
// once: with them on, UML's vector driver carries about 2 Mbps with heavy retransmits.
// virtio-net under QEMU needs no such thing.
func (p *Provider) offloadsOff(ctx context.Context, pa provider.Path) error {
	if p.hv != HypervisorUML {
		return nil
	}
	for _, h := range []provider.Host{pa.Client(), pa.Server(), pa.Forwarder()} {
		if h == nil || p.offload[h.Name()] {
			continue
		}
		c, ok := h.(provider.Commander)
		if !ok {
			return fmt.Errorf("%s VM: the ssh host runs no commands", h.Name())
		}
		if _, err := c.Command(ctx, "ethtool", "-K", "eth0", "tso", "off", "gso", "off", "tx", "off", "sg", "off", "gro", "off"); err != nil {
			return fmt.Errorf("%s VM: offloads off: %w", h.Name(), err)
		}
		p.offload[h.Name()] = true
	}
	return nil
}

// BootTimes are the wall times of the boots so far (VMs booted together count once).
func (p *Provider) BootTimes() []time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]time.Duration(nil), p.boots...)
}

// Close closes the ssh provider (which cleans up inside the VMs), stops the VMs, deletes the
// namespace and the run directory (copy-on-write layers, consoles).
func (p *Provider) Close(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil
	}
	p.closed = true
	var errs []error
	if p.inner != nil {
		errs = append(errs, p.inner.Close(ctx))
	}
	for _, vm := range p.vms {
		_ = syscall.Kill(-vm.cmd.Process.Pid, syscall.SIGKILL)
	}
	if p.ns != "" {
		errs = append(errs, netns.Delete(p.ns))
	}
	if p.run != "" {
		errs = append(errs, os.RemoveAll(p.run))
		_ = os.Remove(runRoot) // when no other run uses it
	}
	return errors.Join(errs...)
}

// selfOwner identifies this process: pid and start time (a reused pid has another).
func selfOwner() string { return ownerOf(os.Getpid()) }

func ownerOf(pid int) string {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ""
	}
	s := string(data)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 20 {
		return ""
	}
	return fmt.Sprintf("%d %s", pid, f[19])
}

// sweep removes the VMs, namespaces and run directories of runs whose process is gone (killed
// before Close); the first boot of a run calls it.
func sweep() error {
	entries, err := os.ReadDir(runRoot)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	} else if err != nil {
		return err
	}
	var errs []error
	for _, e := range entries {
		name := e.Name()
		if !strings.HasPrefix(name, "pcvm") {
			continue
		}
		owner, _ := os.ReadFile(filepath.Join(runRoot, name, "owner"))
		var pid int
		if _, err := fmt.Sscanf(string(owner), "%d", &pid); err == nil && pid > 0 && ownerOf(pid) == string(owner) {
			continue // alive
		}
		errs = append(errs, netns.Delete(name), os.RemoveAll(filepath.Join(runRoot, name)))
	}
	return errors.Join(errs...)
}
