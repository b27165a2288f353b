package tcpload

import (
	"fmt"
	"maps"
	"os"
	"slices"
	"time"

	"github.com/pathcost/pathcost/pkg/result"
	"github.com/pathcost/pathcost/pkg/usage"
)

// Meter is a Probe that samples this process's CPU, the node's CPU, the interface and TCP
// counters of this process's network namespace, and watched processes, at the window edges;
// at interval edges it reads only this process's CPU (one /proc read).
type Meter struct {
	sampler    *usage.Sampler
	start, end usage.Snapshot
	last       usage.ProcTimes
	lastAt     time.Time
	started    bool
	ended      bool
	errs       []string
}

// NewMeter samples the calling process plus the processes in watch (name -> pid).
func NewMeter(watch map[string]int) (*Meter, error) {
	fs, err := usage.Default()
	if err != nil {
		return nil, fmt.Errorf("meter: %w", err)
	}
	return &Meter{sampler: &usage.Sampler{Watch: watch, FS: fs}}, nil
}

func (m *Meter) take() usage.Snapshot {
	s, err := m.sampler.Take()
	if err != nil {
		m.errs = append(m.errs, err.Error())
	}
	return s
}

// WindowStart implements Probe.
func (m *Meter) WindowStart(at time.Time) {
	m.start = m.take()
	m.last, m.lastAt, m.started = m.start.Proc, m.start.At, true
}

// IntervalEnd implements Probe: the cores this process used since the previous edge. When
// this process's CPU cannot be read it returns 0 and the record's notes say that interval's
// cores were not measured.
func (m *Meter) IntervalEnd(at time.Time) float64 {
	now := time.Now()
	p, err := m.sampler.FS.ReadProc(0)
	if err != nil {
		m.errs = append(m.errs, fmt.Sprintf("the interval ending %s: its cores (0) are not measured: %v", at.UTC().Format(time.RFC3339Nano), err))
		return 0
	}
	c := usage.ProcCPU(m.last, p, now.Sub(m.lastAt).Seconds())
	m.last, m.lastAt = p, now
	return c.Cores
}

// WindowEnd implements Probe.
func (m *Meter) WindowEnd(at time.Time) {
	m.end = m.take()
	m.ended = true
}

// Usage returns what was measured between the window edges (false when the window never closed).
func (m *Meter) Usage() (usage.Usage, bool) {
	if !m.started || !m.ended {
		return usage.Usage{}, false
	}
	return usage.Diff(m.start, m.end), true
}

// NewRecord turns a session's Result and (optionally) its Meter into the v1 result record.
// Every cores_per_gbps divides by this side's application Mbps (per_gbps_of "mbps"); the
// interface figures are those of the interface holding the session's local address; what
// could not be measured is listed in the record's Unmeasured, never left to read as 0.
func NewRecord(r *Result, m *Meter) *result.Record {
	rec := &result.Record{
		Schema:       result.Schema,
		Role:         r.Role,
		Direction:    string(r.Direction),
		Sending:      r.Sending,
		Addr:         r.Local,
		Mbps:         r.Mbps(),
		Bytes:        r.WindowBytes,
		TotalBytes:   r.TotalBytes,
		Seconds:      r.WindowSeconds,
		Conns:        r.Conns,
		BufferBytes:  r.Buffer,
		SetupSeconds: r.SetupSeconds,
		TCP:          result.TCP{Retransmits: r.Retransmits, WindowRetransmits: r.WindowRetransmits, MinRTTMicros: r.MinRTT, MaxSRTTAtEndMicros: r.MaxRTT},
		Intervals:    make([]result.Interval, 0, len(r.Intervals)),
		PID:          os.Getpid(),
		PerGbpsOf:    result.PerGbpsOfMbps,
	}
	if !r.Started.IsZero() {
		rec.StartedAt = r.Started.UTC().Format(time.RFC3339Nano)
	}
	if h, err := os.Hostname(); err == nil {
		rec.Host = h
	}
	s := r.Sockets
	rec.Sockets = &s
	for _, iv := range r.Intervals {
		rec.Intervals = append(rec.Intervals, result.Interval(iv))
	}
	if r.WindowSeconds > 0 && r.Conns > 0 {
		rec.PerConn = &result.PerConn{
			MinBytes: r.PerConnMin,
			MaxBytes: r.PerConnMax,
			MinMbps:  float64(r.PerConnMin) * 8 / r.WindowSeconds / 1e6,
			MaxMbps:  float64(r.PerConnMax) * 8 / r.WindowSeconds / 1e6,
		}
	}
	if m != nil {
		if u, ok := m.Usage(); ok {
			iface, err := usage.InterfaceOfAddr(r.Local)
			why := ""
			if err != nil {
				why = err.Error()
			}
			u.Fill(rec, iface, why)
		} else {
			why := "the measurement window never opened"
			for _, fig := range []string{result.UnmeasuredCPU, result.UnmeasuredNode, result.UnmeasuredIface, result.UnmeasuredTCP} {
				usage.Unmeasured(rec, fig, fmt.Sprintf("no %s figures: %s", fig, why))
			}
			for _, name := range slices.Sorted(maps.Keys(m.sampler.Watch)) {
				usage.Unmeasured(rec, result.UnmeasuredWatched+name, fmt.Sprintf("watched %q not measured: %s", name, why))
			}
		}
		for _, e := range m.errs {
			rec.Notes = append(rec.Notes, "sampling: "+e)
		}
	} else {
		for _, fig := range []string{result.UnmeasuredCPU, result.UnmeasuredNode, result.UnmeasuredIface, result.UnmeasuredTCP} {
			usage.Unmeasured(rec, fig, fmt.Sprintf("no %s figures: the session ran without a meter", fig))
		}
	}
	if r.Sending && (r.Pace != Pace{}) {
		rec.Pacing = &result.Pacing{RateBytesPerSec: r.Pace.RateBytes, MsgsPerSec: r.Pace.MsgsPerSec, MsgBytes: r.Pace.MsgBytes}
	}
	if r.Err != nil {
		rec.Error = r.Err.Error()
	}
	return rec
}
