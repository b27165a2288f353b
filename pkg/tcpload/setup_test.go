//go:build linux

package tcpload

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// resetProbe connects to addr from source (an address of lo) and closes with SO_LINGER 0, so the
// server sees a reset before any header: what health checks of HAProxy and load balancers do.
func resetProbe(t *testing.T, source netip.Addr, addr netip.AddrPort) {
	t.Helper()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	require.NoError(t, err)
	defer unix.Close(fd)
	require.NoError(t, unix.Bind(fd, &unix.SockaddrInet4{Addr: source.As4()}))
	require.NoError(t, unix.Connect(fd, &unix.SockaddrInet4{Addr: addr.Addr().As4(), Port: int(addr.Port())}))
	require.NoError(t, unix.SetsockoptLinger(fd, unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1, Linger: 0}))
}

func TestServerIgnoresResetBeforeHeaderAndRecordsTheSessionsPeer(t *testing.T) {
	s, err := Listen("127.0.0.1:0", Config{AcceptTimeout: 5 * time.Second, SetupTimeout: 5 * time.Second})
	require.NoError(t, err)
	done := make(chan *Result, 1)
	go func() { done <- s.Serve(context.Background()) }()
	// two health checks from another address of lo, reset before any header
	for i := 0; i < 2; i++ {
		resetProbe(t, netip.MustParseAddr("127.0.0.2"), s.Addr())
	}
	time.Sleep(100 * time.Millisecond) // the server accepts them and sees the resets
	cli := RunClient(context.Background(), s.Addr().String(), Config{Conns: 3, Duration: 300 * time.Millisecond, Warmup: 1})
	srv := <-done
	require.NoError(t, cli.Err)
	require.NoError(t, srv.Err, "a reset before the header is ignored like a close")
	assert.Equal(t, srv.TotalBytes, cli.TotalBytes)
	assert.Positive(t, srv.PerConnMin, "only the session's connections count")
	peer, err := netip.ParseAddrPort(srv.Peer)
	require.NoError(t, err)
	assert.Equal(t, "127.0.0.1", peer.Addr().String(), "the peer is a session connection's, not the health check's")
	assert.Equal(t, s.Addr().String(), srv.Local)
	assert.Positive(t, srv.Sockets.SndBufGranted, "socket figures read from a session connection")
	assert.Equal(t, 3, srv.Conns)
}

func TestBurnRaisesCostPerByteByTheAmountAsked(t *testing.T) {
	// cost per KB of the whole process (both sides in it) without and with the burn on the client
	const burn = 2 * time.Microsecond // per KB: about 5x what moving a KB costs both sides here
	costPerKB := func(b time.Duration) float64 {
		var ru0, ru1 unix.Rusage
		require.NoError(t, unix.Getrusage(unix.RUSAGE_SELF, &ru0))
		_, cli := session(t, Config{Conns: 10, Duration: 700 * time.Millisecond, Warmup: 100 * time.Millisecond, BurnPerKB: b},
			context.Background(), context.Background())
		require.NoError(t, unix.Getrusage(unix.RUSAGE_SELF, &ru1))
		require.NoError(t, cli.Err)
		require.Equal(t, b, cli.BurnPerKB)
		cpu := time.Duration(ru1.Utime.Nano() - ru0.Utime.Nano() + ru1.Stime.Nano() - ru0.Stime.Nano())
		return float64(cpu) / (float64(cli.TotalBytes) / 1024)
	}
	base := costPerKB(0)
	with := costPerKB(burn)
	added := with - base
	t.Logf("ns per KB: %.0f without, %.0f with a burn of %s per KB on the client: %.0f added", base, with, burn, added)
	ratio := added / float64(burn)
	assert.Greater(t, ratio, 0.7, "the burn adds about what was asked")
	assert.Less(t, ratio, 1.5, "the burn adds about what was asked")
}
