package tcpload

import (
	"fmt"
	"math"
	"time"
)

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

// Validate checks the pace for nonsense values; errors are *FieldError naming the Pace field.
func (p Pace) Validate() error {
	switch {
	case math.IsNaN(p.RateBytes) || math.IsInf(p.RateBytes, 0):
		return fieldErr("Pace.RateBytes", p.RateBytes, "not a number")
	case math.IsNaN(p.MsgsPerSec) || math.IsInf(p.MsgsPerSec, 0):
		return fieldErr("Pace.MsgsPerSec", p.MsgsPerSec, "not a number")
	case p.RateBytes < 0:
		return fieldErr("Pace.RateBytes", p.RateBytes, "must not be negative")
	case p.MsgsPerSec < 0:
		return fieldErr("Pace.MsgsPerSec", p.MsgsPerSec, "must not be negative")
	case p.RateBytes > 0 && p.RateBytes < 1:
		return fieldErr("Pace.RateBytes", p.RateBytes, "at least 1 byte/s per connection")
	case p.RateBytes > math.MaxUint32:
		return fieldErr("Pace.RateBytes", p.RateBytes, fmt.Sprintf("at most %d bytes/s per connection", uint32(math.MaxUint32)))
	case p.MsgsPerSec > 0 && p.MsgsPerSec < 0.001:
		return fieldErr("Pace.MsgsPerSec", p.MsgsPerSec, "at least 0.001 messages per second")
	case p.MsgsPerSec == 0 && p.MsgBytes != 0:
		return fieldErr("Pace.MsgBytes", p.MsgBytes, "goes with {Pace.MsgsPerSec}")
	case p.RateBytes > 0 && p.MsgsPerSec > 0:
		return fieldErr("Pace.RateBytes", p.RateBytes, "{Pace.RateBytes} and {Pace.MsgsPerSec} exclude each other")
	case p.MsgsPerSec > 0 && (p.MsgBytes <= 0 || p.MsgBytes > MaxBuffer):
		return fieldErr("Pace.MsgBytes", p.MsgBytes, fmt.Sprintf("want 1..%d bytes with {Pace.MsgsPerSec}", MaxBuffer))
	case p.MsgsPerSec > 100000:
		return fieldErr("Pace.MsgsPerSec", p.MsgsPerSec, "at most 100000 messages per second per connection")
	}
	return nil
}
