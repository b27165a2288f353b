// Package tcpload moves bytes over TCP the way the seed's test programs do: one epoll loop on one
// locked OS thread per process, non-blocking sockets, level-triggered events, a fixed application
// buffer per read/write. A Server accepts a session of connections from one Client; by default the
// server writes and the client reads (the seed's "server push"); the client may push instead.
//
// The measurement window opens only after every connection is up and a warm-up has passed, and
// closes when the client's duration ends; per-interval and per-connection byte counts, set-up
// time and TCP_INFO retransmits are reported. CPU and interface accounting are left to a Probe,
// called at window and interval edges only.
package tcpload

import (
	"errors"
	"fmt"
	"math"
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

// Pace limits what a sender writes per connection. The zero value means "as fast as possible".
type Pace struct {
	// RateBytes is a rate per connection in bytes per second (0: unpaced).
	RateBytes float64
	// MsgsPerSec and MsgBytes describe the seed's business load: MsgsPerSec messages of MsgBytes
	// bytes per second on every connection (e.g. 20 msgs/s of 25000 B).
	MsgsPerSec float64
	MsgBytes   int
}

// Enabled reports whether any pacing is asked for.
func (p Pace) Enabled() bool { return p.RateBytes > 0 || p.MsgsPerSec > 0 }

// chunk returns the bytes written per paced write and the period between writes.
// Rate mode writes at least 50 times a second (chunks of at most buffer bytes) so the
// rate is smooth; business mode writes one message per period.
func (p Pace) chunk(buffer int) (int, time.Duration) {
	if p.MsgsPerSec > 0 {
		return p.MsgBytes, time.Duration(float64(time.Second) / p.MsgsPerSec)
	}
	c := p.RateBytes / 50
	if c > float64(buffer) {
		c = float64(buffer)
	}
	if c < 1 {
		c = 1
	}
	return int(c), time.Duration(c / p.RateBytes * float64(time.Second))
}

// Validate checks the pace for nonsense values.
func (p Pace) Validate() error {
	switch {
	case math.IsNaN(p.RateBytes) || math.IsInf(p.RateBytes, 0):
		return fmt.Errorf("--rate %g: not a number", p.RateBytes)
	case math.IsNaN(p.MsgsPerSec) || math.IsInf(p.MsgsPerSec, 0):
		return fmt.Errorf("--msgs %g: not a number", p.MsgsPerSec)
	case p.RateBytes < 0:
		return errors.New("--rate must not be negative")
	case p.MsgsPerSec < 0:
		return errors.New("--msgs must not be negative")
	case p.RateBytes > 0 && p.RateBytes < 1:
		return fmt.Errorf("--rate %g: at least 1 byte/s per connection", p.RateBytes)
	case p.RateBytes > math.MaxUint32:
		return fmt.Errorf("--rate %g: at most %d bytes/s per connection", p.RateBytes, uint32(math.MaxUint32))
	case p.MsgsPerSec > 0 && p.MsgsPerSec < 0.001:
		return fmt.Errorf("--msgs %g: at least 0.001 messages per second", p.MsgsPerSec)
	case p.MsgsPerSec == 0 && p.MsgBytes != 0:
		return errors.New("--msg-size goes with --msgs")
	case p.RateBytes > 0 && p.MsgsPerSec > 0:
		return errors.New("--rate and --msgs exclude each other")
	case p.MsgsPerSec > 0 && (p.MsgBytes <= 0 || p.MsgBytes > MaxBuffer):
		return fmt.Errorf("--msg-size %d: want 1..%d bytes with --msgs", p.MsgBytes, MaxBuffer)
	case p.MsgsPerSec > 100000:
		return fmt.Errorf("--msgs %g: at most 100000 messages per second per connection", p.MsgsPerSec)
	}
	return nil
}

// Options are the socket options both sides understand.
type Options struct {
	SndBuf     int    // SO_SNDBUF to ask for (0: kernel default/autotuning)
	RcvBuf     int    // SO_RCVBUF to ask for (0: kernel default/autotuning)
	Congestion string // TCP_CONGESTION name ("": default)
	NoDelay    bool   // TCP_NODELAY
	ZeroCopy   bool   // MSG_ZEROCOPY on the sender
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

// Validate reports the first bad setting, naming the flag users know it by.
func (c Config) Validate() error {
	switch {
	case c.Conns < 1 || c.Conns > MaxConns:
		return fmt.Errorf("--conns %d: want 1..%d", c.Conns, MaxConns)
	case c.Buffer < 1 || c.Buffer > MaxBuffer:
		return fmt.Errorf("--buffer %d: want 1..%d bytes", c.Buffer, MaxBuffer)
	case c.Duration <= 0:
		return fmt.Errorf("--duration %s: must be positive", c.Duration)
	case c.Warmup < 0:
		return fmt.Errorf("--warmup %s: must not be negative", c.Warmup)
	case c.Interval <= 0:
		return fmt.Errorf("--interval %s: must be positive", c.Interval)
	case c.Options.SndBuf < 0:
		return fmt.Errorf("--sndbuf %d: must not be negative", c.Options.SndBuf)
	case c.Options.RcvBuf < 0:
		return fmt.Errorf("--rcvbuf %d: must not be negative", c.Options.RcvBuf)
	case c.SetupTimeout < 0:
		return fmt.Errorf("--setup-timeout %s: must not be negative", c.SetupTimeout)
	case c.AcceptTimeout < 0:
		return fmt.Errorf("--accept-timeout %s: must not be negative", c.AcceptTimeout)
	case c.DrainTimeout < 0:
		return fmt.Errorf("drain timeout %s: must not be negative", c.DrainTimeout)
	case c.Backlog < 0:
		return fmt.Errorf("--backlog %d: must not be negative", c.Backlog)
	case c.Direction != ServerPush && c.Direction != ClientPush:
		return fmt.Errorf("--direction %q: want server-push or client-push", c.Direction)
	}
	if err := c.Pace.Validate(); err != nil {
		return err
	}
	if c.Pace.MsgsPerSec > 0 && c.Pace.MsgBytes > c.Buffer {
		return fmt.Errorf("--msg-size %d is larger than --buffer %d", c.Pace.MsgBytes, c.Buffer)
	}
	return nil
}
