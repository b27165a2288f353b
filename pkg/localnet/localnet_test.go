package localnet

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/pathcost/pathcost/pkg/usage"
)

// skipUnlessReady skips when the machine cannot build the spec.
func skipUnlessReady(t *testing.T, spec Spec) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("localnet tests need root (network namespaces, veth, iptables); run as root")
	}
	if err := Requirements(spec); err != nil {
		t.Skipf("localnet: %v", err)
	}
}

// up brings an env up and registers its teardown and leak check.
func up(t *testing.T, spec Spec) *Env {
	t.Helper()
	skipUnlessReady(t, spec)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	start := time.Now()
	env, err := Up(ctx, spec)
	require.NoError(t, err)
	t.Logf("%s (istio=%v) up in %v, prefix %s", spec.Kind, spec.Istio, time.Since(start).Round(time.Millisecond), env.Prefix)
	t.Cleanup(func() {
		start := time.Now()
		assert.NoError(t, env.Down())
		assert.NoError(t, env.Down(), "Down is idempotent")
		t.Logf("down in %v", time.Since(start).Round(time.Millisecond))
		left, err := Leftovers(env.Prefix)
		assert.NoError(t, err)
		assert.Empty(t, left, "leftovers after Down")
	})
	return env
}

// ipOut runs `ip -n ns args` and returns its output.
func ipOut(t *testing.T, ns string, args ...string) string {
	t.Helper()
	out, err := run(context.Background(), "", toolPath(toolIP), append([]string{"-n", ns}, args...)...)
	require.NoError(t, err)
	return out
}

// nsExec runs a program inside a namespace and returns its output.
func nsExec(t *testing.T, ns string, name string, args ...string) string {
	t.Helper()
	out, err := run(context.Background(), "", toolPath(toolNsenter), append([]string{"--net=" + netnsPath(ns), "--", name}, args...)...)
	require.NoError(t, err)
	return out
}

// netDev returns a namespace's interface counters as rx and tx bytes per interface, read by
// usage from a thread inside the namespace.
func netDev(t *testing.T, ns string) map[string][2]uint64 {
	t.Helper()
	var d map[string]usage.DevCounters
	require.NoError(t, inNetns(ns, func() error {
		var err error
		d, err = usage.ReadNetDev(unix.Gettid())
		return err
	}))
	out := make(map[string][2]uint64, len(d))
	for name, c := range d {
		out[name] = [2]uint64{c.RxBytes, c.TxBytes}
	}
	return out
}

// ruleCounter returns the packet counter of the first rule in a chain whose
// line matches re (iptables -L -v -x -n format).
func ruleCounter(t *testing.T, ns, table, chain, re string) uint64 {
	t.Helper()
	out := nsExec(t, ns, toolPath(tool{"iptables", "iptables"}), "-t", table, "-L", chain, "-v", "-x", "-n")
	rx := regexp.MustCompile(re)
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) > 2 && rx.MatchString(line) {
			if n, err := strconv.ParseUint(f[0], 10, 64); err == nil {
				return n
			}
		}
	}
	t.Fatalf("no rule matching %q in %s/%s:\n%s", re, table, chain, out)
	return 0
}

// sumCPU returns a process's user+system ticks (/proc/PID/stat) and on-CPU
// nanoseconds (/proc/PID/schedstat).
func sumCPU(t *testing.T, pid int) (ticks, ns uint64) {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	require.NoError(t, err)
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	u, _ := strconv.ParseUint(f[11], 10, 64)
	st, _ := strconv.ParseUint(f[12], 10, 64)
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/schedstat", pid)); err == nil {
		ns, _ = strconv.ParseUint(strings.Fields(string(b))[0], 10, 64)
	}
	return u + st, ns
}

func inSubnet(t *testing.T, ip, cidr string) bool {
	t.Helper()
	_, n, err := net.ParseCIDR(cidr)
	require.NoError(t, err)
	return n.Contains(net.ParseIP(ip))
}

func allEqual(t *testing.T, want string, got []string, msg string) {
	t.Helper()
	for i, g := range got {
		require.Equal(t, want, g, "%s (connection %d)", msg, i)
	}
}

const (
	nConns = 4
	nBytes = 2 << 20 // per connection
)

func TestPlain(t *testing.T) {
	env := up(t, Spec{Kind: KindPlain})
	require.Equal(t, "10.77.0.12:50012", env.Target)
	require.Equal(t, "0.0.0.0:50012", env.Listen)
	require.Nil(t, env.Forwarder)
	require.Empty(t, env.Sidecars)
	before := netDev(t, env.Server.NetNS)["eth0"]
	res := push(t, env, nConns, nBytes)
	allEqual(t, env.Client.Addr, res.peers, "server sees the client VM")
	after := netDev(t, env.Server.NetNS)["eth0"]
	assert.GreaterOrEqual(t, after[1]-before[1], uint64(nConns*nBytes), "server VM eth0 tx carries the payload")
	t.Logf("pushed %d MB in %v", nConns*nBytes>>20, res.elapsed.Round(time.Millisecond))
}

func TestGR(t *testing.T) {
	env := up(t, Spec{Kind: KindGR})
	require.True(t, inSubnet(t, env.Client.Addr, "172.20.1.0/24"))
	require.True(t, inSubnet(t, env.Server.Addr, "172.20.2.0/24"))
	require.Equal(t, "node1", env.Client.Node)
	require.Equal(t, "node2", env.Server.Node)
	routes := ipOut(t, env.VPC.NetNS, "route", "show")
	require.Contains(t, routes, "172.20.1.0/24 via 10.77.0.11 dev br0")
	require.Contains(t, routes, "172.20.2.0/24 via 10.77.0.12 dev br0")

	router := netDev(t, env.VPC.NetNS)["br0"]
	node2 := netDev(t, env.Nodes[1].NetNS)
	res := push(t, env, nConns, nBytes)
	allEqual(t, env.Client.Addr, res.peers, "server sees the client pod (no NAT)")
	router2 := netDev(t, env.VPC.NetNS)["br0"]
	node2b := netDev(t, env.Nodes[1].NetNS)
	total := uint64(nConns * nBytes)
	assert.GreaterOrEqual(t, router2[0]-router[0], total, "the VPC router receives the pushed bytes (routed, not bridged)")
	assert.GreaterOrEqual(t, node2b["eth0"][1]-node2["eth0"][1], total, "node2 eth0 sends the payload")
	assert.GreaterOrEqual(t, node2b["veth-server"][0]-node2["veth-server"][0], total, "node2 receives the payload from the server pod's veth")
}

func TestVPCCNI(t *testing.T) {
	env := up(t, Spec{Kind: KindVPCCNI})
	require.True(t, inSubnet(t, env.Client.Addr, VPCSubnet), "pod address %s in the VPC subnet", env.Client.Addr)
	require.True(t, inSubnet(t, env.Server.Addr, VPCSubnet), "pod address %s in the VPC subnet", env.Server.Addr)
	node1 := env.Nodes[0]
	rules := ipOut(t, node1.NetNS, "rule", "show")
	require.Contains(t, rules, "from "+env.Client.Addr+" lookup 101")
	require.Contains(t, rules, "to "+env.Client.Addr+" lookup main")
	require.Contains(t, ipOut(t, node1.NetNS, "neigh", "show", "proxy"), env.Client.Addr+" dev eth1")
	require.Contains(t, ipOut(t, node1.NetNS, "route", "show", "table", "101"), "default via 10.77.0.1 dev eth1")

	before := netDev(t, node1.NetNS)
	res := push(t, env, nConns, nBytes)
	allEqual(t, env.Client.Addr, res.peers, "server sees the client pod's VPC address")
	after := netDev(t, node1.NetNS)
	total := uint64(nConns * nBytes)
	assert.GreaterOrEqual(t, after["eth1"][0]-before["eth1"][0], total, "node1's ENI eth1 receives the payload")
	assert.Less(t, after["eth0"][0]-before["eth0"][0], total/100, "node1's primary eth0 does not see pod traffic")
}

func TestNodePort(t *testing.T) {
	env := up(t, Spec{Kind: KindNodePort})
	require.NotNil(t, env.Forwarder)
	require.Equal(t, env.Forwarder.Addr+":32000", env.Target)
	require.Equal(t, "nodeC", env.Server.Node)
	b := env.Forwarder.NetNS
	sep := sepChain(env.Server.Addr, env.Spec.ServerPort) // its DNAT rule counts the forwarded connections
	require.Regexp(t, `^KUBE-SEP-[A-Z2-7]{16}$`, sep)
	dnat := `DNAT .*to:` + regexp.QuoteMeta(env.Server.Addr) + `:50012`
	pkts0 := ruleCounter(t, b, "nat", sep, dnat)
	fw := netDev(t, b)["eth0"]

	res := push(t, env, nConns, nBytes)
	allEqual(t, env.Forwarder.Addr, res.peers, "server sees node B (masquerade)")
	pkts1 := ruleCounter(t, b, "nat", sep, dnat)
	assert.GreaterOrEqual(t, pkts1-pkts0, uint64(nConns), "B's KUBE-SEP DNAT rule saw every connection")
	fw2 := netDev(t, b)["eth0"]
	total := uint64(nConns * nBytes)
	assert.GreaterOrEqual(t, fw2[0]-fw[0], total, "B receives the payload (from C)")
	assert.GreaterOrEqual(t, fw2[1]-fw[1], total, "B forwards the payload (to A)")
	if p, err := lookTool("conntrack"); err == nil {
		out := nsExec(t, b, p, "-L", "-p", "tcp", "--orig-port-dst", "32000")
		// reply tuple: from the pod to B itself (DNAT to the pod + masquerade to B)
		assert.Contains(t, out, "src="+env.Server.Addr+" dst="+env.Forwarder.Addr+" sport=50012", "conntrack on B maps the NodePort to the pod, masqueraded")
	}
}

func testIstio(t *testing.T, kind Kind) {
	env := up(t, Spec{Kind: kind, Istio: true})
	require.Len(t, env.Sidecars, 2)
	require.Equal(t, "client-side", env.Sidecars[0].Name)
	require.Equal(t, "server-side", env.Sidecars[1].Name)
	require.Contains(t, env.Sidecars[0].Proxy, "haproxy")
	require.Contains(t, strings.Join(env.Notes, "\n"), "NOT Envoy")
	for _, s := range env.Sidecars {
		st, err := os.Stat(fmt.Sprintf("/proc/%d", s.PID))
		require.NoError(t, err)
		require.Equal(t, uint32(ProxyUID), st.Sys().(*syscall.Stat_t).Uid, "%s runs as uid %d", s.Name, ProxyUID)
		comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", s.PID))
		require.NoError(t, err)
		require.Equal(t, "haproxy", strings.TrimSpace(string(comm)))
	}
	var ticks0, ns0 [2]uint64
	for i, s := range env.Sidecars {
		ticks0[i], ns0[i] = sumCPU(t, s.PID)
	}
	redir0 := ruleCounter(t, env.Client.NetNS, "nat", "ISTIO_REDIRECT", `REDIRECT .*15001`)
	inb0 := ruleCounter(t, env.Server.NetNS, "nat", "ISTIO_IN_REDIRECT", `REDIRECT .*15006`)

	const conns, size = 8, 4 << 20
	res := push(t, env, conns, size)
	allEqual(t, "127.0.0.1", res.peers, "the server app sees the server-side sidecar")
	for i, s := range env.Sidecars {
		ticks, ns := sumCPU(t, s.PID)
		t.Logf("%s sidecar (pid %d): %d ticks, %.1f ms on CPU for %d MB", s.Name, s.PID, ticks-ticks0[i], float64(ns-ns0[i])/1e6, conns*size>>20)
		assert.Greater(t, ns+ticks, ns0[i]+ticks0[i], "%s sidecar's CPU grew", s.Name)
		assert.Greater(t, ticks, ticks0[i], "%s sidecar's /proc/PID/stat CPU grew", s.Name)
	}
	assert.GreaterOrEqual(t, ruleCounter(t, env.Client.NetNS, "nat", "ISTIO_REDIRECT", `REDIRECT .*15001`)-redir0, uint64(conns), "client pod outbound capture")
	assert.GreaterOrEqual(t, ruleCounter(t, env.Server.NetNS, "nat", "ISTIO_IN_REDIRECT", `REDIRECT .*15006`)-inb0, uint64(conns), "server pod inbound capture")

	// mTLS: the server-side sidecar presents the mesh identity and rejects a
	// client without a certificate.
	probe := helperCmd(t, context.Background(), env, env.Server, "tlsprobe", "LOCALNET_TARGET=127.0.0.1:15006")
	out, err := probe.CombinedOutput()
	require.NoError(t, err, "%s", out)
	assert.Contains(t, string(out), "peer cert spiffe://cluster.local/ns/default/sa/tcpload")
	assert.Contains(t, string(out), "rejected without client cert")
}

func TestGRIstio(t *testing.T)     { testIstio(t, KindGR) }
func TestVPCCNIIstio(t *testing.T) { testIstio(t, KindVPCCNI) }

// startUpAndWait starts a helper process that brings an env up and waits;
// it returns the process, the prefix and the sidecar pids.
func startUpAndWait(t *testing.T, kind Kind, istio bool) (*exec.Cmd, string, []int) {
	t.Helper()
	skipUnlessReady(t, Spec{Kind: kind, Istio: istio})
	exe, err := os.Executable()
	require.NoError(t, err)
	cmd := exec.Command(exe, "-test.run=^TestHelperProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), helperEnv+"=up-and-wait", "LOCALNET_KIND="+string(kind))
	if istio {
		cmd.Env = append(cmd.Env, "LOCALNET_ISTIO=1")
	}
	var stderr lockedBuffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	var prefix string
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if prefix != "" {
			assert.NoError(t, Reap(prefix))
		}
	})
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		if sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	var line string
	select {
	case line = <-lines:
	case <-time.After(30 * time.Second):
		t.Fatalf("helper did not come up: %s", stderr.String())
	}
	f := strings.Fields(line)
	require.GreaterOrEqual(t, len(f), 2, "helper said %q; stderr: %s", line, stderr.String())
	require.Equal(t, "up", f[0])
	var pids []int
	for _, s := range f[2:] {
		pid, err := strconv.Atoi(s)
		require.NoError(t, err)
		pids = append(pids, pid)
	}
	prefix = f[1]
	return cmd, prefix, pids
}

// lockedBuffer is a bytes.Buffer safe for a writer and a reader goroutine.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// waitGone waits (bounded) until the pids are no longer live processes.
func waitGone(t *testing.T, pids []int) {
	t.Helper()
	require.Eventually(t, func() bool {
		for _, pid := range pids {
			if _, err := usage.ProcStart(pid); err == nil {
				return false
			}
		}
		return true
	}, 5*time.Second, 20*time.Millisecond, "processes %v still alive", pids)
}

func TestSIGINTTearsDown(t *testing.T) {
	cmd, prefix, pids := startUpAndWait(t, KindGR, true)
	require.Len(t, pids, 2)
	left, err := Leftovers(prefix)
	require.NoError(t, err)
	require.NotEmpty(t, left, "a live env shows up in Leftovers")
	require.NoError(t, cmd.Process.Signal(syscall.SIGINT))
	err = cmd.Wait()
	var ee *exec.ExitError
	require.True(t, errors.As(err, &ee), "helper exit: %v", err)
	assert.Equal(t, 130, ee.ExitCode(), "exit status 128+SIGINT")
	waitGone(t, pids)
	left, err = Leftovers(prefix)
	require.NoError(t, err)
	assert.Empty(t, left, "nothing left after SIGINT")
}

func TestSIGKILLThenReap(t *testing.T) {
	cmd, prefix, pids := startUpAndWait(t, KindGR, true)
	require.NoError(t, cmd.Process.Kill())
	_ = cmd.Wait()
	waitGone(t, pids) // Pdeathsig took the sidecars down with their owner
	left, err := Leftovers(prefix)
	require.NoError(t, err)
	require.NotEmpty(t, left, "a killed owner leaves namespaces and state behind")
	require.NoError(t, Reap(prefix))
	left, err = Leftovers(prefix)
	require.NoError(t, err)
	assert.Empty(t, left, "Reap removed the dead run's leftovers")
}

func TestReapSparesLiveRuns(t *testing.T) {
	env := up(t, Spec{Kind: KindPlain})
	_, prefix, _ := startUpAndWait(t, KindPlain, false)
	require.NoError(t, Reap(""))
	for _, p := range []string{env.Prefix, prefix} {
		left, err := Leftovers(p)
		require.NoError(t, err)
		assert.NotEmpty(t, left, "Reap(\"\") leaves live run %s alone", p)
	}
}

func TestCommandRejectsForeignHost(t *testing.T) {
	env := up(t, Spec{Kind: KindPlain})
	cmd := env.Command(context.Background(), Host{Name: "x", NetNS: "not-mine"}, "true")
	require.Error(t, cmd.Run())
	out, err := env.Command(context.Background(), env.Client, "cat", "/proc/self/net/dev").Output()
	require.NoError(t, err)
	require.Contains(t, string(out), "eth0", "Command runs in the host's namespace")
	var nilEnv *Env
	require.Error(t, nilEnv.Command(context.Background(), env.Client, "true").Run())
	require.NoError(t, nilEnv.Down())
}

func TestSpecValidation(t *testing.T) {
	for _, s := range []Spec{
		{},
		{Kind: "mesh"},
		{Kind: KindPlain, Istio: true},
		{Kind: KindNodePort, Istio: true},
		{Kind: KindGR, ServerPort: 70000},
		{Kind: KindGR, ServerPort: -1},
		{Kind: KindGR, Istio: true, ServerPort: 15001},
		{Kind: KindNodePort, NodePort: 50012},
		{Kind: KindGR, SidecarThreads: -2},
	} {
		_, err := s.normalize()
		assert.Error(t, err, "%+v", s)
		assert.Error(t, Requirements(s), "%+v", s)
		env, err := Up(context.Background(), s)
		assert.Error(t, err, "%+v", s)
		assert.Nil(t, env)
	}
	s, err := Spec{Kind: KindNodePort}.normalize()
	require.NoError(t, err)
	assert.Equal(t, Spec{Kind: KindNodePort, ServerPort: 50012, NodePort: 32000, SidecarThreads: 1}, s)
}

func TestRequirementsNamesPackages(t *testing.T) {
	origLook, origEuid := lookToolFn, geteuidFn
	t.Cleanup(func() { lookToolFn, geteuidFn = origLook, origEuid })
	lookToolFn = func(name string) (string, error) {
		if name == "haproxy" || name == "iptables-restore" {
			return "", errors.New("missing")
		}
		return "/usr/bin/" + name, nil
	}
	geteuidFn = func() int { return 1000 }
	err := Requirements(Spec{Kind: KindGR, Istio: true})
	require.Error(t, err)
	for _, want := range []string{"must run as root", "haproxy missing (Debian package haproxy)", "iptables-restore missing (Debian package iptables)", "apt-get install -y iptables haproxy"} {
		assert.Contains(t, err.Error(), want)
	}
	err = Requirements(Spec{Kind: KindPlain})
	require.Error(t, err)
	assert.NotContains(t, err.Error(), "haproxy", "plain needs no proxy")
}

func TestPrefixArguments(t *testing.T) {
	for _, p := range []string{"x", "pc12345", "pcXYZXYZ", "../etc", "pc123456-vpc"} {
		_, err := Leftovers(p)
		assert.Error(t, err, p)
		assert.Error(t, Reap(p), p)
	}
	_, err := Leftovers("pc000000")
	assert.NoError(t, err)
}

func TestRulesShape(t *testing.T) {
	r := kubeProxyRules(Spec{Kind: KindNodePort, ServerPort: 50012, NodePort: 32000}, "172.20.3.2")
	for _, want := range []string{
		"-A PREROUTING -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES",
		"-m addrtype --dst-type LOCAL -j KUBE-NODEPORTS",
		"--dport 32000 -j " + extChain,
		"-A " + extChain + " -j " + svcChain,
		"-j DNAT --to-destination 172.20.3.2:50012",
		"-A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000",
		"-j MASQUERADE --random-fully",
	} {
		assert.Contains(t, r, want)
	}
	assert.Regexp(t, `^KUBE-SVC-[A-Z2-7]{16}$`, svcChain)
	assert.Regexp(t, `^KUBE-EXT-[A-Z2-7]{16}$`, extChain)
}

func TestFailedUpTearsDown(t *testing.T) {
	spec := Spec{Kind: KindGR, Istio: true}
	skipUnlessReady(t, spec)
	t.Cleanup(func() { upHook = nil })
	var made *Env
	var pids []int
	upHook = func(stage string, e *Env) error {
		if stage != "built" {
			return nil
		}
		made = e
		for _, s := range e.Sidecars {
			pids = append(pids, s.PID)
		}
		return errors.New("injected failure")
	}
	env, err := Up(context.Background(), spec)
	require.ErrorContains(t, err, "injected failure")
	require.Nil(t, env)
	require.NotNil(t, made)
	require.Len(t, pids, 2, "the sidecars had started")
	waitGone(t, pids)
	left, err := Leftovers(made.Prefix)
	require.NoError(t, err)
	assert.Empty(t, left, "a failed Up leaves nothing")

	upHook = func(stage string, e *Env) error {
		if stage == "built" {
			made = e
			panic("injected panic")
		}
		return nil
	}
	require.PanicsWithValue(t, "injected panic", func() { _, _ = Up(context.Background(), Spec{Kind: KindNodePort}) })
	left, err = Leftovers(made.Prefix)
	require.NoError(t, err)
	assert.Empty(t, left, "a panicking Up leaves nothing")

	ctx, cancel := context.WithCancel(context.Background())
	upHook = func(stage string, e *Env) error {
		if stage == "start" {
			made = e
			cancel() // as DownAll does on a signal during Up
		}
		return nil
	}
	_, err = Up(ctx, Spec{Kind: KindPlain})
	require.ErrorIs(t, err, context.Canceled)
	left, err = Leftovers(made.Prefix)
	require.NoError(t, err)
	assert.Empty(t, left)
}

func TestDownKillsStragglers(t *testing.T) {
	env := up(t, Spec{Kind: KindPlain})
	cmd := env.Command(context.Background(), env.Server, "sleep", "30")
	require.NoError(t, cmd.Start())
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	require.NoError(t, env.Down())
	select {
	case err := <-waited:
		require.Error(t, err, "the straggler was killed")
	case <-time.After(5 * time.Second):
		t.Fatal("Down left a process running in the env's namespace")
	}
	require.Error(t, env.Command(context.Background(), env.Server, "true").Run(), "Command after Down fails")
}

func TestCongestionIsEveryNamespacesDefault(t *testing.T) {
	env := up(t, Spec{Kind: KindNodePort, Congestion: "reno"})
	for _, h := range append([]Host{env.Client, env.Server}, env.Nodes...) {
		out, err := exec.Command("ip", "netns", "exec", h.NetNS, "cat", "/proc/sys/net/ipv4/tcp_congestion_control").Output()
		require.NoError(t, err, h.NetNS)
		assert.Equal(t, "reno", strings.TrimSpace(string(out)), "default congestion control in %s", h.NetNS)
	}
	assert.Contains(t, strings.Join(env.Notes, "\n"), "congestion control is reno")

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	bad, err := Up(ctx, Spec{Kind: KindPlain, Congestion: "no-such-cc"})
	if err == nil {
		assert.NoError(t, bad.Down())
	}
	require.Error(t, err)
	assert.Contains(t, err.Error(), `"no-such-cc" (available: `)

	// an algorithm the root namespace does not allow as a namespace's default: kept, and said
	allowed := strings.Fields(readTrimmed("/proc/sys/net/ipv4/tcp_allowed_congestion_control"))
	for _, cc := range strings.Fields(readTrimmed("/proc/sys/net/ipv4/tcp_available_congestion_control")) {
		if !slices.Contains(allowed, cc) {
			env := up(t, Spec{Kind: KindPlain, Congestion: cc})
			assert.Contains(t, strings.Join(env.Notes, "\n"), "TCP congestion control "+cc+" is not among those")
			return
		}
	}
	t.Log("every available congestion control is allowed as a namespace's default here: the refusal is not exercised")
}
