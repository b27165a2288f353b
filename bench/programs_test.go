package bench

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pathcost/pathcost/pkg/result"
	"github.com/pathcost/pathcost/pkg/usage"
)

// program is one server/client pair measured by BenchmarkPrograms.
type program struct {
	name           string
	server, client []string
	missing        string // why it cannot run here ("" = it can)
}

// build compiles tcpload and the seed's C programs (listen backlog raised from 5 to 1024, as
// SUMMARY.md advises) into dir.
func build(b *testing.B, dir string) (tcpload, seedServer, seedClient string) {
	b.Helper()
	tcpload = filepath.Join(dir, "tcpload")
	if out, err := exec.Command("go", "build", "-o", tcpload, "../cmd/tcpload").CombinedOutput(); err != nil {
		b.Fatalf("build tcpload: %v\n%s", err, out)
	}
	src, err := os.ReadFile("testdata/seed/server.c")
	if err != nil {
		b.Fatal(err)
	}
	patched := strings.Replace(string(src), "listen(sockfd, 5);", "listen(sockfd, 1024);", 1)
	if patched == string(src) {
		b.Fatal("seed server.c: listen(sockfd, 5) not found to raise the backlog")
	}
	srvC := filepath.Join(dir, "server.c")
	if err := os.WriteFile(srvC, []byte(patched), 0o644); err != nil {
		b.Fatal(err)
	}
	seedServer, seedClient = filepath.Join(dir, "seed-server"), filepath.Join(dir, "seed-client")
	for _, c := range [][]string{{"-O2", "-w", "-o", seedServer, srvC}, {"-O2", "-w", "-o", seedClient, "testdata/seed/client.c"}} {
		if out, err := exec.Command("gcc", c...).CombinedOutput(); err != nil {
			b.Fatalf("gcc %v: %v\n%s", c, err, out)
		}
	}
	return tcpload, seedServer, seedClient
}

// BenchmarkPrograms measures tcpload, the seed's C server/client and iperf3 (-P 100 -R -l 102400)
// at the seed's settings (100 connections, 102400-byte reads/writes, server pushes), one after
// the other (bench/compare.sh runs rounds of all three, so they alternate). Each pair runs in a private network namespace (root
// needed) and is measured identically: CPU of both processes from /proc/PID/stat, and bytes from
// the namespace's lo counters (/proc/PID/net/dev: TCP payload plus headers and ACKs), over the
// same window after the same warm-up.
func BenchmarkPrograms(b *testing.B) {
	needRoot(b)
	for _, p := range programs(b) {
		b.Run(p.name, func(b *testing.B) {
			if p.missing != "" {
				b.Skip(p.missing)
			}
			var m measurement
			for i := 0; i < b.N; i++ {
				got := runPair(b, p)
				m.add(got)
			}
			m.report(b, b.N)
		})
	}
}

// programs builds the three pairs (root and ip needed: the caller checks).
func programs(b *testing.B) []program {
	b.Helper()
	dir := b.TempDir()
	tl, ss, sc := build(b, dir)
	const port = "50012"
	extra := strings.Fields(os.Getenv("PATHCOST_BENCH_TCPLOAD_FLAGS"))
	progs := []program{
		{name: "tcpload", server: append([]string{tl, "server", "--listen", "127.0.0.1:" + port, "--quiet"}, extra...),
			client: append([]string{tl, "client", "--connect", "127.0.0.1:" + port, "--conns", "100", "--buffer", "102400", "--duration", "1h", "--warmup", "1", "--quiet"}, extra...)},
		{name: "seed-c", server: []string{ss}, client: []string{sc, "127.0.0.1", port}},
		{name: "iperf3", server: []string{"iperf3", "-s", "-1", "-p", port},
			client: []string{"iperf3", "-c", "127.0.0.1", "-p", port, "-P", "100", "-R", "-l", "102400", "-t", "3600"}},
	}
	if _, err := exec.LookPath("iperf3"); err != nil {
		progs[2].missing = "iperf3 not installed (apt-get install iperf3)"
	}
	return progs
}

// needRoot skips a benchmark that runs pairs in network namespaces when it cannot.
func needRoot(b *testing.B) {
	b.Helper()
	if os.Geteuid() != 0 {
		b.Skip("needs root (each pair runs in a private network namespace)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		b.Skip("needs ip (apt-get install iproute2)")
	}
}

// pinning returns the CPUs for server and client from PATHCOST_BENCH_PIN: "" (unpinned),
// "split" (server on CPU 0, client on CPU 1) or "same" (both on CPU 0).
func pinning(b *testing.B) (server, client string) {
	switch p := os.Getenv("PATHCOST_BENCH_PIN"); p {
	case "":
		return "", ""
	case "split":
		return "0", "1"
	case "same":
		return "0", "0"
	default:
		b.Fatalf("PATHCOST_BENCH_PIN=%q: want split, same or empty", p)
	}
	return "", ""
}

// namespaceLowat returns PATHCOST_BENCH_NOTSENT_LOWAT, the net.ipv4.tcp_notsent_lowat runPair
// sets in each pair's namespace for all three programs ("": the kernel's default, unbounded).
func namespaceLowat(b *testing.B) string {
	s := os.Getenv("PATHCOST_BENCH_NOTSENT_LOWAT")
	if s == "" {
		return ""
	}
	if n, err := strconv.Atoi(s); err != nil || n < 1 {
		b.Fatalf("PATHCOST_BENCH_NOTSENT_LOWAT=%q: want a positive number of bytes", s)
	}
	return s
}

// measurement is what one op measured.
type measurement struct {
	mbps, serverCores, clientCores float64
	// queuedMB is what the namespace's established TCP sockets held in their send and receive
	// queues at the window's end (see queuedBytes): the pair's steady state
	queuedMB float64
}

func (m *measurement) add(o measurement) {
	m.mbps += o.mbps
	m.serverCores += o.serverCores
	m.clientCores += o.clientCores
	m.queuedMB += o.queuedMB
}

func (m *measurement) report(b *testing.B, n int) {
	f := float64(n)
	cores := (m.serverCores + m.clientCores) / f
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(m.mbps/f, "Mbps")
	b.ReportMetric(m.serverCores/f, "server-cores")
	b.ReportMetric(m.clientCores/f, "client-cores")
	b.ReportMetric(result.CoresPerGbps(cores, m.mbps/f), "cores/Gbps")
	b.ReportMetric(m.queuedMB/f, "queued-MB")
}

var nsSeq int

// runPair runs one server/client pair in a fresh network namespace for warm-up plus window.
func runPair(b *testing.B, p program) measurement {
	b.Helper()
	nsSeq++
	ns := fmt.Sprintf("pcbench-%d-%d", os.Getpid(), nsSeq)
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		b.Fatalf("ip netns add %s: %v\n%s", ns, err, out)
	}
	defer exec.Command("ip", "netns", "del", ns).Run()
	if out, err := exec.Command("ip", "-n", ns, "link", "set", "lo", "up").CombinedOutput(); err != nil {
		b.Fatalf("lo up in %s: %v\n%s", ns, err, out)
	}
	if lowat := namespaceLowat(b); lowat != "" {
		set := "echo " + lowat + " > /proc/sys/net/ipv4/tcp_notsent_lowat"
		if out, err := exec.Command("ip", "netns", "exec", ns, "sh", "-c", set).CombinedOutput(); err != nil {
			b.Fatalf("net.ipv4.tcp_notsent_lowat=%s in %s: %v\n%s", lowat, ns, err, out)
		}
	}
	pinS, pinC := pinning(b)
	start := func(argv []string, cpu string) *exec.Cmd {
		if cpu != "" {
			argv = append([]string{"taskset", "-c", cpu}, argv...) // taskset execs: the PID stays
		}
		cmd := exec.Command("ip", append([]string{"netns", "exec", ns}, argv...)...)
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		if err := cmd.Start(); err != nil {
			b.Fatalf("start %v: %v", argv, err)
		}
		return cmd
	}
	stop := func(cmd *exec.Cmd) {
		cmd.Process.Kill()
		cmd.Wait()
	}
	srv := start(p.server, pinS)
	defer stop(srv)
	time.Sleep(500 * time.Millisecond) // the seed's client does not retry refused connects
	cli := start(p.client, pinC)
	defer stop(cli)
	time.Sleep(2 * time.Second) // connections up plus warm-up
	for _, c := range []*exec.Cmd{srv, cli} {
		if !running(c.Process.Pid) {
			b.Fatalf("%s: %v exited early", p.name, c.Args[3:])
		}
	}
	fs, err := usage.Default()
	if err != nil {
		b.Fatal(err)
	}
	snap := func() (usage.ProcTimes, usage.ProcTimes, usage.DevCounters, time.Time) {
		s, err1 := fs.ReadProc(srv.Process.Pid)
		c, err2 := fs.ReadProc(cli.Process.Pid)
		nd, err3 := fs.ReadNetDev(srv.Process.Pid)
		if err := firstErr(err1, err2, err3); err != nil {
			b.Fatalf("%s: sample: %v", p.name, err)
		}
		return s, c, nd["lo"], time.Now()
	}
	s0, c0, n0, t0 := snap()
	time.Sleep(window())
	s1, c1, n1, t1 := snap()
	queued, err := namespaceQueued(srv.Process.Pid)
	if err != nil {
		b.Fatalf("%s: %v", p.name, err)
	}
	sec := t1.Sub(t0).Seconds()
	if n1.TxBytes == n0.TxBytes || !running(srv.Process.Pid) || !running(cli.Process.Pid) {
		b.Fatalf("%s: no traffic in the window, or a process died", p.name)
	}
	return measurement{
		mbps:        float64(n1.TxBytes-n0.TxBytes) * 8 / sec / 1e6,
		serverCores: usage.ProcCPU(s0, s1, sec).Cores,
		clientCores: usage.ProcCPU(c0, c1, sec).Cores,
		queuedMB:    float64(queued) / 1e6,
	}
}

// namespaceQueued sums the TCP queues of the network namespace pid is in, IPv4 and IPv6 tables
// (iperf3's server listens on IPv6 and takes IPv4 connections as mapped addresses).
func namespaceQueued(pid int) (int64, error) {
	var sum int64
	for _, t := range []string{"tcp", "tcp6"} {
		path := fmt.Sprintf("/proc/%d/net/%s", pid, t)
		f, err := os.Open(path)
		if err != nil {
			return 0, fmt.Errorf("queues: %w", err)
		}
		n, err := queuedBytes(f)
		f.Close()
		if err != nil {
			return 0, fmt.Errorf("queues in %s: %w", path, err)
		}
		sum += n
	}
	return sum, nil
}

// running reports whether pid is alive and not a zombie (exec.Cmd learns of an exit only in Wait).
func running(pid int) bool {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	i := strings.LastIndexByte(string(data), ')')
	return i > 0 && i+2 < len(data) && data[i+2] != 'Z'
}

func firstErr(errs ...error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}
