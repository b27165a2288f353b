package ssh

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/pathcost/pathcost/pkg/provider"
	"github.com/pathcost/pathcost/pkg/provider/ssh/netns"
	"github.com/pathcost/pathcost/pkg/provider/ssh/sshtest"
	"github.com/pathcost/pathcost/pkg/result"
	"github.com/pathcost/pathcost/pkg/topo"
)

func TestMain(m *testing.M) {
	code := m.Run()
	sshtest.RemoveTcpload()
	os.Exit(code)
}

func tcploadBin(t testing.TB) string { return sshtest.Tcpload(t) }

// labConfig is a provider configuration for lab hosts by role (role -> lab host name).
func labConfig(t *testing.T, lab *sshtest.Lab, roles map[string]string) Config {
	cfg := Config{
		Binary:     tcploadBin(t),
		KeyFile:    lab.KeyFile,
		NoAgent:    true,
		KnownHosts: lab.KnownHosts,
		Dial:       netns.Dialer(netns.Path(lab.CtlNetNS)),
	}
	for _, role := range []string{RoleClient, RoleServer, RoleForwarder} { // in this order: tests index Hosts
		name, ok := roles[role]
		if !ok {
			continue
		}
		h := lab.Host(name)
		cfg.Hosts = append(cfg.Hosts, HostSpec{Role: role, User: "root", Addr: h.Addr + ":22", Dir: h.Dir})
	}
	return cfg
}

func newProvider(t *testing.T, cfg Config) *Provider {
	p, err := New(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = p.Close(context.Background()) })
	return p
}

func runPair(t *testing.T, pa provider.Path) (client, server *result.Record) {
	return sshtest.RunPair(t, pa, 4, "1s")
}

// requireClean checks that the hosts hold no process of ours, no staged file and (with chains)
// no rule, waiting up to 15 s for the hosts' guards.
func requireClean(t *testing.T, lab *sshtest.Lab, names ...string) {
	t.Helper()
	var last []string
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		last = nil
		for _, name := range names {
			h := lab.Host(name)
			procs, err := lab.Procs(h)
			require.NoError(t, err)
			for _, p := range procs {
				last = append(last, name+": process "+p)
			}
			if _, err := os.Stat(h.Dir); err == nil {
				entries, _ := os.ReadDir(h.Dir)
				last = append(last, name+": "+h.Dir+" still there ("+strings.Join(dirNames(entries), " ")+")")
			}
			rules, err := lab.Exec(h, "iptables-save")
			require.NoError(t, err)
			if strings.Contains(rules, "KUBE-") {
				last = append(last, name+": KUBE- rules still there")
			}
			fwd, err := lab.Exec(h, "cat", "/proc/sys/net/ipv4/ip_forward")
			require.NoError(t, err)
			if strings.TrimSpace(fwd) != "0" {
				last = append(last, name+": ip_forward is "+fwd)
			}
		}
		if len(last) == 0 {
			return
		}
	}
	t.Fatalf("left behind: %s", strings.Join(last, "; "))
}

func dirNames(es []os.DirEntry) []string {
	var out []string
	for _, e := range es {
		out = append(out, e.Name())
	}
	return out
}

func TestPlainOnLabHosts(t *testing.T) {
	lab := sshtest.New(t, []string{"a", "b"}, nil)
	p := newProvider(t, labConfig(t, lab, map[string]string{RoleClient: "a", RoleServer: "b"}))
	ctx := context.Background()

	require.NoError(t, p.Check(ctx, topo.Plain))
	err := p.Check(ctx, topo.GR)
	require.True(t, provider.IsSkip(err), "%v", err)
	assert.EqualError(t, err, "gr needs a cluster: use -provider kubeconfig")
	err = p.Check(ctx, topo.NodePort)
	require.True(t, provider.IsSkip(err), "%v", err)
	assert.Contains(t, err.Error(), "forwarder=USER@HOST")

	pa, err := p.Up(ctx, topo.Plain)
	require.NoError(t, err)
	size, err := os.Stat(tcploadBin(t))
	require.NoError(t, err)
	assert.Equal(t, 2*size.Size(), p.Copied(), "staged on both hosts")
	assert.Equal(t, lab.Host("b").Addr+":50012", pa.Target())
	assert.Nil(t, pa.Forwarder())
	// The lab's hosts are namespaces of one machine: the provider sees one boot id.
	assert.True(t, pa.SharedKernel())
	assert.Contains(t, strings.Join(pa.Notes(), "\n"), "share one kernel")

	client, server := runPair(t, pa)
	assert.Equal(t, client.TotalBytes, server.TotalBytes, "bytes conserved")
	assert.Greater(t, client.Mbps, 0.0)
	assert.Equal(t, result.RoleServer, server.Role)
	require.NoError(t, pa.Down(ctx))
	require.NoError(t, pa.Down(ctx), "Down twice")

	// A second Up on the same hosts copies nothing: the checksum matches.
	pa2, err := p.Up(ctx, topo.Plain)
	require.NoError(t, err)
	assert.Equal(t, 2*size.Size(), p.Copied())
	out, err := pa2.Server().(provider.Commander).Command(ctx, "uname", "-s")
	require.NoError(t, err)
	assert.Equal(t, "Linux\n", string(out))
	require.NoError(t, pa2.Down(ctx))

	require.NoError(t, p.Close(ctx))
	requireClean(t, lab, "a", "b")
}

func TestNodePortOnLabHosts(t *testing.T) {
	lab := sshtest.New(t, []string{"a", "b", "c"}, nil)
	p := newProvider(t, labConfig(t, lab, map[string]string{RoleClient: "a", RoleForwarder: "b", RoleServer: "c"}))
	ctx := context.Background()
	require.NoError(t, p.Check(ctx, topo.NodePort))
	pa, err := p.Up(ctx, topo.NodePort)
	require.NoError(t, err)
	assert.Equal(t, lab.Host("b").Addr+":32000", pa.Target())
	require.NotNil(t, pa.Forwarder())
	rules, err := lab.Exec(lab.Host("b"), "iptables-save", "-t", "nat")
	require.NoError(t, err)
	assert.Contains(t, rules, "--to-destination "+lab.Host("c").Addr+":50012")

	// A second nodeport path on the same forwarder is refused: its chains exist.
	_, err = p.Up(ctx, topo.NodePort)
	require.ErrorContains(t, err, "already exists")

	client, server := runPair(t, pa)
	assert.Equal(t, client.TotalBytes, server.TotalBytes)
	counted, err := lab.Exec(lab.Host("b"), "iptables", "-t", "nat", "-L", "KUBE-NODEPORTS", "-v", "-x", "-n")
	require.NoError(t, err)
	assert.Regexp(t, `(?m)^\s+[1-9]\d*\s+\d+\s+KUBE-EXT-`, counted, "connections went through the NodePort rule")
	// Forwarding was on for the run, off again after Down.
	require.NoError(t, pa.Down(ctx))
	rules, err = lab.Exec(lab.Host("b"), "iptables-save")
	require.NoError(t, err)
	assert.NotContains(t, rules, "KUBE-")
	require.NoError(t, p.Close(ctx))
	requireClean(t, lab, "a", "b", "c")
}

func TestHostKeyAndLoginErrors(t *testing.T) {
	lab := sshtest.New(t, []string{"a", "b"}, nil)
	ctx := context.Background()
	roles := map[string]string{RoleClient: "a", RoleServer: "b"}

	t.Run("unknown host key", func(t *testing.T) {
		cfg := labConfig(t, lab, roles)
		cfg.KnownHosts = filepath.Join(t.TempDir(), "known_hosts")
		require.NoError(t, os.WriteFile(cfg.KnownHosts, nil, 0o600))
		p := newProvider(t, cfg)
		_, err := p.Up(ctx, topo.Plain)
		require.Error(t, err)
		t.Log(err)
		assert.Contains(t, err.Error(), "is unknown")
		assert.Contains(t, err.Error(), "SHA256:")
		assert.Contains(t, err.Error(), "ssh-keyscan -p 22 -t ed25519 "+lab.Host("a").Addr)
		assert.Contains(t, err.Error(), "-ssh-insecure")
	})
	t.Run("insecure accepts it", func(t *testing.T) {
		cfg := labConfig(t, lab, roles)
		cfg.KnownHosts, cfg.Insecure = "/nonexistent", true
		p := newProvider(t, cfg)
		require.NoError(t, p.Check(ctx, topo.Plain))
		pa, err := p.Up(ctx, topo.Plain)
		require.NoError(t, err)
		require.NoError(t, pa.Down(ctx))
	})
	t.Run("changed host key", func(t *testing.T) {
		cfg := labConfig(t, lab, roles)
		cfg.KnownHosts = filepath.Join(t.TempDir(), "known_hosts")
		// b's key filed under a's address too.
		b := lab.Host("b")
		lines := knownhosts.Line([]string{lab.Host("a").Addr}, b.HostKey) + "\n" + knownhosts.Line([]string{b.Addr}, b.HostKey) + "\n"
		require.NoError(t, os.WriteFile(cfg.KnownHosts, []byte(lines), 0o600))
		p := newProvider(t, cfg)
		_, err := p.Up(ctx, topo.Plain)
		require.ErrorContains(t, err, "does NOT match")
		t.Log(err)
	})
	t.Run("wrong key", func(t *testing.T) {
		cfg := labConfig(t, lab, roles)
		cfg.KeyFile = lab.WrongKeyFile
		p := newProvider(t, cfg)
		_, err := p.Up(ctx, topo.Plain)
		require.Error(t, err)
		t.Log(err)
		assert.Contains(t, err.Error(), "authentication failed for user root on "+lab.Host("a").Addr+":22")
		assert.Contains(t, err.Error(), lab.WrongKeyFile)
	})
	t.Run("unreachable", func(t *testing.T) {
		cfg := labConfig(t, lab, roles)
		cfg.Hosts[1].Addr = sshtest.Subnet + ".99:22" // nobody there
		p := newProvider(t, cfg)
		start := time.Now()
		_, err := p.Up(ctx, topo.Plain)
		require.Error(t, err)
		t.Log(err)
		assert.Less(t, time.Since(start), 15*time.Second)
		assert.Contains(t, err.Error(), "server host root@"+sshtest.Subnet+".99:22")
	})
	requireClean(t, lab, "a", "b")
}

func TestNodePortSkipsWithoutIptables(t *testing.T) {
	lab := sshtest.New(t, []string{"a", "b", "c"}, map[string]sshtest.HostOption{"b": {Hide: []string{"/usr/sbin/iptables-restore"}}})
	p := newProvider(t, labConfig(t, lab, map[string]string{RoleClient: "a", RoleForwarder: "b", RoleServer: "c"}))
	err := p.Check(context.Background(), topo.NodePort)
	require.True(t, provider.IsSkip(err), "%v", err)
	t.Log(err)
	assert.Contains(t, err.Error(), "forwarder host root@"+lab.Host("b").Addr+":22")
	assert.Contains(t, err.Error(), "iptables")
}

// TestInterruptedRunLeavesNothing drops the ssh connections in the middle of a nodeport run, as
// when the test process is killed: the hosts' guards stop the processes, remove the rules and
// the files.
func TestInterruptedRunLeavesNothing(t *testing.T) {
	lab := sshtest.New(t, []string{"a", "b", "c"}, nil)
	cfg := labConfig(t, lab, map[string]string{RoleClient: "a", RoleForwarder: "b", RoleServer: "c"})
	var mu sync.Mutex
	var conns []net.Conn
	dial := cfg.Dial
	cfg.Dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dial(ctx, network, addr)
		if err == nil {
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
		return c, err
	}
	p := newProvider(t, cfg)
	ctx := context.Background()
	pa, err := p.Up(ctx, topo.NodePort)
	require.NoError(t, err)
	var sout, serr, cout, cerr bytes.Buffer
	sp, err := pa.Server().Start(ctx, []string{"server", "--listen", pa.Listen(), "--json", "-", "--quiet"}, &sout, &serr)
	require.NoError(t, err)
	cp, err := pa.Client().Start(ctx, []string{"client", "--connect", pa.Target(), "--conns", "4", "--duration", "30s", "--json", "-", "--quiet"}, &cout, &cerr)
	require.NoError(t, err)
	time.Sleep(time.Second)
	procs, err := lab.Procs(lab.Host("c"))
	require.NoError(t, err)
	require.NotEmpty(t, procs, "the server runs")

	mu.Lock()
	for _, c := range conns {
		_ = c.Close()
	}
	mu.Unlock()
	assert.Error(t, sp.Wait())
	assert.Error(t, cp.Wait())
	requireClean(t, lab, "a", "b", "c")
}

// runningServer is a tcpload server started on lab host b (client a) for a cancel test.
type runningServer struct {
	lab         *sshtest.Lab
	p           *Provider
	pa          provider.Path
	proc        provider.Proc
	cancel      context.CancelFunc
	out, errOut bytes.Buffer
}

// startServer brings plain up on two lab hosts and starts a server that runs until cancelled.
func startServer(t *testing.T) *runningServer {
	t.Helper()
	r := &runningServer{lab: sshtest.New(t, []string{"a", "b"}, nil)}
	r.p = newProvider(t, labConfig(t, r.lab, map[string]string{RoleClient: "a", RoleServer: "b"}))
	var err error
	r.pa, err = r.p.Up(context.Background(), topo.Plain)
	require.NoError(t, err)
	var ctx context.Context
	ctx, r.cancel = context.WithCancel(context.Background())
	r.proc, err = r.pa.Server().Start(ctx, []string{"server", "--listen", r.pa.Listen(), "--json", "-", "--quiet"}, &r.out, &r.errOut)
	require.NoError(t, err)
	time.Sleep(500 * time.Millisecond)
	return r
}

// TestCancelStopsWithRecord cancels a running server: it is stopped with SIGTERM and still
// writes its record.
func TestCancelStopsWithRecord(t *testing.T) {
	r := startServer(t)
	start := time.Now()
	r.cancel()
	err := r.proc.Wait()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "tcpload server on server host root@")
	assert.Less(t, time.Since(start), 2*stopGrace)
	rec, err := result.Decode(r.out.Bytes())
	require.NoError(t, err, "the record is written on SIGTERM: %q %q", r.out.String(), r.errOut.String())
	assert.Equal(t, result.RoleServer, rec.Role)
	require.NoError(t, r.pa.Down(context.Background()))
	require.NoError(t, r.p.Close(context.Background()))
	requireClean(t, r.lab, "a", "b")
}

// TestCancelOnDeadHostReturns: a host whose network died while its process ran cannot end the
// session; Wait still returns after cancel (within the stop grace, the close and the abandon
// delay), naming the host, and the run cleans up once the host is back.
func TestCancelOnDeadHostReturns(t *testing.T) {
	r := startServer(t)
	b := r.lab.Host("b")
	require.NoError(t, netns.IP("-n", b.NetNS, "link", "set", "eth0", "down"))
	start := time.Now()
	r.cancel()
	err := r.proc.Wait()
	took := time.Since(start)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "abandoned")
	assert.Contains(t, err.Error(), "tcpload server on server host root@")
	assert.Less(t, took, 3*stopGrace+5*time.Second, "Wait is bounded")
	require.NoError(t, netns.IP("-n", b.NetNS, "link", "set", "eth0", "up"))
	require.NoError(t, r.pa.Down(context.Background()))
	require.NoError(t, r.p.Close(context.Background()))
	requireClean(t, r.lab, "a", "b")
}

// TestKeepStagesOnce: with Keep the binary stays, and the next provider copies nothing.
func TestKeepStagesOnce(t *testing.T) {
	lab := sshtest.New(t, []string{"a", "b"}, nil)
	roles := map[string]string{RoleClient: "a", RoleServer: "b"}
	ctx := context.Background()
	cfg := labConfig(t, lab, roles)
	cfg.Keep = true
	p1 := newProvider(t, cfg)
	_, err := p1.Up(ctx, topo.Plain)
	require.NoError(t, err)
	require.Positive(t, p1.Copied())
	require.NoError(t, p1.Close(ctx))
	_, err = os.Stat(filepath.Join(lab.Host("b").Dir, "tcpload"))
	require.NoError(t, err, "kept")

	p2 := newProvider(t, labConfig(t, lab, roles))
	_, err = p2.Up(ctx, topo.Plain)
	require.NoError(t, err)
	assert.Zero(t, p2.Copied(), "the second run copies nothing")
	require.NoError(t, p2.Close(ctx))
	requireClean(t, lab, "a", "b")
}

// TestKilledRunLeavesNothing kills (SIGKILL) a test process in the middle of a nodeport run: the
// hosts' guards notice the dropped connections and remove everything.
func TestKilledRunLeavesNothing(t *testing.T) {
	lab := sshtest.New(t, []string{"a", "b", "c"}, nil)
	cfg := labConfig(t, lab, map[string]string{RoleClient: "a", RoleForwarder: "b", RoleServer: "c"})
	hosts, err := json.Marshal(cfg.Hosts)
	require.NoError(t, err)
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperNodePortRun$", "-test.v")
	cmd.Env = append(os.Environ(), "PATHCOST_SSH_HELPER="+string(hosts), "PATHCOST_SSH_HELPER_KEY="+lab.KeyFile,
		"PATHCOST_SSH_HELPER_KNOWN="+lab.KnownHosts, "PATHCOST_SSH_HELPER_NS="+lab.CtlNetNS, "PATHCOST_SSH_HELPER_BIN="+tcploadBin(t))
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	sc := bufio.NewScanner(out)
	ready := false
	for sc.Scan() {
		if strings.Contains(sc.Text(), "HELPER READY") {
			ready = true
			break
		}
	}
	require.True(t, ready, "the helper realised nodeport and started a server")
	rules, err := lab.Exec(lab.Host("b"), "iptables-save", "-t", "nat")
	require.NoError(t, err)
	require.Contains(t, rules, "KUBE-NODEPORTS", "the rules are in place before the kill")
	require.NoError(t, cmd.Process.Kill())
	_ = cmd.Wait()
	requireClean(t, lab, "a", "b", "c")
}

// TestHelperNodePortRun is TestKilledRunLeavesNothing's victim: it runs only as its child.
func TestHelperNodePortRun(t *testing.T) {
	hosts := os.Getenv("PATHCOST_SSH_HELPER")
	if hosts == "" {
		t.Skip("the child process of TestKilledRunLeavesNothing")
	}
	cfg := Config{KeyFile: os.Getenv("PATHCOST_SSH_HELPER_KEY"), KnownHosts: os.Getenv("PATHCOST_SSH_HELPER_KNOWN"), NoAgent: true,
		Binary: os.Getenv("PATHCOST_SSH_HELPER_BIN"), Dial: netns.Dialer(netns.Path(os.Getenv("PATHCOST_SSH_HELPER_NS")))}
	require.NoError(t, json.Unmarshal([]byte(hosts), &cfg.Hosts))
	p, err := New(cfg)
	require.NoError(t, err)
	pa, err := p.Up(context.Background(), topo.NodePort)
	require.NoError(t, err)
	_, err = pa.Server().Start(context.Background(), []string{"server", "--listen", pa.Listen(), "--quiet"}, io.Discard, io.Discard)
	require.NoError(t, err)
	time.Sleep(500 * time.Millisecond)
	fmt.Println("HELPER READY")
	time.Sleep(time.Minute) // killed before this ends
}
