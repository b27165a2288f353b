//go:build linux

package tcpload

import "time"

// window is the measurement window's accounting: when it opened, the current interval, and the
// next interval edge. Per-connection window bytes are kept in each conn (winStart, winEnd).
type window struct {
	from     time.Time // the window opened
	ivFrom   time.Time // the current interval started
	ivBytes  uint64    // session bytes when the current interval started
	nextEdge time.Time
	// retransUnread is set when an active connection's TCP_INFO could not be read as the
	// window opened: the window's retransmits are then not measured.
	retransUnread bool
}

// openWindow starts measuring.
func (e *engine) openWindow() {
	now := time.Now()
	e.phase = phaseWindow
	e.win = window{from: now, ivFrom: now, ivBytes: e.total, nextEdge: now.Add(e.cfg.Interval)}
	for _, fd := range e.fds {
		c := &e.conns[fd]
		c.winStart = c.bytes
		c.retransAtOpen, c.openedInfo = e.retransNow(fd, c)
		if c.state == stActive && !c.openedInfo {
			e.win.retransUnread = true
		}
	}
	if e.cfg.Probe != nil {
		e.cfg.Probe.WindowStart(now)
	}
}

// edge closes an interval at now.
func (e *engine) edge(now time.Time) {
	w := &e.win
	iv := Interval{
		Start: w.ivFrom.Sub(w.from).Seconds(),
		End:   now.Sub(w.from).Seconds(),
		Bytes: e.total - w.ivBytes,
	}
	if d := now.Sub(w.ivFrom).Seconds(); d > 0 {
		iv.Mbps = float64(iv.Bytes) * 8 / d / 1e6
	}
	if e.cfg.Probe != nil {
		iv.Cores = e.cfg.Probe.IntervalEnd(now)
	}
	e.res.Intervals = append(e.res.Intervals, iv)
	if e.cfg.Progress != nil {
		e.cfg.Progress(iv)
	}
	w.ivFrom, w.ivBytes = now, e.total
	w.nextEdge = w.nextEdge.Add(e.cfg.Interval)
}

// endWindow stops measuring (once) and moves the session to its ending.
func (e *engine) endWindow() {
	if e.phase != phaseWindow {
		return
	}
	now := time.Now()
	// a last partial interval is reported when it is at least a tenth of an interval long
	if now.Sub(e.win.ivFrom) >= e.cfg.Interval/10 {
		e.edge(now)
	}
	e.res.WindowSeconds = now.Sub(e.win.from).Seconds()
	var sum, retrans uint64
	first, retransOK := true, !e.win.retransUnread
	for _, fd := range e.fds {
		c := &e.conns[fd]
		c.winEnd = c.bytes
		if c.openedInfo {
			if n, ok := e.retransNow(fd, c); ok && n >= c.retransAtOpen {
				retrans += uint64(n - c.retransAtOpen)
			} else {
				retransOK = false
			}
		}
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
	if retransOK {
		e.res.WindowRetransmits = &retrans
	}
	e.res.WindowBytes = sum
	if e.cfg.Probe != nil {
		e.cfg.Probe.WindowEnd(now)
	}
	e.phase = phaseEnding
}
