//go:build linux

package tcpload

import "time"

// pacer holds the sender's pacing: every connection is allowed a chunk of bytes per period; what
// the socket does not take at once goes out on EPOLLOUT.
type pacer struct {
	base    time.Time // the clock's zero: times below are ns since base
	chunk   int       // bytes allowed per period (0: unpaced)
	period  int64     // ns between chunks
	nextDue int64     // when paceTick has work next (0: now)
}

func (p *pacer) set(pace Pace, buffer int) {
	c, d := pace.chunk(buffer)
	p.chunk, p.period = c, int64(d)
}

// on reports whether the sender is paced.
func (p *pacer) on() bool { return p.chunk > 0 }

func (p *pacer) now() int64 { return int64(time.Since(p.base)) }

// startPacing makes every connection's first chunk due now.
func (e *engine) startPacing() {
	now := e.pace.now()
	for _, fd := range e.fds {
		e.conns[fd].due = now
	}
	e.pace.nextDue = 0
}

// paceTick allows the chunks that are due on every connection and writes what it can at once (the
// rest goes out on EPOLLOUT); it returns the time until the next chunk is due on a connection
// that has nothing left to write.
func (e *engine) paceTick() (time.Duration, error) {
	p := &e.pace
	now := p.now()
	if p.nextDue != 0 && now < p.nextDue {
		return time.Duration(p.nextDue - now), nil
	}
	maxPending := max(p.chunk, int(float64(p.chunk)*float64(time.Second)/float64(p.period))) // one second's worth
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
			c.pending = min(c.pending+p.chunk, maxPending)
			c.due += p.period
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
		p.nextDue = now + int64(e.cfg.Interval)
	} else {
		p.nextDue = max(next, now+1)
	}
	return time.Duration(p.nextDue - now), nil
}
