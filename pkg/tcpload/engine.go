package tcpload

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"runtime"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/pathcost/pathcost/pkg/result"
)

// Result is what one side measured in one session.
type Result struct {
	Role      string // result.RoleServer or result.RoleClient
	Direction Direction
	Sending   bool
	Peer      string // the other side's address
	Local     string // this side's address (the first connection's)
	Conns     int
	Buffer    int  // application buffer per read()/write()
	Pace      Pace // the pacing applied by the sender
	// SetupSeconds runs from the first connection attempt (client) or accepted connection
	// (server) until every connection of the session is up.
	SetupSeconds  float64
	WindowSeconds float64
	WindowBytes   uint64 // application bytes moved inside the window
	TotalBytes    uint64 // application bytes moved in the whole session
	Intervals     []Interval
	PerConnMin    uint64 // window bytes of the slowest connection
	PerConnMax    uint64 // window bytes of the fastest connection
	Retransmits   uint64 // sum of TCP_INFO total_retrans over the connections
	MinRTT        uint32 // smallest TCP_INFO min_rtt (µs)
	MaxRTT        uint32 // largest TCP_INFO rtt (µs)
	Sockets       result.Sockets
	// Interrupted is set when the context was cancelled (e.g. SIGINT) before the end.
	Interrupted bool
	// Err is set when the session failed; the other fields hold what was measured until then.
	Err error
	// Started is when the session started: the client's first connection attempt, the
	// server's first accepted connection (zero when it never started).
	Started time.Time
}

// Mbps is the window's application throughput.
func (r *Result) Mbps() float64 {
	if r.WindowSeconds <= 0 {
		return 0
	}
	return float64(r.WindowBytes) * 8 / r.WindowSeconds / 1e6
}

type connState uint8

const (
	stFree       connState = iota
	stConnecting           // client: non-blocking connect in flight
	stHandshake            // server: reading the client's header
	stActive               // moving data
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
	pending  int   // paced sender: bytes left of the current chunk
	due      int64 // paced sender: when the next chunk is due (ns since engine start)
	retrans  uint32
	minRTT   uint32
	rtt      uint32
	gotInfo  bool
}

// phases of a session
const (
	phSetup = iota
	phWarmup
	phWindow
	phEnding
)

type engine struct {
	cfg     Config
	role    string
	sending bool
	ep      int
	wake    int
	lfd     int // server's listener (-1 when none)
	conns   []conn
	fds     []int // fds of the session's connections
	nActive int
	nDone   int
	events  []unix.EpollEvent
	buf     []byte
	oob     []byte
	flags   int // send flags

	base      time.Time
	phase     int
	total     uint64
	stopReq   bool
	setupFrom time.Time
	upAt      time.Time
	winFrom   time.Time
	ivFrom    time.Time
	ivBytes   uint64
	nextEdge  time.Time
	res       *Result
	// paced sending
	chunk   int
	period  int64
	nextDue int64
}

func newEngine(cfg Config, role string) (*engine, error) {
	e := &engine{cfg: cfg, role: role, lfd: -1, ep: -1, wake: -1, base: time.Now()}
	e.res = &Result{Role: role, Direction: cfg.Direction, Conns: cfg.Conns, Buffer: cfg.Buffer}
	var err error
	if e.ep, err = unix.EpollCreate1(unix.EPOLL_CLOEXEC); err != nil {
		return nil, fmt.Errorf("epoll_create1: %w", err)
	}
	if e.wake, err = unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC); err != nil {
		unix.Close(e.ep)
		return nil, fmt.Errorf("eventfd: %w", err)
	}
	if err := e.ctl(unix.EPOLL_CTL_ADD, e.wake, unix.EPOLLIN); err != nil {
		e.close()
		return nil, err
	}
	e.buf = make([]byte, cfg.Buffer)
	for i := range e.buf {
		e.buf[i] = byte(i)
	}
	e.events = make([]unix.EpollEvent, min(cfg.Conns+2, 1024))
	return e, nil
}

// setDirection fixes who writes; called once the direction is known.
func (e *engine) setDirection(d Direction) {
	e.cfg.Direction = d
	e.res.Direction = d
	e.sending = (d == ServerPush) == (e.role == result.RoleServer)
	e.res.Sending = e.sending
	e.res.Pace = e.cfg.Pace
	if e.sending && e.cfg.Pace.Enabled() {
		c, p := e.cfg.Pace.chunk(e.cfg.Buffer)
		e.chunk, e.period = c, int64(p)
	}
}

func (e *engine) now() int64 { return int64(time.Since(e.base)) }

func (e *engine) ctl(op, fd int, events uint32) error {
	ev := unix.EpollEvent{Events: events, Fd: int32(fd)}
	if err := unix.EpollCtl(e.ep, op, fd, &ev); err != nil {
		return fmt.Errorf("epoll_ctl fd %d: %w", fd, err)
	}
	return nil
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

// activeEvents is the interest set of an active connection.
func (e *engine) activeEvents(c *conn) uint32 {
	ev := uint32(unix.EPOLLIN | unix.EPOLLRDHUP)
	if e.sending && !c.peerEOF && (e.chunk == 0 || c.pending > 0) && e.phase != phEnding && e.phase != phSetup {
		ev |= unix.EPOLLOUT
		c.outOn = true
	} else {
		c.outOn = false
	}
	return ev
}

// startSending ends set-up: every connection of the session is up, so the sender starts writing
// (nobody writes during set-up, so set-up time is the path's, not a contest with the data).
func (e *engine) startSending() error {
	e.phase = phWarmup
	if !e.sending {
		return nil
	}
	now := e.now()
	for _, fd := range e.fds {
		c := &e.conns[fd]
		if c.state != stActive {
			continue
		}
		c.due = now
		if err := e.ctl(unix.EPOLL_CTL_MOD, fd, e.activeEvents(c)); err != nil {
			return err
		}
	}
	e.nextDue = 0
	return nil
}

// activate makes a connection part of the session (during set-up: its pacing starts with
// startSending).
func (e *engine) activate(fd int, c *conn) error {
	c.state = stActive
	e.nActive++
	return e.ctl(unix.EPOLL_CTL_MOD, fd, e.activeEvents(c))
}

// poll waits for events (EINTR is retried) for at most d.
func (e *engine) poll(d time.Duration) (int, error) {
	ms := int(d / time.Millisecond)
	if d > 0 && ms == 0 {
		ms = 1
	}
	if d < 0 {
		ms = 0
	}
	// A saturated loop nearly always finds events ready: ask without blocking first, through
	// RawSyscall, which skips the Go scheduler's syscall bookkeeping (a blocking syscall makes
	// the runtime hand this thread's P to another thread and take it back: measurable CPU at
	// tens of thousands of calls per second). Only when nothing is ready, block the usual way.
	if n, _, errno := unix.RawSyscall6(unix.SYS_EPOLL_PWAIT, uintptr(e.ep), uintptr(unsafe.Pointer(&e.events[0])),
		uintptr(len(e.events)), 0, 0, 0); errno == 0 && n > 0 {
		return int(n), nil
	}
	if ms == 0 {
		return 0, nil
	}
	for {
		n, err := unix.EpollWait(e.ep, e.events, ms)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return 0, fmt.Errorf("epoll_wait: %w", err)
		}
		return n, nil
	}
}

// watchContext wakes the loop through the eventfd when ctx ends; the returned func stops it.
func (e *engine) watchContext(ctx context.Context) func() {
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		select {
		case <-ctx.Done():
			var one = [8]byte{1}
			unix.Write(e.wake, one[:])
		case <-stop:
		}
	}()
	return func() { close(stop); <-done }
}

// handleWake consumes the eventfd and records the stop request.
func (e *engine) handleWake() {
	var b [8]byte
	unix.Read(e.wake, b[:])
	e.stopReq = true
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

// transferEvent moves data on an active connection; it returns an error that ends the session.
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
		case n == 0 && err == nil:
			return e.peerEOF(fd, c)
		case err == unix.EAGAIN || err == unix.EINTR:
		default:
			return e.connErr(fd, "read", err)
		}
	}
	if ev&unix.EPOLLOUT != 0 && c.state == stActive && e.sending && !c.peerEOF && e.phase != phEnding {
		return e.sendOn(fd, c)
	}
	return nil
}

// sendOn writes once: unpaced, a whole buffer (like the seed); paced, what the pacing allows of
// it. A paced connection wants EPOLLOUT exactly while it has allowed bytes left to write.
func (e *engine) sendOn(fd int, c *conn) error {
	want := len(e.buf)
	if e.chunk > 0 {
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
		if e.chunk > 0 {
			c.pending -= n
			if c.pending == 0 {
				e.nextDue = 0 // its next chunk may already be due
			}
		}
	case err == unix.EAGAIN || err == unix.EINTR:
	case err == unix.ENOBUFS && e.flags&unix.MSG_ZEROCOPY != 0:
		drainErrQueue(fd, e.oob)
	default:
		return e.connErr(fd, "write", err)
	}
	if e.chunk > 0 && (c.pending > 0) != c.outOn {
		return e.ctl(unix.EPOLL_CTL_MOD, fd, e.activeEvents(c))
	}
	return nil
}

// paceTick allows the chunks that are due on every connection and writes what it can at once (the
// rest goes out on EPOLLOUT); it returns the time until the next chunk is due on a connection
// that has nothing left to write.
func (e *engine) paceTick() (time.Duration, error) {
	now := e.now()
	if e.nextDue != 0 && now < e.nextDue {
		return time.Duration(e.nextDue - now), nil
	}
	maxPending := max(e.chunk, int(float64(e.chunk)*float64(time.Second)/float64(e.period))) // one second's worth
	next := int64(-1)
	for _, fd := range e.fds {
		c := &e.conns[fd]
		if c.state != stActive || c.peerEOF {
			continue
		}
		if c.due < now-int64(time.Second) { // bounded catch-up after a stall
			c.due = now
		}
		for i := 0; now >= c.due && i < 1000; i++ {
			c.pending = min(c.pending+e.chunk, maxPending)
			c.due += e.period
		}
		if c.pending > 0 {
			if err := e.sendOn(fd, c); err != nil {
				return 0, err
			}
		}
		if c.pending == 0 && (next < 0 || c.due < next) {
			next = c.due
		}
	}
	if next < 0 {
		e.nextDue = now + int64(e.cfg.Interval)
	} else {
		e.nextDue = max(next, now+1)
	}
	return time.Duration(e.nextDue - now), nil
}

// peerEOF handles the peer ending its side of a connection.
func (e *engine) peerEOF(fd int, c *conn) error {
	c.peerEOF = true
	if e.role == result.RoleClient {
		if e.phase == phSetup {
			return fmt.Errorf("server %s closed a connection during set-up", e.res.Peer)
		}
		if e.phase != phEnding {
			return fmt.Errorf("server %s closed a connection %.1f s into the session, before the client ended it", e.res.Peer, time.Since(e.upAt).Seconds())
		}
		e.finish(fd, c)
		return nil
	}
	// server: the client ends the session by shutting down its write side.
	if e.phase == phSetup {
		return fmt.Errorf("client %s closed a connection during set-up", e.res.Peer)
	}
	if e.phase != phEnding {
		announced := e.cfg.Warmup + e.cfg.Duration
		elapsed := time.Since(e.upAt)
		if elapsed < announced-max(500*time.Millisecond, announced/10) {
			return fmt.Errorf("client %s closed a connection %.1f s into the session, before the announced %.1f s", e.res.Peer, elapsed.Seconds(), announced.Seconds())
		}
		e.endWindow()
		e.phase = phEnding
		// the client has ended the session: stop writing on every connection, not only this one
		for _, f := range e.fds {
			if o := &e.conns[f]; o.state == stActive && o.outOn {
				if err := e.ctl(unix.EPOLL_CTL_MOD, f, e.activeEvents(o)); err != nil {
					return err
				}
			}
		}
	}
	e.finish(fd, c)
	return nil
}

// finish reads TCP_INFO, shuts down our side and closes a connection that ended cleanly.
func (e *engine) finish(fd int, c *conn) {
	e.tcpInfo(fd, c)
	unix.Shutdown(fd, unix.SHUT_WR)
	e.closeConn(fd, c)
}

// untrack closes a connection that never joined the session (a failed connect).
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

// openWindow starts measuring.
func (e *engine) openWindow() {
	now := time.Now()
	e.phase = phWindow
	e.winFrom, e.ivFrom, e.ivBytes = now, now, e.total
	e.nextEdge = now.Add(e.cfg.Interval)
	for _, fd := range e.fds {
		e.conns[fd].winStart = e.conns[fd].bytes
	}
	if e.cfg.Probe != nil {
		e.cfg.Probe.WindowStart(now)
	}
}

// edge closes an interval at now.
func (e *engine) edge(now time.Time) {
	iv := Interval{
		Start: e.ivFrom.Sub(e.winFrom).Seconds(),
		End:   now.Sub(e.winFrom).Seconds(),
		Bytes: e.total - e.ivBytes,
	}
	if d := now.Sub(e.ivFrom).Seconds(); d > 0 {
		iv.Mbps = float64(iv.Bytes) * 8 / d / 1e6
	}
	if e.cfg.Probe != nil {
		iv.Cores = e.cfg.Probe.IntervalEnd(now)
	}
	e.res.Intervals = append(e.res.Intervals, iv)
	if e.cfg.Progress != nil {
		e.cfg.Progress(iv)
	}
	e.ivFrom, e.ivBytes = now, e.total
	e.nextEdge = e.nextEdge.Add(e.cfg.Interval)
}

// endWindow stops measuring (once).
func (e *engine) endWindow() {
	if e.phase != phWindow {
		return
	}
	now := time.Now()
	// a last partial interval is reported when it is at least a tenth of an interval long
	if now.Sub(e.ivFrom) >= e.cfg.Interval/10 {
		e.edge(now)
	}
	e.res.WindowSeconds = now.Sub(e.winFrom).Seconds()
	for _, fd := range e.fds {
		c := &e.conns[fd]
		c.winEnd = c.bytes
	}
	var sum uint64
	first := true
	for _, fd := range e.fds {
		c := &e.conns[fd]
		if c.state != stActive && c.state != stDone {
			continue // never joined the session
		}
		b := c.winEnd - c.winStart
		sum += b
		if first || b > e.res.PerConnMax {
			e.res.PerConnMax = b
		}
		if first || b < e.res.PerConnMin {
			e.res.PerConnMin = b
		}
		first = false
	}
	e.res.WindowBytes = sum
	if e.cfg.Probe != nil {
		e.cfg.Probe.WindowEnd(now)
	}
	e.phase = phEnding
}

// pump runs the transfer until the phase's deadline, a stop request, the session's end, or an
// error; deadline zero means none.
func (e *engine) pump(deadline time.Time, until func() bool) error {
	for !until() {
		if e.stopReq && e.phase != phEnding { // the clean end is bounded by its own deadline
			return nil
		}
		now := time.Now()
		if e.phase == phWindow && !now.Before(e.nextEdge) {
			e.edge(now)
			continue
		}
		if !deadline.IsZero() && !now.Before(deadline) {
			return nil
		}
		wait := 500 * time.Millisecond
		if !deadline.IsZero() {
			wait = min(wait, deadline.Sub(now))
		}
		if e.phase == phWindow {
			wait = min(wait, e.nextEdge.Sub(now))
		}
		if e.chunk > 0 && e.phase != phEnding {
			d, err := e.paceTick()
			if err != nil {
				return err
			}
			wait = min(wait, d)
		}
		n, err := e.poll(wait)
		if err != nil {
			return err
		}
		for i := 0; i < n; i++ {
			fd := int(e.events[i].Fd)
			if fd == e.wake {
				e.handleWake()
				continue
			}
			if err := e.transferEvent(fd, e.events[i].Events); err != nil {
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

func (e *engine) close() {
	if e.lfd >= 0 {
		unix.Close(e.lfd)
		e.lfd = -1
	}
	if e.wake >= 0 {
		unix.Close(e.wake)
		e.wake = -1
	}
	if e.ep >= 0 {
		unix.Close(e.ep)
		e.ep = -1
	}
}

// runLocked runs f on a locked OS thread (the loop owns that thread) and waits for it.
func runLocked(f func()) {
	done := make(chan struct{})
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		defer close(done)
		f()
	}()
	<-done
}

// parseAddr resolves "host:port" for the loop (IP literals and names).
func parseAddr(s string) (netip.AddrPort, error) {
	ap, err := netip.ParseAddrPort(s)
	if err == nil {
		return ap, nil
	}
	return resolve(s)
}
