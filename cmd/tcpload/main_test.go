package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pathcost/pathcost/pkg/result"
)

var bin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "tcpload-cli-")
	if err != nil {
		panic(err)
	}
	bin = filepath.Join(dir, "tcpload")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		os.Stderr.Write(out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// runTool runs the binary with a bounded time and returns its exit code and output.
func runTool(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	require.NoError(t, cmd.Start())
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("tcpload %v did not end within 30 s", args)
	}
	return cmd.ProcessState.ExitCode(), out.String(), errb.String()
}

func TestBadInputExitsTwoNamingTheFlag(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"client", "--conns", "0"}, "--conns 0"},
		{[]string{"client", "--buffer", "-1"}, "--buffer -1"},
		{[]string{"client", "--bogus"}, "-bogus"},
		{[]string{"client", "--duration", "soon"}, "-duration"},
		{[]string{"client", "--rate", "fast"}, "-rate"},
		{[]string{"client", "--msgs", "20"}, "--msg-size"},
		{[]string{"client", "--msgs", "NaN", "--msg-size", "100"}, "--msgs"},
		{[]string{"client", "--setup-timeout", "-1s"}, "--setup-timeout"},
		{[]string{"client", "--direction", "up"}, "direction"},
		{[]string{"server", "--buffer", "0"}, "--buffer 0"},
		{[]string{"server", "--notsent-lowat", "-5"}, "-notsent-lowat"},
		{[]string{"client", "--notsent-lowat", "lots"}, "-notsent-lowat"},
		{[]string{"client", "--read-batch", "2ms"}, "-read-batch"},
		{[]string{"server", "--read-batch", "-5us"}, "-read-batch"},
		{[]string{"server", "--read-batch", "never"}, "-read-batch"},
		{[]string{"server", "--watch", "sidecar"}, "NAME=PID"},
		{[]string{"loopback", "--warmup", "-1s"}, "--warmup"},
		{[]string{"sample", "--duration", "0"}, "--duration"},
		{[]string{"client", "extra"}, "unexpected argument"},
		{[]string{"frobnicate"}, "unknown subcommand"},
		{nil, "usage"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			code, _, stderr := runTool(t, tc.args...)
			assert.Equal(t, 2, code, stderr)
			assert.Contains(t, stderr, tc.want)
		})
	}
}

func TestHelpIsComplete(t *testing.T) {
	for _, sub := range []string{"server", "client", "loopback", "sample"} {
		code, out, _ := runTool(t, sub, "--help")
		assert.Equal(t, 0, code)
		for _, flag := range map[string][]string{
			"server":   {"-listen", "-buffer", "-json", "-watch", "-sndbuf", "-zerocopy", "-backlog", "-notsent-lowat", "-read-batch"},
			"client":   {"-connect", "-conns", "-buffer", "-duration", "-warmup", "-interval", "-json", "-rate", "-msgs", "-msg-size", "-direction", "-congestion", "-nodelay", "-receiver-delay", "-read-batch"},
			"loopback": {"-conns", "-duration", "-json"},
			"sample":   {"-duration", "-watch", "-json"},
		}[sub] {
			assert.Contains(t, out, flag, "%s --help lists %s", sub, flag)
		}
	}
	code, out, _ := runTool(t, "help")
	assert.Equal(t, 0, code)
	assert.Contains(t, out, "loopback")
}

func freePort(t *testing.T) string {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	require.NoError(t, err)
	defer syscall.Close(fd)
	require.NoError(t, syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}))
	sa, err := syscall.Getsockname(fd)
	require.NoError(t, err)
	return "127.0.0.1:" + strconv.Itoa(sa.(*syscall.SockaddrInet4).Port)
}

func TestConnectionRefusedExitsOneNamingTheAddress(t *testing.T) {
	addr := freePort(t)
	start := time.Now()
	code, _, stderr := runTool(t, "client", "--connect", addr, "--setup-timeout", "1s", "--conns", "2")
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, addr)
	assert.Contains(t, stderr, "refused")
	assert.Less(t, time.Since(start), 5*time.Second)
}

// The loopback tests measure: their assertions are ratios and tolerances, but a machine busy
// with other work makes them slower and noisier.

func TestLoopbackJSON(t *testing.T) {
	code, out, stderr := runTool(t, "loopback", "--conns", "10", "--duration", "1", "--warmup", "0.2", "--json", "-", "--quiet")
	require.Equal(t, 0, code, stderr)
	var pair struct{ Server, Client *result.Record }
	require.NoError(t, json.Unmarshal([]byte(out), &pair), out)
	require.NotNil(t, pair.Server)
	require.NotNil(t, pair.Client)
	assert.Equal(t, result.Schema, pair.Server.Schema)
	assert.Equal(t, "server", pair.Server.Role)
	assert.Equal(t, "client", pair.Client.Role)
	assert.Equal(t, pair.Server.TotalBytes, pair.Client.TotalBytes)
	assert.Positive(t, pair.Client.Mbps)
	assert.Positive(t, pair.Server.CPU.Cores)
	assert.NotEqual(t, pair.Server.PID, pair.Client.PID, "two separate processes")
	assert.Contains(t, stderr, "bytes conserved")
	assert.Contains(t, strings.Join(pair.Client.Notes, "\n"), "read_batch_us=50: this side, receiving, slept", "the reader's default nap is recorded")
	assert.NotContains(t, strings.Join(pair.Server.Notes, "\n"), "read_batch_us", "the sender never naps")
	for _, r := range []*result.Record{pair.Server, pair.Client} {
		assert.Empty(t, r.Unmeasured, "%s: %v", r.Role, r.Notes)
		assert.Equal(t, result.PerGbpsOfMbps, r.PerGbpsOf)
		assert.InDelta(t, r.CPU.Cores/(r.Mbps/1000), r.CPU.CoresPerGbps, 1e-9, "%s: cpu per Gbps of its own mbps", r.Role)
		assert.InDelta(t, r.Node.BusyCores/(r.Mbps/1000), r.Node.CoresPerGbps, 1e-9)
		started, err := time.Parse(time.RFC3339Nano, r.StartedAt)
		require.NoError(t, err, "%s started_at", r.Role)
		assert.Less(t, started.UnixNano(), r.WindowStartUnixNano, "%s: the session starts before its window", r.Role)
		// the meter reads right after the engine's edges (later by a few ms when the loaded
		// machine preempts it)
		assert.InDelta(t, r.Seconds, float64(r.WindowEndUnixNano-r.WindowStartUnixNano)/1e9, 0.05, "%s: window edges", r.Role)
		assert.Positive(t, r.TCP.MaxSRTTAtEndMicros)
		assert.Zero(t, r.TCP.MaxRTTMicros, "max_rtt_us is not written any more")

		// the session ran over lo: its figures are lo's, and carry the application bytes plus
		// TCP/IP headers (64 kB segments on lo: about 0.1 %) and ACKs; bytes in socket buffers at
		// the window's edges move a little either way
		assert.Equal(t, "lo", r.Iface.Name, r.Role)
		lo := r.Iface.Interfaces["lo"]
		assert.Equal(t, lo.RxBytes, r.Iface.RxBytes)
		assert.Equal(t, lo.TxBytes, r.Iface.TxBytes)
		assert.Positive(t, r.Iface.RxMbps)
		assert.InDelta(t, 1.01, float64(r.Iface.RxBytes)/float64(r.Bytes), 0.05, "%s: lo bytes %d vs application bytes %d", r.Role, r.Iface.RxBytes, r.Bytes)
		assert.InDelta(t, 1.01, r.Iface.RxMbps/r.Mbps, 0.05, r.Role)
	}
}

// TestLoopbackKernelShare runs the seed's session on loopback and checks that the processes'
// CPU does not exceed the machine's busy cores by more than the reading tolerance: client and
// server read at the client's window edges (the client watches the server), and the records'
// own figures as the aggregation combines them.
func TestLoopbackKernelShare(t *testing.T) {
	code, out, stderr := runTool(t, "loopback", "--duration", "2", "--warmup", "0.5", "--json", "-", "--quiet")
	require.Equal(t, 0, code, stderr)
	var pair struct{ Server, Client *result.Record }
	require.NoError(t, json.Unmarshal([]byte(out), &pair), out)
	c, s := pair.Client, pair.Server
	require.Contains(t, c.Watched, "server")
	procs := c.CPU.Cores + c.Watched["server"].Cores
	tol := result.KernelTolerance(c.Seconds, c.Node.NumCPU, 0)
	t.Logf("%.0f Mbps; over the client's window: machine busy %.3f of %d (softirq %.3f), client %.3f + server %.3f = %.3f: kernel share %.3f (tolerance %.3f)",
		c.Mbps, c.Node.BusyCores, c.Node.NumCPU, c.Node.SoftirqCores, c.CPU.Cores, c.Watched["server"].Cores, procs, c.Node.BusyCores-procs, tol)
	assert.LessOrEqual(t, procs, c.Node.BusyCores+tol, "client+server cores within the tolerance of the machine's busy cores")
	assert.InDelta(t, s.CPU.Cores, c.Watched["server"].Cores, 0.05, "the server's own record, over its own window, agrees")

	row := result.Aggregate("loopback", "", []result.Run{{Scenario: "loopback", Client: c, Server: s, SharedNode: true}})
	require.Len(t, row.Runs, 1)
	f := row.Runs[0]
	require.NotNil(t, f.MachineBusyCores)
	require.NotNil(t, f.KernelCores, "kernel share measured: %s", f.KernelUnmeasured)
	t.Logf("aggregated: machine %.3f, client %.3f + server %.3f, kernel %.3f", *f.MachineBusyCores, *f.ClientCores, *f.ServerCores, *f.KernelCores)
	assert.Empty(t, f.KernelUnmeasured)
	assert.Equal(t, 1, row.KernelCores.N)
}

// startPair starts a server and a client writing records into dir.
func startPair(t *testing.T, dir string, dur string) (srv, cli *exec.Cmd, srvJSON, cliJSON string) {
	t.Helper()
	addr := freePort(t)
	srvJSON, cliJSON = filepath.Join(dir, "s.json"), filepath.Join(dir, "c.json")
	srv = exec.Command(bin, "server", "--listen", addr, "--json", srvJSON, "--quiet", "--accept-timeout", "10s")
	require.NoError(t, srv.Start())
	cli = exec.Command(bin, "client", "--connect", addr, "--conns", "10", "--duration", dur, "--warmup", "0.2", "--json", cliJSON, "--quiet")
	require.NoError(t, cli.Start())
	t.Cleanup(func() { srv.Process.Kill(); cli.Process.Kill() })
	return
}

// waitExit waits for cmd and returns its exit code and how long it took.
func waitExit(t *testing.T, cmd *exec.Cmd, limit time.Duration) (int, time.Duration) {
	t.Helper()
	start := time.Now()
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(limit):
		t.Fatalf("%s did not exit within %s", cmd.Args[1], limit)
	}
	return cmd.ProcessState.ExitCode(), time.Since(start)
}

func TestPeerKilledSurvivorWritesPartialRecord(t *testing.T) {
	t.Run("client killed", func(t *testing.T) {
		srv, cli, srvJSON, _ := startPair(t, t.TempDir(), "20")
		time.Sleep(1500 * time.Millisecond)
		require.NoError(t, cli.Process.Kill())
		cli.Wait()
		code, took := waitExit(t, srv, 5*time.Second)
		assert.NotEqual(t, 0, code)
		assert.Less(t, took, 2*time.Second, "the survivor ends within 2 s")
		rec, err := result.ReadFile(srvJSON)
		require.NoError(t, err)
		assert.NotEmpty(t, rec.Error)
		assert.Positive(t, rec.Bytes, "the partial window is in the record")
	})
	t.Run("server killed", func(t *testing.T) {
		srv, cli, _, cliJSON := startPair(t, t.TempDir(), "20")
		time.Sleep(1500 * time.Millisecond)
		require.NoError(t, srv.Process.Kill())
		srv.Wait()
		code, took := waitExit(t, cli, 5*time.Second)
		assert.NotEqual(t, 0, code)
		assert.Less(t, took, 2*time.Second)
		rec, err := result.ReadFile(cliJSON)
		require.NoError(t, err)
		assert.NotEmpty(t, rec.Error)
		assert.Positive(t, rec.Bytes)
	})
}

func TestSignalWritesRecord(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			srv, cli, srvJSON, cliJSON := startPair(t, t.TempDir(), "20")
			time.Sleep(1500 * time.Millisecond)
			require.NoError(t, cli.Process.Signal(sig))
			code, took := waitExit(t, cli, 5*time.Second)
			assert.Equal(t, 128+int(sig), code)
			assert.Less(t, took, 3*time.Second)
			rec, err := result.ReadFile(cliJSON)
			require.NoError(t, err)
			assert.Contains(t, rec.Error, "interrupted")
			assert.Positive(t, rec.Bytes)
			assert.Positive(t, rec.Seconds)
			waitExit(t, srv, 5*time.Second)
			srec, err := result.ReadFile(srvJSON)
			require.NoError(t, err)
			assert.Equal(t, srec.TotalBytes, rec.TotalBytes, "the interrupted client still ended the session cleanly")
		})
	}
}

func TestSample(t *testing.T) {
	code, out, stderr := runTool(t, "sample", "--duration", "0.5", "--series-interval", "50ms", "--json", "-", "--watch", "self="+strconv.Itoa(os.Getpid()))
	require.Equal(t, 0, code, stderr)
	rec, err := result.Decode([]byte(out))
	require.NoError(t, err)
	assert.Equal(t, "sample", rec.Role)
	assert.InDelta(t, 0.5, rec.Seconds, 0.2)
	assert.Positive(t, rec.Node.NumCPU)
	assert.Contains(t, rec.Watched, "self")
	assert.Zero(t, rec.Mbps, "a sampler moves no application bytes")
	assert.Empty(t, rec.PerGbpsOf)
	assert.Zero(t, rec.Node.CoresPerGbps)
	assert.Equal(t, []string{"iface"}, rec.Unmeasured, "no --iface: no interface totals")
	assert.NotEmpty(t, rec.StartedAt)

	// the series covers the window: the node over the record's own window from the series is
	// the record's node figure, within a reading unit per edge
	require.GreaterOrEqual(t, len(rec.NodeSeries), 5, "about one sample per 50 ms over 0.5 s")
	assert.LessOrEqual(t, rec.NodeSeries[0].TUnixNano, rec.WindowStartUnixNano)
	assert.GreaterOrEqual(t, rec.NodeSeries[len(rec.NodeSeries)-1].TUnixNano, rec.WindowEndUnixNano)
	n, err := result.NodeOver(rec.NodeSeries, rec.WindowStartUnixNano, rec.WindowEndUnixNano, rec.Node.NumCPU)
	require.NoError(t, err)
	assert.InDelta(t, rec.Node.BusyCores, n.BusyCores, float64(rec.Node.NumCPU)*0.1/rec.Seconds+0.1)

	code, out, stderr = runTool(t, "sample", "--duration", "0.2", "--series-interval", "0", "--iface", "lo", "--json", "-")
	require.Equal(t, 0, code, stderr)
	rec, err = result.Decode([]byte(out))
	require.NoError(t, err)
	assert.Empty(t, rec.NodeSeries)
	assert.Equal(t, "lo", rec.Iface.Name)
	assert.Empty(t, rec.Unmeasured)

	code, _, stderr = runTool(t, "sample", "--duration", "1", "--series-interval", "1ms")
	assert.Equal(t, 2, code)
	assert.Contains(t, stderr, "--series-interval")
}

func TestReportAndCompare(t *testing.T) {
	fixture := filepath.Join("..", "..", "pkg", "report", "testdata", "fixture.json")
	code, out, stderr := runTool(t, "report", fixture, "--markdown", "--out", t.TempDir())
	assert.Equal(t, 1, code, "the fixture holds a failed gate: report exits 1 (%s)", stderr)
	assert.Contains(t, out, "| scenario")
	assert.Contains(t, out, "gr+istio")
	code, out, stderr = runTool(t, "compare", fixture, fixture)
	assert.Equal(t, 0, code, stderr)
	assert.Contains(t, out, "plain")
	code, _, stderr = runTool(t, "compare", fixture)
	assert.Equal(t, 2, code)
	assert.Contains(t, stderr, "want OLD and NEW")
	code, _, stderr = runTool(t, "report", filepath.Join(t.TempDir(), "missing"))
	assert.Equal(t, 2, code, "nothing readable is bad input")
	assert.Contains(t, stderr, "missing")
}
