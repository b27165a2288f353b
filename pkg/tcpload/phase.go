package tcpload

// phase is where a session stands. A session only moves forward:
//
//	setup -> warmup -> window -> ending
//
// setup: connections are being opened and announced, nobody writes; warmup: every connection is
// up and data moves, nothing is measured yet; window: measuring; ending: the client has ended the
// session (or the window closed early) and the connections drain to EOF.
type phase uint8

const (
	phaseSetup phase = iota
	phaseWarmup
	phaseWindow
	phaseEnding
)

func (p phase) String() string {
	switch p {
	case phaseSetup:
		return "set-up"
	case phaseWarmup:
		return "warm-up"
	case phaseWindow:
		return "window"
	case phaseEnding:
		return "ending"
	}
	return "unknown phase"
}

// writing reports whether a sender writes in this phase: not during set-up (set-up time is the
// path's, not a contest with the data) and not once the session is ending.
func (p phase) writing() bool { return p == phaseWarmup || p == phaseWindow }
