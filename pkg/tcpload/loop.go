//go:build linux

package tcpload

import (
	"context"
	"fmt"
	"net/netip"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/pathcost/pathcost/pkg/result"
)

// engine is one side of a session: an epoll loop in one goroutine, the state of its
// connections indexed by fd, its phase, pacing, window accounting and result.
type engine struct {
	cfg     Config
	role    string
	sending bool
	ep      int
	wake    int // eventfd that wakes the loop when the context ends
	lfd     int // server's listener (-1 when none)
	// lastPeer is the peer of the last accepted connection (server), for messages while no
	// connection has joined the session yet
	lastPeer string
	// joinedOnce: the session's addresses and socket figures are recorded (see joined)
	joinedOnce bool
	conns      []conn
	fds        []int // fds of the session's connections
	nActive    int
	nDone      int
	events     []unix.EpollEvent
	// readNap is the receiving side's nap when nothing is readable (Config.ReadBatch; 0: none,
	// and 0 on the sending side)
	readNap time.Duration
	// emptyWaits counts blocking waits (or naps, see batchWait) in a row that found nothing:
	// after a few the loop is idle and waits the runtime's way (see poll)
	emptyWaits int
	buf        []byte
	oob        []byte
	flags      int // send flags

	phase     phase
	total     uint64 // application bytes moved in the session
	stopReq   bool
	setupFrom time.Time
	upAt      time.Time
	win       window
	pace      pacer
	burn      burner
	res       *Result
}

func newEngine(cfg Config, role string) (*engine, error) {
	e := &engine{cfg: cfg, role: role, lfd: -1, ep: -1, wake: -1}
	e.pace.base = time.Now()
	e.burn.perKB = cfg.BurnPerKB
	e.res = &Result{Role: role, Direction: cfg.Direction, Conns: cfg.Conns, Buffer: cfg.Buffer, BurnPerKB: cfg.BurnPerKB}
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
	if e.buf, err = newBuffer(cfg.Buffer); err != nil {
		e.close()
		return nil, err
	}
	// room for every connection's event in one wait, as the seed's programs have
	e.events = make([]unix.EpollEvent, min(cfg.Conns+2, MaxConns+2))
	return e, nil
}

// setDirection fixes who writes; called once the direction is known.
func (e *engine) setDirection(d Direction) {
	e.cfg.Direction = d
	e.res.Direction = d
	e.sending = (d == ServerPush) == (e.role == result.RoleServer)
	e.res.Sending = e.sending
	e.res.Pace = e.cfg.Pace
	e.readNap = 0
	if !e.sending {
		e.readNap = e.cfg.readNap()
	}
	e.res.ReadBatch = e.readNap
	if e.sending && e.cfg.Pace.Enabled() {
		e.pace.set(e.cfg.Pace, e.cfg.Buffer)
	}
}

func (e *engine) ctl(op, fd int, events uint32) error {
	ev := unix.EpollEvent{Events: events, Fd: int32(fd)}
	if err := unix.EpollCtl(e.ep, op, fd, &ev); err != nil {
		return fmt.Errorf("epoll_ctl fd %d: %w", fd, err)
	}
	return nil
}

// idleWaits is how many timed-out waits in a row make the loop idle.
const idleWaits = 3

// busyWaitCap bounds one wait of a busy loop (see poll).
const busyWaitCap = 10 * time.Millisecond

// poll waits for events for at most d (0: only what is ready now).
//
// A busy loop never enters the Go scheduler: its wait is one RawSyscall, which returns at once
// when something is ready, so a wake-up costs one epoll_pwait, as in the seed's programs. An
// ordinary Syscall marks the goroutine as in a system call; the runtime's monitor thread
// (sysmon) then takes the thread's P away whenever it finds it blocked there at the end of a
// 10 ms time slice, and after each such take it polls every 20 µs again: hundreds of wake-ups a
// second of a thread that does nothing for the workload, measured at 0.02 cores per process. A
// raw wait is bounded by busyWaitCap (sysmon's preemption signal interrupts it anyway). Only when
// waits keep timing out (paced or idle sessions) does the loop block the runtime's way, so the
// runtime can park its threads. A receiving side that reads in batches naps instead of waiting
// while it is busy (batchWait).
func (e *engine) poll(d time.Duration) (int, error) {
	if e.readNap > 0 && e.emptyWaits < idleWaits && d >= e.readNap {
		return e.batchWait()
	}
	if e.emptyWaits < idleWaits || d <= 0 {
		// busy: one raw wait, which returns at once when something is ready
		ms := 0
		if d > 0 {
			ms = min(max(int(d/time.Millisecond), 1), int(busyWaitCap/time.Millisecond))
		}
		n, errno := e.rawWait(ms)
		return e.rawWaited(n, errno, ms > 0)
	}
	// idle: what is ready now without the scheduler, else block the runtime's way
	if n, errno := e.rawWait(0); errno == 0 && n > 0 {
		e.emptyWaits = 0
		return n, nil
	}
	ms := max(int(d/time.Millisecond), 1)
	for {
		n, err := unix.EpollWait(e.ep, e.events, ms)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return 0, fmt.Errorf("epoll_wait: %w", err)
		}
		if n > 0 {
			e.emptyWaits = 0
		}
		return n, nil
	}
}

// batchWait is the busy wait of a receiving side that reads in batches (Config.ReadBatch): what
// is ready now, else a nap and what is ready then. While the reader naps no waiter sits on the
// epoll queue, so the sender's CPU, which delivers the data, does not wake it: the reader's own
// timer does, once per nap, and it finds every socket that became readable meanwhile. A nap that
// finds nothing counts as an empty wait, so a paced or idle session soon waits to be woken.
func (e *engine) batchWait() (int, error) {
	if n, errno := e.rawWait(0); errno != 0 || n > 0 {
		return e.rawWaited(n, errno, false)
	}
	ts := unix.NsecToTimespec(e.readNap.Nanoseconds())
	// RawSyscall as the waits (see poll); EINTR only shortens the nap
	unix.RawSyscall(unix.SYS_NANOSLEEP, uintptr(unsafe.Pointer(&ts)), 0, 0)
	n, errno := e.rawWait(0)
	return e.rawWaited(n, errno, true)
}

// rawWaited turns what a raw wait returned into poll's result: EINTR is "nothing now"; a wait
// that found something ends the count of empty waits, and one that found nothing adds to it when
// it waited (timed: a timeout or a nap before it).
func (e *engine) rawWaited(n int, errno unix.Errno, timed bool) (int, error) {
	switch {
	case errno == unix.EINTR:
		return 0, nil
	case errno != 0:
		return 0, fmt.Errorf("epoll_wait: %w", errno)
	case n > 0:
		e.emptyWaits = 0
	case timed:
		e.emptyWaits++
	}
	return n, nil
}

// rawWait is epoll_pwait on the loop's events for at most ms milliseconds (0: what is ready now),
// through RawSyscall: the Go scheduler never sees it (see poll).
func (e *engine) rawWait(ms int) (int, unix.Errno) {
	n, _, errno := unix.RawSyscall6(unix.SYS_EPOLL_PWAIT, uintptr(e.ep), uintptr(unsafe.Pointer(&e.events[0])),
		uintptr(len(e.events)), uintptr(ms), 0, 0)
	return int(n), errno
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

// pump runs the transfer until the phase's deadline, a stop request, the session's end, or an
// error; deadline zero means none. It is the loop of the warm-up, the window and the ending;
// set-up has its own loops (server.go, client.go).
func (e *engine) pump(deadline time.Time, until func() bool) error {
	for !until() {
		if e.stopReq && e.phase != phaseEnding { // the clean end is bounded by its own deadline
			return nil
		}
		now := time.Now()
		if e.phase == phaseWindow && !now.Before(e.win.nextEdge) {
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
		if e.phase == phaseWindow {
			wait = min(wait, e.win.nextEdge.Sub(now))
		}
		if e.pace.on() && e.phase.writing() {
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

// close releases the engine's descriptors and buffer; it is called once the loop has ended (or
// was never run) and may be called again.
func (e *engine) close() {
	freeBuffer(e.buf)
	e.buf = nil
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

// runLoop runs the loop f in a goroutine of its own and waits for it.
//
// The loop's goroutine does not lock its OS thread. Go preempts a goroutine that has run for
// 10 ms; a locked one then cannot simply go on running on its thread: its thread parks, another
// thread is woken to take the P and hand it back, and the loop's thread is woken again — two
// thread wake-ups a hundred times a second, and a stall of the loop whenever the machine is busy.
// Unlocked, the preempted goroutine is picked up again by the same thread (with GOMAXPROCS=1, as
// the command line runs, there is no other P to hand it to). The loop's system calls go through
// RawSyscall, so it keeps its thread between preemptions anyway.
func runLoop(f func()) {
	done := make(chan struct{})
	go func() {
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
