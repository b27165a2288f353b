//go:build linux

package tcpload

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

type connState uint8

const (
	stFree       connState = iota
	stConnecting           // client: non-blocking connect in flight
	stHandshake            // server: reading the client's header; client: waiting for the ack
	stActive               // part of the session, moving data
	stDone                 // closed
)

// conn is the state of one connection, kept in a slice indexed by fd (never referenced from
// epoll events, which carry only the fd).
type conn struct {
	state    connState
	peerEOF  bool
	outOn    bool // EPOLLOUT interest currently on
	hdrN     int
	hdr      [headerLen]byte
	bytes    uint64
	winStart uint64
	winEnd   uint64
	pending  int    // paced sender: bytes left of the current chunk
	due      int64  // paced sender: when the next chunk is due (ns since the engine started)
	retrans  uint32 // TCP_INFO total_retrans when the connection ended (gotInfo)
	// retransAtOpen is total_retrans when the window opened (openedInfo): the window's
	// retransmissions are the difference at its end.
	retransAtOpen uint32
	openedInfo    bool
	minRTT        uint32
	rtt           uint32
	gotInfo       bool
}

func (e *engine) connOf(fd int) *conn {
	if fd < 0 || fd >= len(e.conns) {
		return nil
	}
	return &e.conns[fd]
}

func (e *engine) track(fd int, st connState) *conn {
	if fd >= len(e.conns) {
		n := make([]conn, max(fd+1, 2*len(e.conns), 64))
		copy(n, e.conns)
		e.conns = n
	}
	e.conns[fd] = conn{state: st}
	e.fds = append(e.fds, fd)
	return &e.conns[fd]
}

// activeEvents is the interest set of an active connection: EPOLLIN (data, or the peer's EOF)
// always, and EPOLLOUT while this side may write on it.
func (e *engine) activeEvents(c *conn) uint32 {
	ev := uint32(unix.EPOLLIN | unix.EPOLLRDHUP)
	if e.sending && !c.peerEOF && (!e.pace.on() || c.pending > 0) && e.phase.writing() {
		ev |= unix.EPOLLOUT
		c.outOn = true
	} else {
		c.outOn = false
	}
	return ev
}

// activate makes a connection part of the session (during set-up: its pacing starts with
// startSending). On the receiving side its reads block from now on (see blockingReads).
func (e *engine) activate(fd int, c *conn) error {
	c.state = stActive
	e.nActive++
	if !e.sending {
		if err := blockingReads(fd); err != nil {
			return fmt.Errorf("connection fd %d to %s: %w", fd, e.res.Peer, err)
		}
	}
	return e.ctl(unix.EPOLL_CTL_MOD, fd, e.activeEvents(c))
}

// finish reads TCP_INFO, shuts down our side and closes a connection that ended cleanly.
func (e *engine) finish(fd int, c *conn) {
	e.tcpInfo(fd, c)
	unix.Shutdown(fd, unix.SHUT_WR)
	e.closeConn(fd, c)
}

// untrack closes a connection that never joined the session (a failed connect, a health check).
func (e *engine) untrack(fd int) {
	unix.EpollCtl(e.ep, unix.EPOLL_CTL_DEL, fd, nil)
	unix.Close(fd)
	e.conns[fd] = conn{}
	for i, f := range e.fds {
		if f == fd {
			e.fds = append(e.fds[:i], e.fds[i+1:]...)
			break
		}
	}
}

func (e *engine) closeConn(fd int, c *conn) {
	if c.state == stDone || c.state == stFree {
		return
	}
	if c.state == stActive {
		e.nActive--
	}
	unix.EpollCtl(e.ep, unix.EPOLL_CTL_DEL, fd, nil)
	unix.Close(fd)
	c.state = stDone
	e.nDone++
}

// retransNow returns the connection's TCP_INFO total_retrans now: read from the socket while it
// is open, or as read when it ended.
func (e *engine) retransNow(fd int, c *conn) (uint32, bool) {
	if c.state == stActive {
		ti, err := unix.GetsockoptTCPInfo(fd, unix.IPPROTO_TCP, unix.TCP_INFO)
		if err != nil {
			return 0, false
		}
		return ti.Total_retrans, true
	}
	return c.retrans, c.gotInfo
}

func (e *engine) tcpInfo(fd int, c *conn) {
	if c.gotInfo {
		return
	}
	if ti, err := unix.GetsockoptTCPInfo(fd, unix.IPPROTO_TCP, unix.TCP_INFO); err == nil {
		c.retrans, c.minRTT, c.rtt, c.gotInfo = ti.Total_retrans, ti.Min_rtt, ti.Rtt, true
	}
}

func (e *engine) connErr(fd int, op string, err error) error {
	what := "connection"
	if errors.Is(err, unix.ECONNRESET) || errors.Is(err, unix.EPIPE) {
		what = "peer went away on connection"
	}
	return fmt.Errorf("%s fd %d to %s: %s: %w", what, fd, e.res.Peer, op, err)
}
