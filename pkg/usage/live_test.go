package usage

import (
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/pathcost/pathcost/pkg/result"
)

// These tests read the real /proc of this machine. It is shared and noisy: ranges are generous.

// spin burns one OS thread until stop is set, then sends the CPU time that thread got, as the
// scheduler accounts it (getrusage RUSAGE_THREAD: an independent, nanosecond-precise source).
func spin(stop *atomic.Bool, started chan<- struct{}, got chan<- time.Duration) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var a, b unix.Rusage
	_ = unix.Getrusage(unix.RUSAGE_THREAD, &a)
	close(started)
	for !stop.Load() {
	}
	_ = unix.Getrusage(unix.RUSAGE_THREAD, &b)
	got <- time.Duration(b.Utime.Nano() + b.Stime.Nano() - a.Utime.Nano() - a.Stime.Nano())
}

func TestBusySpinIsOneCore(t *testing.T) {
	var stop atomic.Bool
	started := make(chan struct{})
	threadCPU := make(chan time.Duration, 1)
	go spin(&stop, started, threadCPU)
	defer stop.Store(true)
	<-started

	s := &Sampler{}
	a, err := s.Take()
	require.NoError(t, err)
	time.Sleep(time.Second)
	b, err := s.Take()
	require.NoError(t, err)
	stop.Store(true)
	spun := (<-threadCPU).Seconds() // over a slightly wider window than a..b

	u := Diff(a, b)
	spinCores := spun / u.Seconds
	t.Logf("spin: %.3f s, spinning thread got %.2f cores; process %.2f cores (user %.2f sys %.2f), node busy %.2f of %d, idle %.0f%%",
		u.Seconds, spinCores, u.CPU.Cores, u.CPU.UserCores, u.CPU.SysCores, u.Node.BusyCores, u.Node.NumCPU, u.Node.IdlePct)
	// The process accounts for what its spinning thread got (ticks are 10 ms; GC and the race
	// detector add a little).
	assert.InDelta(t, spinCores, u.CPU.Cores, 0.25, "process CPU vs the spinning thread's own CPU")
	assert.Greater(t, u.CPU.UserCores, u.CPU.SysCores)
	if spinCores >= 0.9 {
		assert.InDelta(t, 1.0, u.CPU.Cores, 0.4, "one spinning thread")
	} else {
		t.Logf("the 2 shared cores were contended: the spinner got only %.2f cores, not asserting ~1 core", spinCores)
	}
	assert.GreaterOrEqual(t, u.Node.BusyCores, 0.5)
	assert.GreaterOrEqual(t, u.Node.BusyCores, u.CPU.Cores-0.1)
	assert.LessOrEqual(t, u.Node.BusyCores, float64(u.Node.NumCPU)*1.1)
	assert.Positive(t, u.Node.NumCPU)
}

func TestIdleSleepIsNoCore(t *testing.T) {
	a, err := ReadProc(0)
	require.NoError(t, err)
	start := time.Now()
	time.Sleep(500 * time.Millisecond)
	b, err := ReadProc(0)
	require.NoError(t, err)
	c := ProcCPU(a, b, time.Since(start).Seconds())
	t.Logf("idle: process %.3f cores", c.Cores)
	assert.Less(t, c.Cores, 0.1)
	assert.Equal(t, a.Start, b.Start)
}

func TestLoopbackTraffic(t *testing.T) {
	const size = 10 << 20
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()

	netA, err := ReadNetDev(0)
	require.NoError(t, err)
	tcpA, err := ReadTCP(0)
	require.NoError(t, err)
	start := time.Now()

	got := make(chan int64, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- -1
			return
		}
		defer c.Close()
		n, _ := io.Copy(io.Discard, c)
		got <- n
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	n, err := c.Write(make([]byte, size))
	require.NoError(t, err)
	require.Equal(t, size, n)
	require.NoError(t, c.Close())
	require.Equal(t, int64(size), <-got)

	netB, err := ReadNetDev(0)
	require.NoError(t, err)
	tcpB, err := ReadTCP(0)
	require.NoError(t, err)
	sec := time.Since(start).Seconds()

	d := IfaceDelta(netA, netB, sec)
	require.True(t, SelectIface(&d, "lo"))
	lo := d.Interfaces["lo"]
	t.Logf("lo: rx %d tx %d bytes (%d/%d packets) in %.3f s: %.0f Mbps; totals rx %d tx %d", lo.RxBytes, lo.TxBytes,
		lo.RxPackets, lo.TxPackets, sec, lo.RxMbps, d.RxBytes, d.TxBytes)
	assert.GreaterOrEqual(t, lo.RxBytes, uint64(size))
	assert.GreaterOrEqual(t, lo.TxBytes, uint64(size))
	assert.Positive(t, lo.RxMbps)
	assert.Equal(t, lo.RxBytes, d.RxBytes, "the totals are lo's")
	assert.Equal(t, lo.TxBytes, d.TxBytes)
	name, err := InterfaceOfAddr(ln.Addr().String())
	require.NoError(t, err)
	assert.Equal(t, "lo", name, "the interface holding the connection's local address")
	tc := TCPDelta(tcpA, tcpB)
	assert.Positive(t, tc.NsInSegs)
	assert.Positive(t, tc.NsOutSegs)
}

// /proc/PID/net follows the thread PID names: a thread that entered another network
// namespace must be sampled by its thread id, not by the process id.
func TestNetDevFollowsThreadNamespace(t *testing.T) {
	type res struct {
		m    map[string]DevCounters
		err  error
		skip string
	}
	ch := make(chan res, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread, now in another netns, exits with us
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			ch <- res{skip: "unshare(CLONE_NEWNET): " + err.Error()}
			return
		}
		m, err := ReadNetDev(unix.Gettid())
		ch <- res{m: m, err: err}
	}()
	r := <-ch
	if r.skip != "" {
		t.Skip(r.skip)
	}
	require.NoError(t, r.err)
	assert.Equal(t, map[string]DevCounters{"lo": {}}, r.m, "a fresh namespace has only an idle lo")

	own, err := ReadNetDev(0)
	require.NoError(t, err)
	assert.Contains(t, own, "lo")
}

// ProcStart names a live process by its start time, the same across readings, and refuses
// one that has exited.
func TestProcStartLive(t *testing.T) {
	own, err := ProcStart(0)
	require.NoError(t, err)
	again, err := ProcStart(os.Getpid())
	require.NoError(t, err)
	assert.Equal(t, own, again)
	assert.Positive(t, own)

	cmd := startSleeper(t)
	st, err := ProcStart(cmd.Process.Pid)
	require.NoError(t, err)
	assert.GreaterOrEqual(t, st, own, "a child starts after its parent")
	require.NoError(t, cmd.Process.Kill())
	require.Eventually(t, func() bool { _, err := ProcStart(cmd.Process.Pid); return err != nil }, 5*time.Second, 10*time.Millisecond,
		"a killed (zombie, not yet reaped) process is not live")
	_ = cmd.Wait()
	_, err = ProcStart(cmd.Process.Pid)
	assert.Error(t, err, "a reaped process is gone")
}

// measureTake returns the wall time and the CPU time of this process per Take, over n calls.
func measureTake(tb testing.TB, s *Sampler, n int) (wall, cpu time.Duration) {
	tb.Helper()
	_, err := s.Take() // warm up: opens the FS, resolves self
	require.NoError(tb, err)
	a, err := ReadProc(0)
	require.NoError(tb, err)
	start := time.Now()
	for range n {
		if _, err := s.Take(); err != nil {
			tb.Fatal(err)
		}
	}
	wall = time.Since(start) / time.Duration(n)
	b, err := ReadProc(0)
	require.NoError(tb, err)
	cpu = time.Duration((b.Total() - a.Total()) / float64(n) * float64(time.Second))
	return wall, cpu
}

func startSleeper(t *testing.T) *exec.Cmd {
	t.Helper()
	cmd := exec.Command("sleep", "30")
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	return cmd
}

func TestTakeCost(t *testing.T) {
	child := startSleeper(t)
	s := NewSampler(0, map[string]int{"self": os.Getpid(), "child": child.Process.Pid})
	const n = 100
	wall, cpu := measureTake(t, s, n)
	t.Logf("Take with 2 watched pids: %v wall, %v CPU per call (USER_HZ ticks: ±10ms over %d calls)", wall, cpu, n)
	assert.Less(t, wall, 10*time.Millisecond)
	assert.Less(t, cpu, 10*time.Millisecond)
}

func TestTakeWatchedExits(t *testing.T) {
	child := startSleeper(t)
	s := NewSampler(0, map[string]int{"self": os.Getpid(), "child": child.Process.Pid})
	a, err := s.Take()
	require.NoError(t, err)
	require.Empty(t, a.Missing)
	require.NoError(t, a.WatchErr)
	require.Contains(t, a.Watched, "child")

	require.NoError(t, child.Process.Kill())
	_ = child.Wait() // reaped: /proc/PID is gone

	b, err := s.Take()
	require.NoError(t, err, "a watched process exiting does not fail Take")
	assert.Equal(t, []string{"child"}, b.Missing)
	require.Error(t, b.WatchErr)
	assert.ErrorIs(t, b.WatchErr, os.ErrNotExist)
	assert.Contains(t, b.Watched, "self")

	u := Diff(a, b)
	assert.Equal(t, []string{"child"}, u.Missing)
	assert.Contains(t, u.Watched, "self")
	assert.NotContains(t, u.Watched, "child")
}

func BenchmarkTake(b *testing.B) {
	cmd := exec.Command("sleep", "30")
	require.NoError(b, cmd.Start())
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	s := NewSampler(0, map[string]int{"self": os.Getpid(), "child": cmd.Process.Pid})
	_, err := s.Take()
	require.NoError(b, err)
	a, err := ReadProc(0)
	require.NoError(b, err)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := s.Take(); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	c, err := ReadProc(0)
	require.NoError(b, err)
	b.ReportMetric((c.Total()-a.Total())/float64(b.N)*1e6, "cpu-µs/op")
}

func TestNodeSeries(t *testing.T) {
	f, err := Default()
	require.NoError(t, err)
	start := time.Now()
	stop, err := f.StartNodeSeries(50 * time.Millisecond)
	require.NoError(t, err)
	afterStart := time.Now()
	time.Sleep(350 * time.Millisecond)
	beforeStop := time.Now()
	got, err := stop()
	require.NoError(t, err)
	end := time.Now()
	// one at once, one per 50 ms, one at the end: about 9 (the ticker drops ticks under load)
	assert.GreaterOrEqual(t, len(got), 4)
	assert.LessOrEqual(t, len(got), 9)
	assert.GreaterOrEqual(t, got[0].TUnixNano, start.UnixNano())
	assert.LessOrEqual(t, got[0].TUnixNano, afterStart.UnixNano(), "the first sample is read before StartNodeSeries returns")
	assert.GreaterOrEqual(t, got[len(got)-1].TUnixNano, beforeStop.UnixNano(), "the last one when stop is called")
	assert.LessOrEqual(t, got[len(got)-1].TUnixNano, end.UnixNano())
	for i := 1; i < len(got); i++ {
		assert.Greater(t, got[i].TUnixNano, got[i-1].TUnixNano)
		assert.GreaterOrEqual(t, got[i].Idle+got[i].IOWait, got[i-1].Idle+got[i-1].IOWait)
	}
	again, err := stop()
	require.NoError(t, err)
	assert.Equal(t, got, again, "stop twice: the same series")
	n, err := result.NodeOver(got, afterStart.UnixNano(), beforeStop.UnixNano(), runtime.NumCPU())
	require.NoError(t, err)
	assert.GreaterOrEqual(t, n.BusyCores, 0.0)
	assert.LessOrEqual(t, n.BusyCores, float64(runtime.NumCPU()))

	_, err = f.StartNodeSeries(time.Millisecond)
	assert.ErrorContains(t, err, "below 10ms")
}
