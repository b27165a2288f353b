package tcpload

import (
	"fmt"
	"strings"
	"time"
)

// Defaults are the seed's settings.
const (
	DefaultPort     = 50012
	DefaultConns    = 100
	DefaultBuffer   = 102400
	DefaultWarmup   = 2 * time.Second
	DefaultDuration = 10 * time.Second
	DefaultInterval = time.Second
	// MaxConns bounds the number of connections one session may ask for.
	MaxConns = 10000
	// MaxBuffer bounds the application buffer (64 MiB).
	MaxBuffer = 64 << 20
)

// Direction says which side writes application data.
type Direction string

// The two directions.
const (
	ServerPush Direction = "server-push" // the seed's: server writes, client reads
	ClientPush Direction = "client-push" // the client writes, the server reads
)

// ParseDirection accepts "server-push"/"server" and "client-push"/"client".
func ParseDirection(s string) (Direction, error) {
	switch s {
	case "server-push", "server", "":
		return ServerPush, nil
	case "client-push", "client":
		return ClientPush, nil
	}
	return "", fmt.Errorf("direction %q: want server-push or client-push", s)
}

// Options are the socket options both sides understand.
type Options struct {
	SndBuf     int    // SO_SNDBUF to ask for (0: kernel default/autotuning)
	RcvBuf     int    // SO_RCVBUF to ask for (0: kernel default/autotuning)
	Congestion string // TCP_CONGESTION name ("": default)
	NoDelay    bool   // TCP_NODELAY
	ZeroCopy   bool   // MSG_ZEROCOPY on the sender
	// NotSentLowat is TCP_NOTSENT_LOWAT on every socket of this side, in bytes: once a socket
	// holds that much written but unsent data, writes to it stop and it is not writable until
	// the peer has taken in enough. It bounds what waits in the send queues without bounding
	// what is in flight. 0 (the default): twice Buffer, room for two writes, and at least
	// MinAutoNotSentLowat. KernelNotSentLowat: not set, so net.ipv4.tcp_notsent_lowat applies
	// (unbounded unless set), as for the seed's C programs. A bound keeps a saturated session
	// out of the full-queue state, where hundreds of MB queue up and every copy misses the
	// cache (README, "Two steady states").
	NotSentLowat int
}

// KernelNotSentLowat as Options.NotSentLowat leaves TCP_NOTSENT_LOWAT unset.
const KernelNotSentLowat = -1

// MinAutoNotSentLowat is the least TCP_NOTSENT_LOWAT the default sets: with 16 kB buffers, a
// bound of two buffers (32 kB) woke the sender so often that a saturated loopback pair carried
// 14-16 Gbps against 20 Gbps with 128 kB (three rounds each, 2026-12-06).
const MinAutoNotSentLowat = 128 << 10

// notSentLowat is the TCP_NOTSENT_LOWAT to set for a side whose buffer is buffer bytes (0: none).
func (o Options) notSentLowat(buffer int) int {
	switch {
	case o.NotSentLowat == 0:
		return max(2*buffer, MinAutoNotSentLowat)
	case o.NotSentLowat < 0:
		return 0
	}
	return o.NotSentLowat
}

// Config configures one side of a session.
type Config struct {
	// Conns is the number of connections the client opens (the server learns it from the client).
	Conns int
	// Buffer is the application buffer per read()/write().
	Buffer int
	// Direction is chosen by the client and announced to the server in each connection's header.
	Direction Direction
	// Duration is the measured window (client only; the server follows the client).
	Duration time.Duration
	// Warmup passes after every connection is up and before the window opens.
	Warmup time.Duration
	// Interval is the reporting interval inside the window.
	Interval time.Duration
	// ReceiverDelay is how long the receiving side waits at the start of the warm-up before its
	// first read (0, the default: none, both sides start level). It lets the sender fill every
	// queue first, so that a saturated session starts in the full-queue state (see startSending):
	// one steady state from run to run instead of either. At most Warmup and MaxReceiverDelay;
	// the client announces it to the server in each connection's header.
	ReceiverDelay time.Duration
	// ReadBatch is how long the receiving side sleeps, when no connection has data, before it
	// looks again; what arrived meanwhile is read in one turn. Without it the reader waits in
	// epoll and is woken by the first readable socket, as the seed's client is: a wake-up per
	// read at saturation (about 20 000 a second at 40 Gbps), each paid on the sender's CPU too,
	// which delivers loopback data and wakes the reader. 0: DefaultReadBatch; NoReadBatch: no
	// naps, woken per readable socket as the seed's client. At most MaxReadBatch. After a few
	// naps that found nothing (a paced or idle session) the reader waits to be woken again.
	ReadBatch time.Duration
	// Pace limits the sender (whichever side writes).
	Pace Pace
	// Options are socket options.
	Options Options
	// Backlog is the server's listen backlog (0: MaxConns; the kernel caps it at
	// net.core.somaxconn). The server cannot know the session's size before it connects.
	Backlog int
	// SetupTimeout bounds connection set-up (client: connecting and retrying refused
	// connections; server: waiting for the session's connections once the first arrived).
	SetupTimeout time.Duration
	// AcceptTimeout bounds how long a server waits for the first connection (0: forever).
	AcceptTimeout time.Duration
	// DrainTimeout bounds the clean end of a session (0: 10 s).
	DrainTimeout time.Duration
	// BurnPerKB is a self-test knob for the gate tests only: after each read or write of n bytes
	// the loop spins on its thread for n/1024*BurnPerKB of that thread's CPU time, to inject a
	// known extra CPU cost per byte into one component (0: off, the default).
	BurnPerKB time.Duration
	// Probe, if set, is called at window and interval edges (on the loop's thread).
	Probe Probe
	// Progress, if set, is called after each interval with what it measured.
	Progress func(Interval)
}

// Interval is one reporting interval inside the window.
type Interval struct {
	Start, End float64 // seconds since the window opened
	Bytes      uint64
	Mbps       float64
	Cores      float64 // from the Probe; 0 without one
}

// Probe measures what the loop does not: CPU, interfaces, other processes. It is called on the
// loop's thread at the edges only, so it must be quick (well under a millisecond per call).
type Probe interface {
	// WindowStart is called when the measurement window opens.
	WindowStart(at time.Time)
	// IntervalEnd is called at the end of each interval; it returns the cores used in it.
	IntervalEnd(at time.Time) float64
	// WindowEnd is called when the window closes.
	WindowEnd(at time.Time)
}

// WithDefaults returns c with zero fields set to the seed's defaults.
func (c Config) WithDefaults() Config {
	if c.Conns == 0 {
		c.Conns = DefaultConns
	}
	if c.Buffer == 0 {
		c.Buffer = DefaultBuffer
	}
	if c.Direction == "" {
		c.Direction = ServerPush
	}
	if c.Duration == 0 {
		c.Duration = DefaultDuration
	}
	if c.Interval == 0 {
		c.Interval = DefaultInterval
	}
	if c.SetupTimeout == 0 {
		c.SetupTimeout = 10 * time.Second
	}
	if c.DrainTimeout == 0 {
		c.DrainTimeout = 10 * time.Second
	}
	if c.Backlog == 0 {
		c.Backlog = MaxConns
	}
	return c
}

// DefaultReadBatch is Config.ReadBatch's default: in split pairs at 40-57 Gbps, naps of 20, 50
// and 100 µs cost 0.95x, 0.89x and 0.87x the cores per Gbps of a reader woken per socket (the
// pair; 5 rounds each, 2026-12-06).
const DefaultReadBatch = 50 * time.Microsecond

// NoReadBatch as Config.ReadBatch: the reader is woken by every readable socket, as the seed's
// client is.
const NoReadBatch time.Duration = -1

// MaxReadBatch bounds Config.ReadBatch: at 40 Gbps a millisecond's nap already leaves 5 MB to a
// batch.
const MaxReadBatch = time.Millisecond

// readNap is the nap a receiving side takes when nothing is readable (0: none).
func (c Config) readNap() time.Duration {
	switch {
	case c.ReadBatch == 0:
		return DefaultReadBatch
	case c.ReadBatch < 0:
		return 0
	}
	return c.ReadBatch
}

// MaxBurnPerKB bounds Config.BurnPerKB.
const MaxBurnPerKB = time.Millisecond

// MaxReceiverDelay bounds Config.ReceiverDelay (the header carries it in 16 bits of ms).
const MaxReceiverDelay = 60 * time.Second

// Validate reports the first bad setting as a *FieldError naming the Config field (a command
// line maps fields to its flags with FieldError.Render).
func (c Config) Validate() error {
	switch {
	case c.Conns < 1 || c.Conns > MaxConns:
		return fieldErr("Conns", c.Conns, fmt.Sprintf("want 1..%d", MaxConns))
	case c.Buffer < 1 || c.Buffer > MaxBuffer:
		return fieldErr("Buffer", c.Buffer, fmt.Sprintf("want 1..%d bytes", MaxBuffer))
	case c.Duration <= 0:
		return fieldErr("Duration", c.Duration, "must be positive")
	case c.Warmup < 0:
		return fieldErr("Warmup", c.Warmup, "must not be negative")
	case c.Interval <= 0:
		return fieldErr("Interval", c.Interval, "must be positive")
	case c.ReceiverDelay < 0 || c.ReceiverDelay > MaxReceiverDelay:
		return fieldErr("ReceiverDelay", c.ReceiverDelay, fmt.Sprintf("want 0..%s", MaxReceiverDelay))
	case c.ReceiverDelay > c.Warmup:
		return fieldErr("ReceiverDelay", c.ReceiverDelay, fmt.Sprintf("longer than {Warmup} %s: the delay is part of the warm-up", c.Warmup))
	case c.ReadBatch < NoReadBatch || c.ReadBatch > MaxReadBatch:
		return fieldErr("ReadBatch", c.ReadBatch, fmt.Sprintf("want 0 (%s), NoReadBatch (none) or up to %s", DefaultReadBatch, MaxReadBatch))
	case c.Options.SndBuf < 0:
		return fieldErr("Options.SndBuf", c.Options.SndBuf, "must not be negative")
	case c.Options.RcvBuf < 0:
		return fieldErr("Options.RcvBuf", c.Options.RcvBuf, "must not be negative")
	case c.Options.NotSentLowat < KernelNotSentLowat:
		return fieldErr("Options.NotSentLowat", c.Options.NotSentLowat, "want bytes, 0 (twice {Buffer}, at least 128 KiB) or -1 (the kernel's)")
	case c.SetupTimeout < 0:
		return fieldErr("SetupTimeout", c.SetupTimeout, "must not be negative")
	case c.AcceptTimeout < 0:
		return fieldErr("AcceptTimeout", c.AcceptTimeout, "must not be negative")
	case c.DrainTimeout < 0:
		return fieldErr("DrainTimeout", c.DrainTimeout, "must not be negative")
	case c.Backlog < 0:
		return fieldErr("Backlog", c.Backlog, "must not be negative")
	case c.Direction != ServerPush && c.Direction != ClientPush:
		return fieldErr("Direction", fmt.Sprintf("%q", c.Direction), "want server-push or client-push")
	case c.BurnPerKB < 0 || c.BurnPerKB > MaxBurnPerKB:
		return fieldErr("BurnPerKB", c.BurnPerKB, fmt.Sprintf("want 0..%s", MaxBurnPerKB))
	}
	if err := c.Pace.Validate(); err != nil {
		return err
	}
	if c.Pace.MsgsPerSec > 0 && c.Pace.MsgBytes > c.Buffer {
		return fieldErr("Pace.MsgBytes", c.Pace.MsgBytes, fmt.Sprintf("larger than {Buffer} %d", c.Buffer))
	}
	return nil
}

// FieldError is a bad Config value. It names the field as Go code knows it ("Conns",
// "Pace.MsgBytes"); Render lets a command line name its flags instead.
type FieldError struct {
	Field string // the field, e.g. "Conns" or "Pace.RateBytes"
	Value any    // the value it had
	// Problem says what is wrong; other fields it mentions are written in braces, e.g.
	// "larger than {Buffer} 1000".
	Problem string
}

func fieldErr(field string, value any, problem string) *FieldError {
	return &FieldError{Field: field, Value: value, Problem: problem}
}

// Error names the fields as Go code knows them.
func (e *FieldError) Error() string { return e.Render(func(f string) string { return f }) }

// Render writes the error with every field named by name(field), e.g. a flag.
func (e *FieldError) Render(name func(field string) string) string {
	problem := e.Problem
	for {
		i := strings.IndexByte(problem, '{')
		j := strings.IndexByte(problem, '}')
		if i < 0 || j < i {
			break
		}
		problem = problem[:i] + name(problem[i+1:j]) + problem[j+1:]
	}
	return fmt.Sprintf("%s %v: %s", name(e.Field), e.Value, problem)
}
