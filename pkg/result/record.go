// Package result defines pathcost's result record: what one tcpload process measured in one run,
// serialised as versioned JSON ("pathcost/result/v1"), plus aggregation of repeated runs,
// threshold checks and comparison with a baseline.
package result

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
)

// Schema is the value of Record.Schema for records written by this version.
const Schema = "pathcost/result/v1"

// Roles of a record.
const (
	RoleServer = "server"
	RoleClient = "client"
)

// Record is what one tcpload process measured over its measurement window.
type Record struct {
	Schema string `json:"schema"`
	Role   string `json:"role"`
	// Direction says which side wrote application data: "server-push" (the seed's) or "client-push".
	Direction string `json:"direction,omitempty"`
	// Sending is true when this process was the one writing.
	Sending bool   `json:"sending"`
	Addr    string `json:"addr,omitempty"`
	Label   string `json:"label,omitempty"`

	Mbps         float64 `json:"mbps"`
	Bytes        uint64  `json:"bytes"`
	Seconds      float64 `json:"seconds"`
	Conns        int     `json:"conns"`
	SetupSeconds float64 `json:"setup_seconds"`
	BufferBytes  int     `json:"buffer_bytes,omitempty"`

	// TotalBytes counts every application byte, set-up and warm-up included (used to check
	// conservation: what the sender wrote equals what the receiver read).
	TotalBytes uint64 `json:"total_bytes"`

	CPU       CPU        `json:"cpu"`
	Node      Node       `json:"node"`
	Iface     Iface      `json:"iface"`
	TCP       TCP        `json:"tcp"`
	PerConn   *PerConn   `json:"per_conn,omitempty"`
	Sockets   *Sockets   `json:"sockets,omitempty"`
	Pacing    *Pacing    `json:"pacing,omitempty"`
	Intervals []Interval `json:"intervals"`

	// Watched holds the CPU of other processes sampled at the same window edges
	// (e.g. "sidecar" -> the proxy beside this process), keyed by the name given with --watch.
	Watched map[string]CPU `json:"watched,omitempty"`

	// PerGbpsOf names the bandwidth every cores_per_gbps of this record (cpu, node, watched)
	// divides by: PerGbpsOfMbps, this record's own application Mbps. Empty when the record has
	// no application bandwidth (a `tcpload sample` record): its cores_per_gbps are then 0 and
	// mean nothing.
	PerGbpsOf string `json:"per_gbps_of,omitempty"`
	// WindowStartUnixNano and WindowEndUnixNano are the measurement window's edges as the
	// meter read them (wall clock, Unix nanoseconds, taken just before the node's /proc/stat
	// reading at each edge): NodeOver computes a forwarding node's figures over exactly this
	// window from that node's NodeSeries.
	WindowStartUnixNano int64 `json:"window_start_unix_ns,omitempty"`
	WindowEndUnixNano   int64 `json:"window_end_unix_ns,omitempty"`
	// NodeSeries is the machine's cumulative CPU time sampled at a fixed interval over the whole
	// run of a `tcpload sample` (--series-interval); Node.NumCPU gives the number of CPUs.
	NodeSeries []NodeSample `json:"node_series,omitempty"`
	// Unmeasured lists the figures that could not be measured (UnmeasuredCPU, UnmeasuredNode,
	// UnmeasuredIface, UnmeasuredTCP, UnmeasuredWatched+NAME), the reason being in Notes: their
	// fields hold 0 and must be read as missing, never as 0.
	Unmeasured []string `json:"unmeasured,omitempty"`

	// StartedAt is when this process started its session (RFC 3339 with nanoseconds): the
	// client's first connection attempt, the server's first accepted connection, the start of
	// a sampler's window.
	StartedAt string   `json:"started_at,omitempty"`
	Host      string   `json:"host,omitempty"`
	PID       int      `json:"pid,omitempty"`
	Notes     []string `json:"notes,omitempty"`

	// Error is set only when the run failed; the rest of the record holds what was measured.
	Error string `json:"error,omitempty"`
}

// PerGbpsOfMbps is Record.PerGbpsOf when cores_per_gbps divide by the record's own
// application Mbps (its "mbps" field).
const PerGbpsOfMbps = "mbps"

// Names in Record.Unmeasured.
const (
	UnmeasuredCPU   = "cpu"   // this process's CPU (cpu)
	UnmeasuredNode  = "node"  // the machine's CPU (node)
	UnmeasuredIface = "iface" // the session's interface (iface's totals and name)
	UnmeasuredTCP   = "tcp"   // the namespace's TCP counters (tcp.ns_*)
	// UnmeasuredWatched is followed by the watched name: "watched.sidecar".
	UnmeasuredWatched = "watched."
)

// CPU is the CPU used by one process (all threads) or one container over the window, in cores
// (CPU-seconds per second). CoresPerGbps divides Cores by the bandwidth Record.PerGbpsOf names.
type CPU struct {
	Cores        float64 `json:"cores"`
	UserCores    float64 `json:"user_cores"`
	SysCores     float64 `json:"sys_cores"`
	CoresPerGbps float64 `json:"cores_per_gbps"`
}

// Node is the CPU of the whole machine (or node) over the window, from /proc/stat (see
// NodeBetween for what each figure is). CoresPerGbps divides BusyCores by the bandwidth
// Record.PerGbpsOf names.
type Node struct {
	NumCPU       int     `json:"num_cpu"`
	BusyCores    float64 `json:"busy_cores"`
	IdlePct      float64 `json:"idle_pct"`
	UserCores    float64 `json:"user_cores"`
	SysCores     float64 `json:"sys_cores"`
	SoftirqCores float64 `json:"softirq_cores"`
	IRQCores     float64 `json:"irq_cores"`
	StealCores   float64 `json:"steal_cores"`
	IOWaitCores  float64 `json:"iowait_cores"`
	CoresPerGbps float64 `json:"cores_per_gbps"`
}

// Iface holds interface counters of the process's network namespace over the window
// (/proc/net/dev, what `sar -n DEV` shows). The totals (rx/tx bytes and Mbps) are those of
// the interface named Name: the one that carried the session, holding the session
// connection's local address (lo for loopback). Interfaces holds every interface.
type Iface struct {
	// Name is the interface the totals are of; empty (and "iface" in Record.Unmeasured) when
	// it could not be found.
	Name       string                `json:"name,omitempty"`
	RxBytes    uint64                `json:"rx_bytes"`
	TxBytes    uint64                `json:"tx_bytes"`
	RxMbps     float64               `json:"rx_mbps"`
	TxMbps     float64               `json:"tx_mbps"`
	Interfaces map[string]IfaceCount `json:"interfaces,omitempty"`
}

// IfaceCount is one interface's traffic over the window.
type IfaceCount struct {
	RxBytes   uint64  `json:"rx_bytes"`
	TxBytes   uint64  `json:"tx_bytes"`
	RxPackets uint64  `json:"rx_packets"`
	TxPackets uint64  `json:"tx_packets"`
	RxMbps    float64 `json:"rx_mbps"`
	TxMbps    float64 `json:"tx_mbps"`
}

// TCP holds TCP counters.
type TCP struct {
	// Retransmits is the sum of TCP_INFO total_retrans over this process's sockets, each read
	// when it ended: the whole session (set-up and warm-up included), NOT the window: see
	// WindowRetransmits.
	Retransmits uint64 `json:"retransmits"`
	// WindowRetransmits is the sum over this process's sockets of TCP_INFO total_retrans at the
	// window's end minus at its start: the retransmissions of the same window as the other
	// figures. Absent when a socket's could not be read (and in records of older versions).
	WindowRetransmits *uint64 `json:"window_retransmits,omitempty"`
	// NsOutSegs, NsInSegs and NsRetransSegs are the namespace-wide /proc/net/snmp deltas over
	// the window (every socket of the namespace, not only this process's).
	NsOutSegs     uint64 `json:"ns_out_segs"`
	NsInSegs      uint64 `json:"ns_in_segs"`
	NsRetransSegs uint64 `json:"ns_retrans_segs"`
	// MinRTTMicros is the smallest TCP_INFO min_rtt over the sockets: the lowest RTT any of
	// them measured during the session.
	MinRTTMicros uint32 `json:"min_rtt_us,omitempty"`
	// MaxRTTMicros is no longer written (it was the largest smoothed RTT at the sockets' end,
	// not a maximum): see MaxSRTTAtEndMicros. Kept to read older records.
	MaxRTTMicros uint32 `json:"max_rtt_us,omitempty"`
	// MaxSRTTAtEndMicros is the largest smoothed RTT (TCP_INFO rtt) among the sockets, each
	// read when it ended: not the largest RTT seen during the session.
	MaxSRTTAtEndMicros uint32 `json:"max_srtt_at_end_us,omitempty"`
}

// PerConn describes fairness: bytes moved in the window by the slowest and fastest connection.
type PerConn struct {
	MinBytes uint64  `json:"min_bytes"`
	MaxBytes uint64  `json:"max_bytes"`
	MinMbps  float64 `json:"min_mbps"`
	MaxMbps  float64 `json:"max_mbps"`
}

// Sockets reports the socket options asked for and what the kernel granted.
type Sockets struct {
	SndBufAsked   int    `json:"sndbuf_asked,omitempty"`
	SndBufGranted int    `json:"sndbuf_granted"`
	RcvBufAsked   int    `json:"rcvbuf_asked,omitempty"`
	RcvBufGranted int    `json:"rcvbuf_granted"`
	Congestion    string `json:"congestion,omitempty"`
	NoDelay       bool   `json:"nodelay"`
	ZeroCopy      string `json:"zerocopy,omitempty"` // "", "on", or "unsupported: reason"
	Backlog       int    `json:"backlog,omitempty"`
	// NotSentLowat is the socket's TCP_NOTSENT_LOWAT as read back (0: not set, the kernel's
	// net.ipv4.tcp_notsent_lowat applies).
	NotSentLowat int `json:"notsent_lowat,omitempty"`
}

// Pacing reports the load asked for when the sender was paced.
type Pacing struct {
	RateBytesPerSec float64 `json:"rate_bytes_per_sec,omitempty"`
	MsgsPerSec      float64 `json:"msgs_per_sec,omitempty"`
	MsgBytes        int     `json:"msg_bytes,omitempty"`
}

// Interval is one reporting interval inside the measurement window.
type Interval struct {
	Start float64 `json:"start"` // seconds since the window opened
	End   float64 `json:"end"`
	Bytes uint64  `json:"bytes"`
	Mbps  float64 `json:"mbps"`
	Cores float64 `json:"cores"`
}

// Write writes r as indented JSON to w.
func (r *Record) Write(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(r); err != nil {
		return fmt.Errorf("encode %s record: %w", r.Role, err)
	}
	return nil
}

// WriteFile writes r to path ("-" means standard output).
func (r *Record) WriteFile(path string) error {
	if path == "-" {
		return r.Write(os.Stdout)
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("create result file: %w", err)
	}
	if err := r.Write(f); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", path, err)
	}
	return nil
}

// Decode reads one record from JSON and checks its schema.
func Decode(data []byte) (*Record, error) {
	var r Record
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("decode result record: %w", err)
	}
	if r.Schema != Schema {
		return nil, fmt.Errorf("decode result record: schema %q, want %q", r.Schema, Schema)
	}
	return &r, nil
}

// ReadFile reads one record from a JSON file.
func ReadFile(path string) (*Record, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read result: %w", err)
	}
	r, err := Decode(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return r, nil
}

// CoresPerGbps normalises a CPU figure by throughput ("service demand"); 0 when mbps is 0.
func CoresPerGbps(cores, mbps float64) float64 {
	if mbps <= 0 {
		return 0
	}
	return cores / (mbps / 1000)
}
