package usage

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/pathcost/pathcost/pkg/result"
)

// Snapshot is one reading of every counter a Sampler watches, taken at At.
type Snapshot struct {
	// At is when the reading started, just before /proc/stat was read (monotonic clock
	// included, for Diff); the CPU counters (node, process, watched) are read right after it,
	// back to back, and the network counters last.
	At time.Time
	// Proc is the sampled process's CPU time.
	Proc ProcTimes
	// Node is the machine's CPU time.
	Node NodeTimes
	// Net is the interface counters of the sampled process's network namespace.
	Net map[string]DevCounters
	// TCP is the TCP counters of the sampled process's network namespace.
	TCP TCPCounters
	// Watched holds the CPU time of each watched process that could be read, by name.
	Watched map[string]ProcTimes
	// Missing lists, sorted, the watched processes that could not be read (e.g. the
	// process has exited); WatchErr says why.
	Missing []string
	// WatchErr joins the errors behind Missing; nil when nothing is missing.
	WatchErr error
	// Unread names the parts of this reading that failed ("process", "node", "interfaces",
	// "tcp"): their fields are zero and mean nothing.
	Unread []string
}

// Sampler reads a process's CPU, the node's CPU, the process's network namespace counters
// and the CPU of other watched processes, all at once, at measurement edges.
// The zero value samples the calling process through /proc. A Sampler is safe for concurrent
// use; its fields must not change after the first Take.
type Sampler struct {
	// PID is the process sampled (CPU, and the network namespace); 0 means the caller.
	PID int
	// Watch names other processes whose CPU is sampled too (e.g. "sidecar" -> envoy's pid).
	Watch map[string]int
	// FS is the proc filesystem read; nil means /proc (Default).
	FS *FS

	once  sync.Once
	fs    *FS
	fsErr error
}

// NewSampler returns a Sampler of pid (0 means the caller) and the watched processes,
// reading /proc.
func NewSampler(pid int, watch map[string]int) *Sampler {
	return &Sampler{PID: pid, Watch: watch}
}

// NewSamplerFS returns a Sampler reading the proc filesystem mounted at procRoot (a fixture
// directory in tests).
func NewSamplerFS(procRoot string, pid int, watch map[string]int) (*Sampler, error) {
	f, err := NewFS(procRoot)
	if err != nil {
		return nil, err
	}
	return &Sampler{PID: pid, Watch: watch, FS: f}, nil
}

func (s *Sampler) init() (*FS, error) {
	s.once.Do(func() {
		if s.FS != nil {
			s.fs = s.FS
			return
		}
		s.fs, s.fsErr = Default()
	})
	return s.fs, s.fsErr
}

// Take reads every counter once: first the CPU counters back to back (the node's /proc/stat
// right after At, then the sampled process and the watched processes), so that the
// machine and the processes are read at nearly the same instant, then the network counters.
// Failing to read the sampled process, the node or the network namespace is an error (the
// Snapshot then holds what could be read); a watched process that cannot be read
// (it has exited) is not: it is listed in Missing.
func (s *Sampler) Take() (Snapshot, error) {
	f, err := s.init()
	if err != nil {
		return Snapshot{At: time.Now()}, fmt.Errorf("sample: %w", err)
	}
	snap := Snapshot{At: time.Now()}
	var errs []error
	if snap.Node, err = f.ReadNode(); err != nil {
		errs = append(errs, err)
		snap.Unread = append(snap.Unread, PartNode)
	}
	if snap.Proc, err = f.ReadProc(s.PID); err != nil {
		errs = append(errs, err)
		snap.Unread = append(snap.Unread, PartProcess)
	}

	var watchErrs []error
	if len(s.Watch) > 0 {
		snap.Watched = make(map[string]ProcTimes, len(s.Watch))
		for name, pid := range s.Watch {
			t, err := f.ReadProc(pid)
			if err != nil {
				snap.Missing = append(snap.Missing, name)
				watchErrs = append(watchErrs, fmt.Errorf("watched %q (pid %d): %w", name, pid, err))
				continue
			}
			snap.Watched[name] = t
		}
	}
	slices.Sort(snap.Missing)
	snap.WatchErr = errors.Join(watchErrs...)

	if snap.Net, err = f.ReadNetDev(s.PID); err != nil {
		errs = append(errs, err)
		snap.Unread = append(snap.Unread, PartInterfaces)
	}
	if snap.TCP, err = f.ReadTCP(s.PID); err != nil {
		errs = append(errs, err)
		snap.Unread = append(snap.Unread, PartTCP)
	}
	return snap, errors.Join(errs...)
}

// The parts of a Snapshot that can fail to be read (Snapshot.Unread, Usage.Unmeasured).
const (
	PartProcess    = "process"
	PartNode       = "node"
	PartInterfaces = "interfaces"
	PartTCP        = "tcp"
)

// Usage is what happened between two Snapshots.
type Usage struct {
	// Start and End are the snapshots' times (their At).
	Start, End time.Time
	// Seconds is the time between the snapshots (0 when b is not after a).
	Seconds float64
	// CPU is the sampled process's CPU (CoresPerGbps left 0).
	CPU result.CPU
	// Node is the machine's CPU (CoresPerGbps left 0).
	Node result.Node
	// Iface is the traffic of the sampled process's network namespace.
	Iface result.Iface
	// TCP is the namespace-wide TCP segment counts (Retransmits left 0).
	TCP result.TCP
	// Watched is the CPU of each watched process read at both edges (same process at both).
	Watched map[string]result.CPU
	// Missing lists, sorted, the watched names missing at either edge, or whose pid was reused
	// by another process in between.
	Missing []string
	// Unmeasured lists the parts (Part*) not read at both edges: their figures are left zero
	// rather than computed against a zero reading (which would count everything since boot).
	Unmeasured []string
	// Coarse lists, sorted, the processes whose CPU came from the 10 ms utime/stime units
	// instead of the threads' nanosecond times (a thread exited during the window, or the
	// kernel keeps no scheduler info): PartProcess for the sampled process, else the watched
	// name.
	Coarse []string
}

// Diff returns the usage between snapshots a and b (b taken after a). It never returns
// negative, NaN or infinite numbers: see ProcCPU, NodeCPU, IfaceDelta, TCPDelta.
func Diff(a, b Snapshot) Usage {
	sec := max(b.At.Sub(a.At).Seconds(), 0)
	u := Usage{Start: a.At, End: b.At, Seconds: sec}
	read := func(part string) bool {
		if slices.Contains(a.Unread, part) || slices.Contains(b.Unread, part) {
			u.Unmeasured = append(u.Unmeasured, part)
			return false
		}
		return true
	}
	if read(PartProcess) {
		var precise bool
		if u.CPU, precise = procCPU(a.Proc, b.Proc, sec); !precise {
			u.Coarse = append(u.Coarse, PartProcess)
		}
	}
	if read(PartNode) {
		u.Node = NodeCPU(a.Node, b.Node, sec)
	}
	if read(PartInterfaces) {
		u.Iface = IfaceDelta(a.Net, b.Net, sec)
	}
	if read(PartTCP) {
		u.TCP = TCPDelta(a.TCP, b.TCP)
	}
	missing := map[string]bool{}
	for _, n := range a.Missing {
		missing[n] = true
	}
	for _, n := range b.Missing {
		missing[n] = true
	}
	if len(a.Watched)+len(b.Watched) > 0 {
		u.Watched = make(map[string]result.CPU, len(b.Watched))
		for name, tb := range b.Watched {
			ta, ok := a.Watched[name]
			switch {
			case !ok:
				missing[name] = true
			case ta.Start != 0 && tb.Start != 0 && ta.Start != tb.Start:
				missing[name] = true // pid reused by another process
			default:
				c, precise := procCPU(ta, tb, sec)
				u.Watched[name] = c
				if !precise {
					u.Coarse = append(u.Coarse, name)
				}
			}
		}
		for name := range a.Watched {
			if _, ok := b.Watched[name]; !ok {
				missing[name] = true
			}
		}
	}
	if len(missing) > 0 {
		u.Missing = slices.Sorted(maps.Keys(missing))
	}
	slices.Sort(u.Coarse)
	return u
}
