//go:build linux

package tcpload

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"golang.org/x/sys/unix"

	"github.com/pathcost/pathcost/pkg/result"
)

// resolve looks a "host:port" up (only at set-up, never in the loop).
func resolve(s string) (netip.AddrPort, error) {
	ta, err := net.ResolveTCPAddr("tcp", s)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("resolve %s: %w", s, err)
	}
	return ta.AddrPort(), nil
}

// RunClient opens cfg.Conns connections to addr in parallel, announces the session, moves data
// for the warm-up and the window, then ends the session cleanly (shutting down its write side and
// reading until the server's EOF on every connection). Cancelling ctx ends the window early; the
// result is marked Interrupted. The loop runs in one goroutine that never waits in the Go
// scheduler while it is busy (see runLoop).
func RunClient(ctx context.Context, addr string, cfg Config) *Result {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return &Result{Role: result.RoleClient, Err: err}
	}
	ap, err := parseAddr(addr)
	if err != nil {
		return &Result{Role: result.RoleClient, Err: err}
	}
	e, err := newEngine(cfg, result.RoleClient)
	if err != nil {
		return &Result{Role: result.RoleClient, Err: err}
	}
	e.res.Peer = ap.String()
	e.setDirection(cfg.Direction)
	stop := e.watchContext(ctx)
	runLoop(func() {
		e.res.Err = e.client(ap)
		e.collect()
	})
	stop()
	e.close()
	return e.res
}

func (e *engine) client(ap netip.AddrPort) error {
	if err := e.connectAll(ap); err != nil {
		return err
	}
	if e.stopReq {
		e.res.Interrupted = true
		return errors.New("interrupted during connection set-up")
	}
	if err := e.startSending(); err != nil {
		return err
	}
	if err := e.pump(time.Now().Add(e.cfg.Warmup), func() bool { return false }); err != nil {
		return err
	}
	if e.stopReq {
		e.res.Interrupted = true
		return errors.New("interrupted during warm-up, before the window opened")
	}
	e.openWindow()
	winEnd := e.win.from.Add(e.cfg.Duration)
	err := e.pump(winEnd, func() bool { return false })
	e.endWindow()
	if err != nil {
		return err
	}
	if e.stopReq {
		e.res.Interrupted = true
	}
	// End the session: shut our write side on every connection, read until the server's EOF.
	for _, fd := range e.fds {
		c := &e.conns[fd]
		if c.state != stActive {
			continue
		}
		e.tcpInfo(fd, c)
		unix.Shutdown(fd, unix.SHUT_WR)
		if c.outOn {
			if err := e.ctl(unix.EPOLL_CTL_MOD, fd, e.activeEvents(c)); err != nil {
				return err
			}
		}
	}
	drain := e.cfg.DrainTimeout
	if e.res.Interrupted {
		drain = min(drain, 2*time.Second)
	}
	if err := e.pump(time.Now().Add(drain), func() bool { return e.nActive == 0 }); err != nil {
		return err
	}
	if e.nActive > 0 {
		return fmt.Errorf("server %s did not end %d of %d connections within %s of the client's end", e.res.Peer, e.nActive, e.cfg.Conns, drain)
	}
	if e.res.Interrupted {
		return fmt.Errorf("interrupted %.1f s into the %s window", e.res.WindowSeconds, e.cfg.Duration)
	}
	return nil
}

// retryable reports connect errors worth retrying briefly (the server may be starting).
func retryable(err error) bool {
	return errors.Is(err, unix.ECONNREFUSED) || errors.Is(err, unix.ETIMEDOUT) ||
		errors.Is(err, unix.EHOSTUNREACH) || errors.Is(err, unix.ENETUNREACH) || errors.Is(err, unix.ECONNRESET)
}

// connectAll opens every connection with non-blocking connects in flight together; refused
// connections are retried with a short back-off until the set-up timeout.
func (e *engine) connectAll(ap netip.AddrPort) error {
	sa, family := sockaddr(ap)
	e.setupFrom = time.Now()
	e.res.Started = e.setupFrom
	deadline := e.setupFrom.Add(e.cfg.SetupTimeout)
	index := make(map[int]int, e.cfg.Conns) // fd -> connection index, for the header
	pending := make([]int, 0, e.cfg.Conns)
	for i := 0; i < e.cfg.Conns; i++ {
		pending = append(pending, i)
	}
	tries := 0
	var lastErr error
	backoff := 50 * time.Millisecond
	for {
		var retry []int
		// start every connection not up yet, all in flight together
		for _, i := range pending {
			fd, err := e.startConnect(sa, family)
			if err != nil {
				if retryable(err) {
					lastErr = err
					retry = append(retry, i)
					continue
				}
				return fmt.Errorf("connect %s: %w", ap, err)
			}
			index[fd] = i
		}
		tries++
		// wait for the connects in flight
		for e.inFlight(index) > 0 {
			if e.stopReq {
				return nil
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("connect %s: %d of %d connections not up after %s", ap, e.cfg.Conns-e.nActive, e.cfg.Conns, e.cfg.SetupTimeout)
			}
			n, err := e.poll(min(100*time.Millisecond, time.Until(deadline)))
			if err != nil {
				return err
			}
			for k := 0; k < n; k++ {
				fd, c, err := e.setupEvent(e.events[k])
				if err != nil {
					return err
				}
				if c == nil {
					continue
				}
				if c.state == stHandshake {
					err := e.readAck(fd, c)
					if errors.Is(err, errNoAck) {
						// a proxy in the path accepted, then lost its way to the server (not
						// listening yet?): connect this one again
						lastErr = err
						retry = append(retry, index[fd])
						delete(index, fd)
						e.untrack(fd)
						continue
					}
					if err != nil {
						return err
					}
					continue
				}
				if c.state != stConnecting {
					continue
				}
				soerr, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ERROR)
				if err == nil && soerr != 0 {
					err = unix.Errno(soerr)
				}
				if err != nil {
					if !retryable(err) {
						return fmt.Errorf("connect %s: %w", ap, err)
					}
					lastErr = err
					retry = append(retry, index[fd])
					delete(index, fd)
					e.untrack(fd)
					continue
				}
				if err := e.established(fd, c, index[fd]); err != nil {
					return err
				}
			}
		}
		if len(retry) == 0 {
			break
		}
		if time.Now().Add(backoff).After(deadline) {
			return fmt.Errorf("connect %s: %w (%d of %d connections failed; retried for %s, %d rounds)", ap, lastErr, len(retry), e.cfg.Conns, e.cfg.SetupTimeout, tries)
		}
		time.Sleep(backoff)
		backoff = min(2*backoff, time.Second)
		pending = retry
	}
	e.upAt = time.Now()
	e.res.SetupSeconds = e.upAt.Sub(e.setupFrom).Seconds()
	return nil
}

func (e *engine) inFlight(index map[int]int) int {
	n := 0
	for fd := range index {
		if st := e.conns[fd].state; st == stConnecting || st == stHandshake {
			n++
		}
	}
	return n
}

// startConnect creates a socket with the options set and starts a non-blocking connect.
func (e *engine) startConnect(sa unix.Sockaddr, family int) (int, error) {
	fd, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("socket: %w", err)
	}
	if err := applyOptions(fd, e.cfg.Options, e.cfg.Buffer); err != nil {
		unix.Close(fd)
		return -1, err
	}
	if err := e.zeroCopy(fd); err != nil {
		unix.Close(fd)
		return -1, err
	}
	err = unix.Connect(fd, sa)
	if err != nil && err != unix.EINPROGRESS {
		unix.Close(fd)
		return -1, fmt.Errorf("connect: %w", err)
	}
	e.track(fd, stConnecting)
	if err := e.ctl(unix.EPOLL_CTL_ADD, fd, unix.EPOLLOUT); err != nil {
		e.untrack(fd)
		return -1, err
	}
	return fd, nil
}

// zeroCopy enables MSG_ZEROCOPY on a sending socket when asked; unsupported is reported, not fatal.
func (e *engine) zeroCopy(fd int) error {
	if !e.cfg.Options.ZeroCopy || !e.sending {
		return nil
	}
	if e.res.Sockets.ZeroCopy != "" && e.res.Sockets.ZeroCopy != "on" {
		return nil // already known to be unsupported
	}
	if err := enableZeroCopy(fd); err != nil {
		e.res.Sockets.ZeroCopy = "unsupported: " + err.Error()
		return nil
	}
	e.res.Sockets.ZeroCopy = "on"
	e.flags |= unix.MSG_ZEROCOPY
	if e.oob == nil {
		e.oob = make([]byte, 256)
	}
	return nil
}

// established sends the header on a connected socket; the connection joins the session when
// the server's acknowledgement arrives (readAck): through a proxy, a local connect succeeds long
// before the path to the server exists.
func (e *engine) established(fd int, c *conn, idx int) error {
	h := header{Direction: e.cfg.Direction, Conns: e.cfg.Conns, Index: idx, Duration: e.cfg.Duration, Warmup: e.cfg.Warmup, Pace: e.cfg.Pace, ReceiverDelay: e.cfg.ReceiverDelay}
	b := h.encode()
	n, err := send(fd, b[:], 0)
	if err != nil || n != len(b) {
		if err == nil {
			err = fmt.Errorf("short write of %d bytes", n)
		}
		return fmt.Errorf("send header to %s: %w", e.res.Peer, err)
	}
	c.state = stHandshake
	return e.ctl(unix.EPOLL_CTL_MOD, fd, unix.EPOLLIN|unix.EPOLLRDHUP)
}

// errNoAck: the connection closed (or was reset) before any of the server's acknowledgement
// arrived; retried like a refused connect.
var errNoAck = errors.New("connection closed before the server acknowledged it (a proxy in the path that could not reach the server, or no tcpload server there)")

// readAck reads the server's acknowledgement and then starts moving data.
func (e *engine) readAck(fd int, c *conn) error {
	n, err := unix.Read(fd, c.hdr[c.hdrN:ackLen])
	if err == unix.EAGAIN || err == unix.EINTR {
		return nil
	}
	if c.hdrN == 0 && (n == 0 && err == nil || errors.Is(err, unix.ECONNRESET)) {
		return errNoAck
	}
	if err != nil {
		return fmt.Errorf("connect %s: waiting for the server's acknowledgement: %w", e.res.Peer, err)
	}
	if n == 0 {
		return fmt.Errorf("connect %s: the connection closed in the middle of the server's acknowledgement", e.res.Peer)
	}
	c.hdrN += n
	if c.hdrN < ackLen {
		return nil
	}
	if [ackLen]byte(c.hdr[:ackLen]) != ack {
		return fmt.Errorf("connect %s: the peer answered %q, not a tcpload acknowledgement", e.res.Peer, c.hdr[:ackLen])
	}
	e.joined(fd)
	return e.activate(fd, c)
}
