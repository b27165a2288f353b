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
			"server":   {"-listen", "-buffer", "-json", "-watch", "-sndbuf", "-zerocopy", "-backlog"},
			"client":   {"-connect", "-conns", "-buffer", "-duration", "-warmup", "-interval", "-json", "-rate", "-msgs", "-msg-size", "-direction", "-congestion", "-nodelay"},
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
	code, out, stderr := runTool(t, "sample", "--duration", "0.3", "--json", "-", "--watch", "self="+strconv.Itoa(os.Getpid()))
	require.Equal(t, 0, code, stderr)
	rec, err := result.Decode([]byte(out))
	require.NoError(t, err)
	assert.Equal(t, "sample", rec.Role)
	assert.InDelta(t, 0.3, rec.Seconds, 0.2)
	assert.Positive(t, rec.Node.NumCPU)
	assert.Contains(t, rec.Watched, "self")
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
