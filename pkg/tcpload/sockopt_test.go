//go:build linux

package tcpload

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// tcpPair returns the two ends of a TCP connection over lo: the connecting end and the accepted one.
func tcpPair(t *testing.T) (conn, accepted int) {
	t.Helper()
	lfd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	require.NoError(t, err)
	defer unix.Close(lfd)
	require.NoError(t, unix.Bind(lfd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}))
	require.NoError(t, unix.Listen(lfd, 1))
	sa, err := unix.Getsockname(lfd)
	require.NoError(t, err)
	conn, err = unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	require.NoError(t, err)
	t.Cleanup(func() { unix.Close(conn) })
	require.NoError(t, unix.Connect(conn, sa))
	accepted, _, err = unix.Accept4(lfd, unix.SOCK_CLOEXEC)
	require.NoError(t, err)
	t.Cleanup(func() { unix.Close(accepted) })
	return conn, accepted
}

func TestBlockingReadsReturnWhatIsThereAndGiveUpWhenNothingIs(t *testing.T) {
	r, w := tcpPair(t)
	require.NoError(t, unix.SetNonblock(r, true), "the engine's sockets start non-blocking")
	require.NoError(t, blockingReads(r))
	flags, err := unix.FcntlInt(uintptr(r), unix.F_GETFL, 0)
	require.NoError(t, err)
	assert.Zero(t, flags&unix.O_NONBLOCK, "reads block")
	tv, err := unix.GetsockoptTimeval(r, unix.SOL_SOCKET, unix.SO_RCVTIMEO)
	require.NoError(t, err)
	got := time.Duration(tv.Nano())
	assert.True(t, got >= readTimeout && got <= readTimeout+10*time.Millisecond,
		"bounded by readTimeout, rounded up to the kernel's ticks: %s", got)

	buf := make([]byte, 4096)
	// nothing to read: the read gives up after the timeout instead of hanging
	from := time.Now()
	n, err := recv(r, buf)
	for i := 0; err == unix.EINTR && i < 100; i++ { // the runtime's preemption signal interrupted it: read again
		n, err = recv(r, buf)
	}
	took := time.Since(from)
	assert.Equal(t, unix.EAGAIN, err, "a read that found nothing")
	assert.Zero(t, n)
	assert.GreaterOrEqual(t, took, readTimeout/2, "it waited for data")
	assert.Less(t, took, 2*time.Second, "and gave up (generous: a loaded machine)")

	// data there: returned at once, a short read as with a non-blocking socket
	_, err = unix.Write(w, []byte("seed"))
	require.NoError(t, err)
	n, err = recv(r, buf)
	require.NoError(t, err)
	assert.Equal(t, "seed", string(buf[:n]))

	// the peer's end: EOF
	require.NoError(t, unix.Shutdown(w, unix.SHUT_WR))
	n, err = recv(r, buf)
	require.NoError(t, err)
	assert.Zero(t, n, "EOF")
}
