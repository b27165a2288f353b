//go:build linux

package tcpload

import (
	"fmt"
	"net/netip"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/pathcost/pathcost/pkg/result"
)

// applyOptions sets the socket options asked for on fd before connect/listen; buffer is the
// side's read/write buffer, of which the default TCP_NOTSENT_LOWAT is a multiple.
func applyOptions(fd int, o Options, buffer int) error {
	if o.SndBuf > 0 {
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, o.SndBuf); err != nil {
			return fmt.Errorf("set SO_SNDBUF %d: %w", o.SndBuf, err)
		}
	}
	if o.RcvBuf > 0 {
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, o.RcvBuf); err != nil {
			return fmt.Errorf("set SO_RCVBUF %d: %w", o.RcvBuf, err)
		}
	}
	if n := o.notSentLowat(buffer); n > 0 {
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NOTSENT_LOWAT, n); err != nil {
			return fmt.Errorf("set TCP_NOTSENT_LOWAT %d: %w", n, err)
		}
	}
	if o.NoDelay {
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1); err != nil {
			return fmt.Errorf("set TCP_NODELAY: %w", err)
		}
	}
	if o.Congestion != "" {
		if err := unix.SetsockoptString(fd, unix.IPPROTO_TCP, unix.TCP_CONGESTION, o.Congestion); err != nil {
			return fmt.Errorf("set congestion control %q: %w (available: /proc/sys/net/ipv4/tcp_available_congestion_control; others may need modprobe tcp_%s)", o.Congestion, err, o.Congestion)
		}
	}
	return nil
}

// readTimeout bounds a blocking read (see blockingReads).
const readTimeout = 10 * time.Millisecond

// blockingReads makes fd blocking, with its reads bounded by readTimeout, as the seed's client's
// sockets are (blocking, read after epoll says they are readable).
//
// A read finds data there whenever it runs, so it does not sleep; what blocking changes is where
// it stops. While a read copies, segments that arrive wait in the socket's backlog; a
// non-blocking read returns once the receive queue is empty, a blocking one takes the backlog
// in and goes on copying, so a read moves about a whole buffer (103-108 kB of lo traffic per
// read against 64-84 kB non-blocking) and the loop makes about a third fewer reads and waits.
// In 14 alternating pairs at the seed's load the client used 0.94x the cores per Gbps it used
// with non-blocking reads (below 1 in 11), the pair 0.97x; the seed's C client given
// non-blocking sockets cost 1.05x its blocking self (2026-12-06, README). Should a read find
// nothing after all, it gives up after readTimeout (EAGAIN) or at the runtime's preemption
// signal (EINTR), which the loop treats as "nothing now".
func blockingReads(fd int) error {
	tv := unix.NsecToTimeval(readTimeout.Nanoseconds())
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		return fmt.Errorf("set SO_RCVTIMEO: %w", err)
	}
	if err := unix.SetNonblock(fd, false); err != nil {
		return fmt.Errorf("clear O_NONBLOCK: %w", err)
	}
	return nil
}

// enableZeroCopy turns on SO_ZEROCOPY; the error says why it is unsupported.
func enableZeroCopy(fd int) error {
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ZEROCOPY, 1); err != nil {
		return fmt.Errorf("SO_ZEROCOPY: %w", err)
	}
	return nil
}

// readSockets reports what the kernel granted on fd.
func readSockets(fd int, o Options) result.Sockets {
	s := result.Sockets{SndBufAsked: o.SndBuf, RcvBufAsked: o.RcvBuf, NoDelay: o.NoDelay}
	s.SndBufGranted, _ = unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF)
	s.RcvBufGranted, _ = unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF)
	s.NotSentLowat, _ = unix.GetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NOTSENT_LOWAT)
	if cc, err := unix.GetsockoptString(fd, unix.IPPROTO_TCP, unix.TCP_CONGESTION); err == nil {
		s.Congestion = cc
	}
	return s
}

// sockaddr converts an address to a unix.Sockaddr.
func sockaddr(ap netip.AddrPort) (unix.Sockaddr, int) {
	a := ap.Addr().Unmap()
	if a.Is4() {
		return &unix.SockaddrInet4{Port: int(ap.Port()), Addr: a.As4()}, unix.AF_INET
	}
	sa := &unix.SockaddrInet6{Port: int(ap.Port()), Addr: a.As16()}
	return sa, unix.AF_INET6
}

// addrOf converts a unix.Sockaddr back to an address (zero on unknown families).
func addrOf(sa unix.Sockaddr) netip.AddrPort {
	switch v := sa.(type) {
	case *unix.SockaddrInet4:
		return netip.AddrPortFrom(netip.AddrFrom4(v.Addr), uint16(v.Port))
	case *unix.SockaddrInet6:
		return netip.AddrPortFrom(netip.AddrFrom16(v.Addr), uint16(v.Port))
	}
	return netip.AddrPort{}
}

// send writes p with MSG_NOSIGNAL (a peer gone gives EPIPE, not a signal), without allocating.
//
// Neither call sleeps for long (the sender's sockets are non-blocking, a receiver's read finds
// data or gives up after readTimeout), so send and recv go through RawSyscall: a copy of 100 kB
// takes tens of microseconds, long enough for Go's sysmon to hand this thread's P to another
// thread during an ordinary Syscall and for the return to take it back — thread wake-ups that
// cost more CPU than the copy itself at tens of thousands of calls per second.
func send(fd int, p []byte, flags int) (int, error) {
	n, _, errno := unix.RawSyscall6(unix.SYS_SENDTO, uintptr(fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)),
		uintptr(flags|unix.MSG_NOSIGNAL), 0, 0)
	if errno != 0 {
		return 0, errno
	}
	return int(n), nil
}

// recv reads into p (see send for why RawSyscall); on a session's receiving side the socket
// blocks, bounded by readTimeout (see blockingReads).
func recv(fd int, p []byte) (int, error) {
	n, _, errno := unix.RawSyscall(unix.SYS_READ, uintptr(fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
	if errno != 0 {
		return 0, errno
	}
	return int(n), nil
}

// drainErrQueue reads MSG_ZEROCOPY completions off the socket's error queue.
func drainErrQueue(fd int, oob []byte) {
	for i := 0; i < 1024; i++ {
		_, _, _, _, err := unix.Recvmsg(fd, nil, oob, unix.MSG_ERRQUEUE|unix.MSG_DONTWAIT)
		if err != nil {
			return
		}
	}
}
