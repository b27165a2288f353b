// Package sshtest builds ssh hosts for tests on one machine: network namespaces the test
// creates (a bridge in a "ctl" namespace, one namespace per host joined to it by a veth pair,
// addresses inside them only), each running Debian's sshd with a host key and an authorized
// key generated for the test. Nothing is added to the root network namespace; Close (registered
// with t.Cleanup) kills every process in the namespaces and deletes them.
//
// The hosts share this machine's kernel and file system: a test gives each host its own
// staging directory.
package sshtest

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	xssh "golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/pathcost/pathcost/pkg/provider/ssh/netns"
)

// Sshd is Debian's sshd (package openssh-server).
const Sshd = "/usr/sbin/sshd"

// Subnet is the lab's /24 (inside the lab's namespaces only).
const Subnet = "10.231.7"

// Host is one lab host.
type Host struct {
	// Name is the host's name (client, server, forwarder, ...).
	Name string
	// NetNS is its network namespace's name (under /run/netns).
	NetNS string
	// Addr is its address on the lab bridge.
	Addr string
	// Dir is a staging directory for it, unique in the lab (removed at Close).
	Dir string
	// HostKey is its sshd host key.
	HostKey xssh.PublicKey
}

// Lab is a set of hosts with sshd.
type Lab struct {
	// CtlNetNS is the namespace holding the bridge: dial from it (/run/netns/CtlNetNS).
	CtlNetNS string
	// Hosts are the hosts, in the order asked for.
	Hosts []Host
	// KeyFile is an authorized private key (no passphrase); WrongKeyFile one that is not.
	KeyFile, WrongKeyFile string
	// KnownHosts lists every host's key.
	KnownHosts string

	prefix     string
	dir        string
	madeRunDir bool
}

// HostOption changes how one host's sshd runs.
type HostOption struct {
	// Hide makes these files unusable (/dev/null bound over them) in the host's sshd's mount
	// namespace, to play a host without a tool.
	Hide []string
}

// Skip reports why this machine cannot run a lab ("" when it can).
func Skip() string {
	if os.Geteuid() != 0 {
		return "needs root: creates network namespaces and runs sshd in them"
	}
	if _, err := os.Stat(Sshd); err != nil {
		return "needs Debian's sshd (apt-get install openssh-server): " + err.Error()
	}
	for _, p := range []string{"ip", "unshare", "mount"} {
		if _, err := exec.LookPath(p); err != nil {
			return "needs " + p + " (iproute2, util-linux)"
		}
	}
	return ""
}

// New builds a lab with one host per name (opts by name), or skips the test saying why.
func New(t testing.TB, names []string, opts map[string]HostOption) *Lab {
	t.Helper()
	if why := Skip(); why != "" {
		t.Skip(why)
	}
	id := make([]byte, 3)
	_, _ = rand.Read(id)
	l := &Lab{prefix: "pcssh" + hex.EncodeToString(id), dir: t.TempDir()}
	t.Cleanup(func() {
		if err := l.Close(); err != nil {
			t.Errorf("lab clean-up: %v", err)
		}
	})
	if err := l.build(names, opts); err != nil {
		t.Fatalf("lab: %v", err)
	}
	return l
}

func (l *Lab) build(names []string, opts map[string]HostOption) error {
	l.CtlNetNS = l.prefix + "-ctl"
	if err := netns.Add(l.CtlNetNS); err != nil {
		return err
	}
	if err := ip("-n", l.CtlNetNS, "link", "add", "br0", "type", "bridge"); err != nil {
		return err
	}
	for _, args := range [][]string{{"addr", "add", Subnet + ".1/24", "dev", "br0"}, {"link", "set", "br0", "up"}} {
		if err := ip(append([]string{"-n", l.CtlNetNS}, args...)...); err != nil {
			return err
		}
	}
	if _, err := os.Stat("/run/sshd"); errors.Is(err, os.ErrNotExist) {
		if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
			return fmt.Errorf("sshd privilege separation directory: %w", err)
		}
		l.madeRunDir = true
	}
	client, err := l.writeKey("id_client")
	if err != nil {
		return err
	}
	if _, err := l.writeKey("id_wrong"); err != nil {
		return err
	}
	l.KeyFile, l.WrongKeyFile = filepath.Join(l.dir, "id_client"), filepath.Join(l.dir, "id_wrong")
	if err := os.WriteFile(filepath.Join(l.dir, "authorized_keys"), xssh.MarshalAuthorizedKey(client.PublicKey()), 0o600); err != nil {
		return err
	}
	var known []string
	for i, name := range names {
		h, err := l.addHost(i, name, opts[name])
		if err != nil {
			return fmt.Errorf("host %s: %w", name, err)
		}
		l.Hosts = append(l.Hosts, h)
		known = append(known, knownhosts.Line([]string{h.Addr}, h.HostKey))
	}
	l.KnownHosts = filepath.Join(l.dir, "known_hosts")
	if err := os.WriteFile(l.KnownHosts, []byte(strings.Join(known, "\n")+"\n"), 0o600); err != nil {
		return err
	}
	for _, h := range l.Hosts {
		if err := waitListening(h.NetNS, h.Addr+":22", 10*time.Second); err != nil {
			return fmt.Errorf("sshd on %s: %w (log %s)", h.Name, err, filepath.Join(l.dir, h.Name+".log"))
		}
	}
	return nil
}

// writeKey writes a new ed25519 private key to the lab directory.
func (l *Lab) writeKey(name string) (xssh.Signer, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	block, err := xssh.MarshalPrivateKey(priv, "pathcost test")
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(l.dir, name), pem.EncodeToMemory(block), 0o600); err != nil {
		return nil, err
	}
	return xssh.NewSignerFromKey(priv)
}

func (l *Lab) addHost(i int, name string, opt HostOption) (Host, error) {
	h := Host{Name: name, NetNS: fmt.Sprintf("%s-h%d", l.prefix, i), Addr: fmt.Sprintf("%s.%d", Subnet, 10+i)}
	h.Dir = filepath.Join(l.dir, "stage-"+name, "pathcost")
	peer := fmt.Sprintf("v%s%d", l.prefix[5:], i)
	if err := netns.Add(h.NetNS); err != nil {
		return h, err
	}
	steps := [][]string{
		{"-n", l.CtlNetNS, "link", "add", peer, "type", "veth", "peer", "name", "eth0", "netns", h.NetNS},
		{"-n", l.CtlNetNS, "link", "set", peer, "master", "br0", "up"},
		{"-n", h.NetNS, "addr", "add", h.Addr + "/24", "dev", "eth0"},
		{"-n", h.NetNS, "link", "set", "eth0", "up"},
	}
	for _, s := range steps {
		if err := ip(s...); err != nil {
			return h, err
		}
	}
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return h, err
	}
	block, err := xssh.MarshalPrivateKey(priv, name)
	if err != nil {
		return h, err
	}
	keyFile := filepath.Join(l.dir, "hostkey-"+name)
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(block), 0o600); err != nil {
		return h, err
	}
	signer, err := xssh.NewSignerFromKey(priv)
	if err != nil {
		return h, err
	}
	h.HostKey = signer.PublicKey()
	conf := filepath.Join(l.dir, "sshd-"+name+".conf")
	text := strings.Join([]string{
		"ListenAddress " + h.Addr + ":22",
		"HostKey " + keyFile,
		"AuthorizedKeysFile " + filepath.Join(l.dir, "authorized_keys"),
		"PermitRootLogin prohibit-password",
		"PasswordAuthentication no",
		"KbdInteractiveAuthentication no",
		"UsePAM no",
		"StrictModes no",
		"PidFile none",
		"MaxStartups 100",
		"MaxSessions 50",
	}, "\n") + "\n"
	if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
		return h, err
	}
	script := `exec "$@"`
	if len(opt.Hide) > 0 {
		var mounts []string
		for _, f := range opt.Hide {
			mounts = append(mounts, "mount --bind /dev/null "+f+" || exit 1")
		}
		script = strings.Join(mounts, "; ") + `; exec "$@"`
	}
	log, err := os.Create(filepath.Join(l.dir, name+".log"))
	if err != nil {
		return h, err
	}
	defer log.Close()
	cmd := exec.Command("ip", "netns", "exec", h.NetNS, "unshare", "-m", "sh", "-c", script, "sh", Sshd, "-D", "-e", "-f", conf)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return h, fmt.Errorf("start sshd: %w", err)
	}
	go func() { _ = cmd.Wait() }()
	return h, nil
}

// Host returns the lab host called name.
func (l *Lab) Host(name string) Host {
	for _, h := range l.Hosts {
		if h.Name == name {
			return h
		}
	}
	return Host{}
}

// Exec runs a program in a host's network namespace and returns its combined output.
func (l *Lab) Exec(h Host, name string, args ...string) (string, error) {
	out, err := exec.Command("ip", append([]string{"netns", "exec", h.NetNS, name}, args...)...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s %v in %s: %w: %s", name, args, h.NetNS, err, out)
	}
	return string(out), nil
}

// Procs lists the processes in a host's network namespace other than its sshd listener, as
// "PID COMMAND LINE".
func (l *Lab) Procs(h Host) ([]string, error) {
	pids, err := netns.Pids(h.NetNS)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, pid := range pids {
		cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err != nil {
			continue
		}
		line := strings.TrimSpace(strings.ReplaceAll(string(cmdline), "\x00", " "))
		if strings.Contains(line, "sshd -D -e -f") || line == "" {
			continue // the listener (and zombies, which have no command line)
		}
		out = append(out, strconv.Itoa(pid)+" "+line)
	}
	return out, nil
}

// Close kills every process in the lab's namespaces and deletes them.
func (l *Lab) Close() error {
	var errs []error
	for _, h := range l.Hosts {
		errs = append(errs, netns.Delete(h.NetNS))
	}
	if l.CtlNetNS != "" {
		errs = append(errs, netns.Delete(l.CtlNetNS))
	}
	if l.madeRunDir {
		_ = os.Remove("/run/sshd")
	}
	return errors.Join(errs...)
}

func ip(args ...string) error { return netns.IP(args...) }

// waitListening waits until addr accepts connections from inside ns.
func waitListening(ns, addr string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		err := exec.Command("ip", "netns", "exec", ns, "bash", "-c", "exec 3<>/dev/tcp/"+strings.Replace(addr, ":", "/", 1)).Run()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not listening after %s", addr, timeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
