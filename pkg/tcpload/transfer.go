//go:build linux

package tcpload

import (
	"golang.org/x/sys/unix"
)

// transferEvent moves data on an active connection: one read of the buffer when it is readable,
// one write when it is writable (the seed's loop); it returns an error that ends the session.
func (e *engine) transferEvent(fd int, ev uint32) error {
	c := e.connOf(fd)
	if c == nil || c.state != stActive {
		return nil
	}
	if ev&unix.EPOLLERR != 0 && e.flags&unix.MSG_ZEROCOPY != 0 {
		drainErrQueue(fd, e.oob)
		if soerr, _ := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ERROR); soerr != 0 {
			return e.connErr(fd, "socket error", unix.Errno(soerr))
		}
	}
	if ev&(unix.EPOLLIN|unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
		n, err := recv(fd, e.buf)
		switch {
		case n > 0:
			c.bytes += uint64(n)
			e.total += uint64(n)
			e.burn.moved(n)
		case n == 0 && err == nil:
			return e.peerEOF(fd, c)
		case err == unix.EAGAIN || err == unix.EINTR:
		default:
			return e.connErr(fd, "read", err)
		}
	}
	if ev&unix.EPOLLOUT != 0 && c.state == stActive && e.sending && !c.peerEOF && e.phase.writing() {
		return e.sendOn(fd, c)
	}
	return nil
}

// sendOn writes once: unpaced, a whole buffer (like the seed); paced, what the pacing allows of
// it. A paced connection wants EPOLLOUT exactly while it has allowed bytes left to write.
func (e *engine) sendOn(fd int, c *conn) error {
	want := len(e.buf)
	paced := e.pace.on()
	if paced {
		if c.pending == 0 {
			return nil
		}
		want = min(c.pending, want)
	}
	n, err := send(fd, e.buf[:want], e.flags)
	switch {
	case err == nil:
		c.bytes += uint64(n)
		e.total += uint64(n)
		e.burn.moved(n)
		if paced {
			c.pending -= n
			if c.pending == 0 {
				e.pace.nextDue = 0 // its next chunk may already be due
			}
		}
	case err == unix.EAGAIN || err == unix.EINTR:
	case err == unix.ENOBUFS && e.flags&unix.MSG_ZEROCOPY != 0:
		drainErrQueue(fd, e.oob)
	default:
		return e.connErr(fd, "write", err)
	}
	if paced && (c.pending > 0) != c.outOn {
		return e.ctl(unix.EPOLL_CTL_MOD, fd, e.activeEvents(c))
	}
	return nil
}
