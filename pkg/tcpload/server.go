//go:build linux

package tcpload

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/pathcost/pathcost/pkg/result"
)

// Server is a listening socket that serves one session.
type Server struct {
	cfg  Config
	e    *engine
	addr netip.AddrPort
}

// Listen binds addr ("IP:port"; port 0 picks a free one) with a backlog large enough for the
// whole session, so connects never wait behind SYN retries as with the seed's backlog of 5.
// The cfg's Conns, Direction, Duration, Warmup and Pace are ignored: the client announces them.
func Listen(addr string, cfg Config) (*Server, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	ap, err := parseAddr(addr)
	if err != nil {
		return nil, err
	}
	e, err := newEngine(cfg, result.RoleServer)
	if err != nil {
		return nil, err
	}
	sa, family := sockaddr(ap)
	fd, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		e.close()
		return nil, fmt.Errorf("listen %s: socket: %w", ap, err)
	}
	e.lfd = fd
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); err != nil {
		e.close()
		return nil, fmt.Errorf("listen %s: SO_REUSEADDR: %w", ap, err)
	}
	// buffer sizes set on the listener are inherited by accepted sockets before the handshake,
	// so the window scale matches them
	if err := applyOptions(fd, cfg.Options, cfg.Buffer); err != nil {
		e.close()
		return nil, fmt.Errorf("listen %s: %w", ap, err)
	}
	if err := unix.Bind(fd, sa); err != nil {
		e.close()
		return nil, fmt.Errorf("listen %s: bind: %w", ap, err)
	}
	if err := unix.Listen(fd, cfg.Backlog); err != nil {
		e.close()
		return nil, fmt.Errorf("listen %s: %w", ap, err)
	}
	if err := e.ctl(unix.EPOLL_CTL_ADD, fd, unix.EPOLLIN); err != nil {
		e.close()
		return nil, err
	}
	bound, err := unix.Getsockname(fd)
	if err != nil {
		e.close()
		return nil, fmt.Errorf("listen %s: getsockname: %w", ap, err)
	}
	e.res.Sockets.Backlog = cfg.Backlog
	e.res.Local = addrOf(bound).String()
	return &Server{cfg: cfg, e: e, addr: addrOf(bound)}, nil
}

// Addr is the bound address (with the port picked when 0 was asked for).
func (s *Server) Addr() netip.AddrPort { return s.addr }

// Close releases the listener and the buffer if Serve was never called; it must not be called
// while Serve runs (Serve releases them itself), and after Serve it does nothing.
func (s *Server) Close() { s.e.close() }

// Serve waits for one session (cfg.AcceptTimeout for its first connection, cfg.SetupTimeout
// for the rest), moves data until the client ends the session, and returns what it measured.
// Cancelling ctx ends the session early (the result is marked Interrupted). Serve closes the
// listener; a Server serves one session.
func (s *Server) Serve(ctx context.Context) *Result {
	e := s.e
	stop := e.watchContext(ctx)
	runLoop(func() {
		e.res.Err = e.serve()
		e.collect()
	})
	stop()
	e.close()
	return e.res
}

func (e *engine) serve() error {
	if err := e.acceptAll(); err != nil {
		return err
	}
	if e.stopReq {
		e.res.Interrupted = true
		return errors.New("interrupted while waiting for the session's connections")
	}
	if err := e.startSending(); err != nil {
		return err
	}
	if err := e.pump(e.upAt.Add(e.cfg.Warmup), func() bool { return e.phase != phaseWarmup }); err != nil {
		return err
	}
	if e.stopReq {
		e.res.Interrupted = true
		return errors.New("interrupted during warm-up, before the window opened")
	}
	if e.phase == phaseWarmup {
		e.openWindow()
		// the window closes at the client's first EOF (peerEOF), or on a stop request; a client
		// that vanished without FIN or RST (a lost node, a proxy holding on) is given up on
		announced := e.cfg.Warmup + e.cfg.Duration
		grace := max(5*time.Second, announced/2)
		if err := e.pump(e.upAt.Add(announced+grace), func() bool { return e.phase != phaseWindow }); err != nil {
			e.endWindow()
			return err
		}
		if e.phase == phaseWindow && !e.stopReq {
			e.endWindow()
			return fmt.Errorf("client %s did not end the session within %s of its announced %s (no FIN, no RST: is it still there?)", e.res.Peer, grace, announced)
		}
	}
	if e.stopReq {
		e.res.Interrupted = true
		e.endWindow()
		for _, fd := range e.fds {
			if c := &e.conns[fd]; c.state == stActive {
				e.finish(fd, c)
			}
		}
		return fmt.Errorf("interrupted %.1f s into the window", e.res.WindowSeconds)
	}
	if err := e.pump(time.Now().Add(e.cfg.DrainTimeout), func() bool { return e.nActive == 0 }); err != nil {
		return err
	}
	if e.nActive > 0 {
		return fmt.Errorf("client %s did not end %d of %d connections within %s of ending the first", e.res.Peer, e.nActive, e.cfg.Conns, e.cfg.DrainTimeout)
	}
	return nil
}

// acceptAll accepts connections and reads their headers until the announced session is complete.
func (e *engine) acceptAll() error {
	var deadline time.Time
	if e.cfg.AcceptTimeout > 0 {
		deadline = time.Now().Add(e.cfg.AcceptTimeout)
	}
	want := 0   // announced by the first header
	joined := 0 // connections whose header arrived
	for want == 0 || joined < want {
		if e.stopReq {
			return nil
		}
		wait := 500 * time.Millisecond
		if !deadline.IsZero() {
			left := time.Until(deadline)
			if left <= 0 {
				if want == 0 && len(e.fds) > 0 {
					return fmt.Errorf("a client connected from %s but sent no complete tcpload header within %s", e.lastPeer, e.cfg.SetupTimeout)
				}
				if want == 0 {
					return fmt.Errorf("no client connected to %s within %s", e.res.Local, e.cfg.AcceptTimeout)
				}
				return fmt.Errorf("only %d of the %d connections the client announced arrived at %s within %s (%d accepted, %d closed again)", joined, want, e.res.Local, e.cfg.SetupTimeout, len(e.fds), e.nDone)
			}
			wait = min(wait, left)
		}
		n, err := e.poll(wait)
		if err != nil {
			return err
		}
		for k := 0; k < n; k++ {
			fd := int(e.events[k].Fd)
			switch {
			case fd == e.lfd:
				if err := e.accept(); err != nil {
					return err
				}
				if e.setupFrom.IsZero() && len(e.fds) > 0 {
					e.setupFrom = time.Now()
					e.res.Started = e.setupFrom
					deadline = e.setupFrom.Add(e.cfg.SetupTimeout)
				}
			default:
				_, c, err := e.setupEvent(e.events[k])
				if err != nil {
					return err
				}
				if c == nil || c.state != stHandshake {
					continue
				}
				h, done, err := e.readHeader(fd, c)
				if errors.Is(err, errClosedEarly) {
					e.untrack(fd) // a health check or port scan: not part of the session
					continue
				}
				if err != nil {
					return err
				}
				if !done {
					continue
				}
				e.joined(fd)
				if want == 0 {
					want = h.Conns
					if len(e.events) < want+2 {
						e.events = make([]unix.EpollEvent, want+2)
					}
					e.cfg.Conns, e.cfg.Duration, e.cfg.Warmup, e.cfg.Pace, e.cfg.ReceiverDelay = h.Conns, h.Duration, h.Warmup, h.Pace, h.ReceiverDelay
					e.res.Conns = h.Conns
					if h.Pace.MsgBytes > len(e.buf) {
						b, err := newBuffer(h.Pace.MsgBytes)
						if err != nil {
							return fmt.Errorf("client %s announced %d-byte messages: %w", e.res.Peer, h.Pace.MsgBytes, err)
						}
						freeBuffer(e.buf)
						e.buf = b
					}
					e.setDirection(h.Direction)
					if e.sending && e.cfg.Options.ZeroCopy {
						for _, f := range e.fds {
							if err := e.zeroCopy(f); err != nil {
								return err
							}
						}
					}
				} else if h.Conns != want || h.Direction != e.cfg.Direction || h.Pace != e.cfg.Pace {
					return fmt.Errorf("client %s announced %d connections (%s, pacing %+v) on one connection and %d (%s, pacing %+v) on another", e.res.Peer, want, e.cfg.Direction, e.cfg.Pace, h.Conns, h.Direction, h.Pace)
				}
				joined++
				if n, err := send(fd, ack[:], 0); err != nil || n != ackLen {
					return fmt.Errorf("acknowledge connection from %s: %d bytes sent: %v", e.res.Peer, n, err)
				}
				if err := e.activate(fd, c); err != nil {
					return err
				}
			}
		}
	}
	// the session is complete: no more connections; drop any that never joined it
	unix.EpollCtl(e.ep, unix.EPOLL_CTL_DEL, e.lfd, nil)
	unix.Close(e.lfd)
	e.lfd = -1
	for _, fd := range slices.Clone(e.fds) {
		if e.conns[fd].state != stActive {
			e.untrack(fd)
		}
	}
	e.upAt = time.Now()
	e.res.SetupSeconds = e.upAt.Sub(e.setupFrom).Seconds()
	return nil
}

// accept takes every pending connection off the listener.
func (e *engine) accept() error {
	for {
		fd, sa, err := unix.Accept4(e.lfd, unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
		if err == unix.EAGAIN || err == unix.EINTR || err == unix.ECONNABORTED {
			return nil
		}
		if err != nil {
			return fmt.Errorf("accept on %s: %w", e.res.Local, err)
		}
		e.lastPeer = addrOf(sa).String()
		if err := applyOptions(fd, Options{NoDelay: e.cfg.Options.NoDelay, Congestion: e.cfg.Options.Congestion, NotSentLowat: e.cfg.Options.NotSentLowat}, e.cfg.Buffer); err != nil {
			unix.Close(fd)
			return err
		}
		if e.sending {
			if err := e.zeroCopy(fd); err != nil {
				unix.Close(fd)
				return err
			}
		}
		e.track(fd, stHandshake)
		if err := e.ctl(unix.EPOLL_CTL_ADD, fd, unix.EPOLLIN|unix.EPOLLRDHUP); err != nil {
			e.untrack(fd)
			return err
		}
	}
}

// errClosedEarly: a connection closed or was reset before its header was complete.
var errClosedEarly = errors.New("connection closed before its header was complete")

// readHeader reads what has arrived of a connection's header.
func (e *engine) readHeader(fd int, c *conn) (header, bool, error) {
	n, err := unix.Read(fd, c.hdr[c.hdrN:])
	if err == unix.EAGAIN || err == unix.EINTR {
		return header{}, false, nil
	}
	if n == 0 && err == nil || errors.Is(err, unix.ECONNRESET) {
		// closed or reset (health checks of HAProxy and load balancers reset)
		return header{}, false, errClosedEarly
	}
	if err != nil {
		return header{}, false, fmt.Errorf("read header from %s: %w", peerOf(fd), err)
	}
	c.hdrN += n
	if c.hdrN >= 4 && c.hdrN < headerLen {
		var probe [headerLen]byte
		copy(probe[:], c.hdr[:4])
		if _, err := decodeHeader(probe[:]); err != nil && strings.Contains(err.Error(), "magic") {
			return header{}, false, fmt.Errorf("connection from %s: %w", peerOf(fd), err)
		}
	}
	if c.hdrN < headerLen {
		return header{}, false, nil
	}
	h, err := decodeHeader(c.hdr[:])
	if err != nil {
		return h, false, fmt.Errorf("connection from %s: %w", peerOf(fd), err)
	}
	return h, true, nil
}
