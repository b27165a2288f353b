//go:build linux

package tcpload

import (
	"fmt"
	"time"

	"golang.org/x/sys/unix"

	"github.com/pathcost/pathcost/pkg/result"
)

// startSending ends set-up: every connection of the session is up, so the warm-up begins and the
// sender starts writing (nobody writes during set-up, so set-up time is the path's, not a contest
// with the data). The receiver starts reading at once unless ReceiverDelay says otherwise.
//
// At saturation the seed's pair has two steady states, and each sustains itself: queues short
// (the reader keeps up, and reads data that is still in the CPU's cache) or queues full
// (hundreds of MB across 100 connections, every read finds a full buffer but copies data that
// has left the cache). Which one is cheaper depends on the machine: on an Intel Xeon sharing one
// CPU, full queues halved the throughput of the seed's C pair and of tcpload alike. By default
// neither side gets a head start and the kernel picks the state, as for the C pair; a receiver
// that starts late (ReceiverDelay) lets the sender fill every queue and so picks the full-queue
// state, for runs that must be alike (the e2e suite's).
func (e *engine) startSending() error {
	e.phase = phaseWarmup
	if !e.sending {
		if e.cfg.ReceiverDelay > 0 {
			from := time.Now()
			time.Sleep(e.cfg.ReceiverDelay)
			e.res.ReceiverWaited = time.Since(from)
		}
		return nil
	}
	if e.pace.on() {
		e.startPacing()
	}
	for _, fd := range e.fds {
		c := &e.conns[fd]
		if c.state != stActive {
			continue
		}
		if err := e.ctl(unix.EPOLL_CTL_MOD, fd, e.activeEvents(c)); err != nil {
			return err
		}
	}
	return nil
}

// peerEOF handles the peer ending its side of a connection.
func (e *engine) peerEOF(fd int, c *conn) error {
	c.peerEOF = true
	if e.role == result.RoleClient {
		if e.phase == phaseSetup {
			return fmt.Errorf("server %s closed a connection during set-up", e.res.Peer)
		}
		if e.phase != phaseEnding {
			return fmt.Errorf("server %s closed a connection %.1f s into the session, before the client ended it", e.res.Peer, time.Since(e.upAt).Seconds())
		}
		e.finish(fd, c)
		return nil
	}
	// server: the client ends the session by shutting down its write side.
	if e.phase == phaseSetup {
		return fmt.Errorf("client %s closed a connection during set-up", e.res.Peer)
	}
	if e.phase != phaseEnding {
		announced := e.cfg.Warmup + e.cfg.Duration
		elapsed := time.Since(e.upAt)
		if elapsed < announced-max(500*time.Millisecond, announced/10) {
			return fmt.Errorf("client %s closed a connection %.1f s into the session, before the announced %.1f s", e.res.Peer, elapsed.Seconds(), announced.Seconds())
		}
		e.endWindow()
		e.phase = phaseEnding
		if err := e.stopWriting(); err != nil {
			return err
		}
	}
	e.finish(fd, c)
	return nil
}

// stopWriting drops EPOLLOUT on every connection once the session is ending (the client has
// ended it: stop writing on every connection, not only the one whose EOF arrived first).
func (e *engine) stopWriting() error {
	for _, fd := range e.fds {
		if c := &e.conns[fd]; c.state == stActive && c.outOn {
			if err := e.ctl(unix.EPOLL_CTL_MOD, fd, e.activeEvents(c)); err != nil {
				return err
			}
		}
	}
	return nil
}

// collect fills the result's TCP figures and closes whatever is still open.
func (e *engine) collect() {
	var minRTT, maxRTT uint32
	for _, fd := range e.fds {
		c := &e.conns[fd]
		if c.state == stActive || c.state == stHandshake || c.state == stConnecting {
			if c.state == stActive {
				e.tcpInfo(fd, c)
			}
			e.closeConn(fd, c)
		}
		if !c.gotInfo {
			continue
		}
		e.res.Retransmits += uint64(c.retrans)
		if c.minRTT > 0 && (minRTT == 0 || c.minRTT < minRTT) {
			minRTT = c.minRTT
		}
		maxRTT = max(maxRTT, c.rtt)
	}
	e.res.MinRTT, e.res.MaxRTT = minRTT, maxRTT
	e.res.TotalBytes = e.total
}

// setupEvent handles what the set-up loops share: the wake-up eventfd, and events on connections
// that already joined the session. It returns the connection when it is still being set up.
func (e *engine) setupEvent(ev unix.EpollEvent) (int, *conn, error) {
	fd := int(ev.Fd)
	if fd == e.wake {
		e.handleWake()
		return fd, nil, nil
	}
	c := e.connOf(fd)
	if c == nil {
		return fd, nil, nil
	}
	if c.state == stActive {
		return fd, nil, e.transferEvent(fd, ev.Events)
	}
	return fd, c, nil
}

// joined records the addresses and socket figures of the session from the first connection that
// joined it (not from a health check that connected before it).
func (e *engine) joined(fd int) {
	if e.joinedOnce {
		return
	}
	e.joinedOnce = true
	if sa, err := unix.Getpeername(fd); err == nil {
		e.res.Peer = addrOf(sa).String()
	}
	if sa, err := unix.Getsockname(fd); err == nil {
		e.res.Local = addrOf(sa).String()
	}
	backlog, zc := e.res.Sockets.Backlog, e.res.Sockets.ZeroCopy
	e.res.Sockets = readSockets(fd, e.cfg.Options)
	e.res.Sockets.Backlog, e.res.Sockets.ZeroCopy = backlog, zc
}

// peerOf names the peer of fd for messages ("?" when it cannot be read).
func peerOf(fd int) string {
	sa, err := unix.Getpeername(fd)
	if err != nil {
		return "?"
	}
	return addrOf(sa).String()
}
