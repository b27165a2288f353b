package tcpload

import (
	"time"

	"github.com/pathcost/pathcost/pkg/result"
)

// Result is what one side measured in one session.
type Result struct {
	Role      string // result.RoleServer or result.RoleClient
	Direction Direction
	Sending   bool
	Peer      string // the other side's address (of a connection that joined the session)
	Local     string // this side's address (of the same connection)
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
	Retransmits   uint64 // sum of TCP_INFO total_retrans over the connections: the whole session
	// WindowRetransmits is the sum over the connections of TCP_INFO total_retrans at the
	// window's end minus at its start; nil when a connection's could not be read.
	WindowRetransmits *uint64
	MinRTT            uint32 // smallest TCP_INFO min_rtt (µs)
	MaxRTT            uint32 // largest TCP_INFO rtt (µs)
	Sockets           result.Sockets
	// BurnPerKB is the self-test CPU burn this side applied (Config.BurnPerKB; 0 = none).
	BurnPerKB time.Duration
	// ReceiverWaited is how long this side, as the receiver, waited after set-up before its
	// first read (Config.ReceiverDelay; 0 = it did not wait, or it sent).
	ReceiverWaited time.Duration
	// ReadBatch is the nap this side took, as the receiver, when nothing was readable
	// (Config.ReadBatch resolved; 0: it was woken per readable socket, or it sent).
	ReadBatch time.Duration
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
