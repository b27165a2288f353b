package tcpload

import (
	"encoding/binary"
	"fmt"
	"math"
	"time"
)

// headerLen is the size of the header a client sends first on every connection.
const headerLen = 36

// ack is what the server answers on each connection once its header arrived: the client counts a
// connection as up only then.
var ack = [ackLen]byte{'P', 'C', 'T', '1', 'O', 'K', '\r', '\n'}

// ackLen is the length of the server's acknowledgement.
const ackLen = 8

// headerMagic opens every header ("PCT1").
const headerMagic = 0x50435431

// header is what a client announces on each connection: the session's shape, so the server
// knows how many connections make the session, who writes, how (paced or not) and how long the
// client will measure.
type header struct {
	Direction Direction
	Conns     int
	Index     int
	Duration  time.Duration
	Warmup    time.Duration
	Pace      Pace
	// ReceiverDelay is Config.ReceiverDelay (whole ms; 0 from clients that predate it)
	ReceiverDelay time.Duration
}

func (h header) encode() [headerLen]byte {
	var b [headerLen]byte
	binary.BigEndian.PutUint32(b[0:], headerMagic)
	b[4] = 1 // version
	if h.Direction == ClientPush {
		b[5] = 1
	}
	binary.BigEndian.PutUint16(b[6:], uint16(min(h.ReceiverDelay/time.Millisecond, math.MaxUint16)))
	binary.BigEndian.PutUint32(b[8:], uint32(h.Conns))
	binary.BigEndian.PutUint32(b[12:], uint32(h.Index))
	binary.BigEndian.PutUint32(b[16:], uint32(h.Duration/time.Millisecond))
	binary.BigEndian.PutUint32(b[20:], uint32(h.Warmup/time.Millisecond))
	binary.BigEndian.PutUint32(b[24:], uint32(min(h.Pace.RateBytes, math.MaxUint32)))
	binary.BigEndian.PutUint32(b[28:], uint32(min(h.Pace.MsgsPerSec*1000, math.MaxUint32)))
	binary.BigEndian.PutUint32(b[32:], uint32(h.Pace.MsgBytes))
	return b
}

// decodeHeader parses and checks a header; it never panics on bad input.
func decodeHeader(b []byte) (header, error) {
	var h header
	if len(b) != headerLen {
		return h, fmt.Errorf("header: %d bytes, want %d", len(b), headerLen)
	}
	if m := binary.BigEndian.Uint32(b[0:]); m != headerMagic {
		return h, fmt.Errorf("header: magic %#x: peer is not a tcpload client", m)
	}
	if b[4] != 1 {
		return h, fmt.Errorf("header: version %d not supported", b[4])
	}
	switch b[5] {
	case 0:
		h.Direction = ServerPush
	case 1:
		h.Direction = ClientPush
	default:
		return h, fmt.Errorf("header: direction %d unknown", b[5])
	}
	conns := binary.BigEndian.Uint32(b[8:])
	index := binary.BigEndian.Uint32(b[12:])
	if conns < 1 || conns > MaxConns {
		return h, fmt.Errorf("header: %d connections, want 1..%d", conns, MaxConns)
	}
	if index >= conns {
		return h, fmt.Errorf("header: connection index %d of %d", index, conns)
	}
	h.Conns, h.Index = int(conns), int(index)
	h.ReceiverDelay = time.Duration(binary.BigEndian.Uint16(b[6:])) * time.Millisecond
	h.Duration = time.Duration(binary.BigEndian.Uint32(b[16:])) * time.Millisecond
	h.Warmup = time.Duration(binary.BigEndian.Uint32(b[20:])) * time.Millisecond
	h.Pace = Pace{
		RateBytes:  float64(binary.BigEndian.Uint32(b[24:])),
		MsgsPerSec: float64(binary.BigEndian.Uint32(b[28:])) / 1000,
		MsgBytes:   int(binary.BigEndian.Uint32(b[32:])),
	}
	if err := h.Pace.Validate(); err != nil {
		return h, fmt.Errorf("header: pacing: %w", err)
	}
	if h.ReceiverDelay > h.Warmup {
		return h, fmt.Errorf("header: receiver delay %s longer than the warm-up %s", h.ReceiverDelay, h.Warmup)
	}
	return h, nil
}
