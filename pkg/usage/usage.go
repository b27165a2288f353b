// Package usage measures what a workload costs in CPU and network from /proc:
// cumulative counters read with github.com/prometheus/procfs at the edges of a measurement
// window, and deltas turned into the record types of pkg/result.
//
// Counters are cumulative; a window is measured by reading them twice (a Snapshot at each edge,
// see Sampler) and subtracting (Diff, or ProcCPU, NodeCPU, IfaceDelta, TCPDelta). Reading costs
// a few hundred microseconds of CPU, so it belongs at interval edges, never in a hot loop.
//
// Network counters (net/dev, net/snmp) belong to a network namespace. /proc/PID/net shows the
// namespace of the thread whose id is PID: for a process (a thread-group id) that is the main
// thread's namespace. A Go program that entered another namespace with setns on a locked OS
// thread must pass that thread's id (unix.Gettid()) to see the namespace it entered.
package usage

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/prometheus/procfs"
)

// userHZ is the kernel's USER_HZ, the unit of the tick counters in /proc/PID/stat. procfs
// hard-codes the same value (unexported) for ProcStat.CPUTime and for /proc/stat; a test checks
// that the two agree.
const userHZ = 100

// DefaultProcRoot is where proc is mounted on a normal system.
const DefaultProcRoot = procfs.DefaultMountPoint

// ProcTimes is the cumulative CPU time of a process, all its threads.
type ProcTimes struct {
	// User and System are CPU seconds spent in user and kernel mode (utime, stime of
	// /proc/PID/stat), in 10 ms units, the threads that exited included.
	User, System float64
	// Tasks holds each live thread's CPU time in nanoseconds (the scheduler's sum_exec_runtime,
	// first field of /proc/PID/task/TID/schedstat), by thread id; nil when it could not be read
	// (no such files, or a kernel without CONFIG_SCHED_INFO, whose files read "0 0 0"). It is
	// what ProcCPU measures with when both readings have it and no thread exited in between.
	Tasks map[int]uint64
	// Start is the process start time in clock ticks after boot. Two readings with different
	// Start values are of different processes (the pid was reused); ProcCPU then reports zero.
	Start uint64
}

// Total returns User+System.
func (t ProcTimes) Total() float64 { return t.User + t.System }

// NodeTimes is the cumulative CPU time of the machine, in seconds summed over all CPUs, from
// the "cpu" line of /proc/stat. Guest time is already included in User by the kernel.
type NodeTimes struct {
	// NumCPU is the number of per-CPU lines in /proc/stat (the online CPUs).
	NumCPU int
	// User, Nice, System, Idle, IOWait, IRQ, SoftIRQ and Steal are the cumulative seconds of
	// the /proc/stat columns of the same names.
	User, Nice, System, Idle, IOWait, IRQ, SoftIRQ, Steal float64
}

// DevCounters are the cumulative counters of one network interface from /proc/PID/net/dev.
type DevCounters struct {
	RxBytes, TxBytes, RxPackets, TxPackets uint64
}

// TCPCounters are the namespace-wide cumulative TCP counters from /proc/PID/net/snmp.
type TCPCounters struct {
	InSegs, OutSegs, RetransSegs uint64
}

// FS reads accounting data below one proc mount (normally /proc; a fixture directory in
// tests). Its methods are safe for concurrent use.
type FS struct {
	root string
	fs   procfs.FS

	selfOnce sync.Once
	self     procfs.Proc
	selfErr  error
}

// NewFS returns an FS reading the proc filesystem mounted at procRoot.
func NewFS(procRoot string) (*FS, error) {
	fs, err := procfs.NewFS(procRoot)
	if err != nil {
		return nil, fmt.Errorf("open proc filesystem %s: %w", procRoot, err)
	}
	return &FS{root: procRoot, fs: fs}, nil
}

// Root returns the proc mount point f reads.
func (f *FS) Root() string { return f.root }

var defaultFS = sync.OnceValues(func() (*FS, error) { return NewFS(DefaultProcRoot) })

// Default returns the FS for /proc, created once per program.
func Default() (*FS, error) { return defaultFS() }

// procPath names /proc/PID (or /proc/self for pid 0) under f's root, for error messages.
func (f *FS) procPath(pid int, elem ...string) string {
	name := "self"
	if pid != 0 {
		name = strconv.Itoa(pid)
	}
	return filepath.Join(append([]string{f.root, name}, elem...)...)
}

// proc returns the procfs handle of pid (0 means the calling process).
func (f *FS) proc(pid int) (procfs.Proc, error) {
	switch {
	case pid < 0:
		return procfs.Proc{}, fmt.Errorf("invalid pid %d", pid)
	case pid == 0:
		f.selfOnce.Do(func() { f.self, f.selfErr = f.fs.Self() })
		return f.self, f.selfErr
	default:
		return f.fs.Proc(pid)
	}
}

// safely runs a procfs parser, turning a panic on malformed input (procfs indexes fields
// without checking, e.g. a short net/dev line or a stat line ending at ")") into an error.
func safely[T any](read func() (T, error)) (v T, err error) {
	defer func() {
		if r := recover(); r != nil {
			var zero T
			v, err = zero, fmt.Errorf("%w: malformed input: %v", procfs.ErrFileParse, r)
		}
	}()
	return read()
}

// ReadProc reads the cumulative CPU time of process pid (0 means the calling process): its
// /proc/PID/stat and, when they can be read, its threads' schedstat files (Tasks).
func (f *FS) ReadProc(pid int) (ProcTimes, error) {
	p, err := f.proc(pid)
	if err != nil {
		return ProcTimes{}, fmt.Errorf("read %s: %w", f.procPath(pid, "stat"), err)
	}
	st, err := safely(p.Stat)
	if err != nil {
		return ProcTimes{}, fmt.Errorf("read %s: %w", f.procPath(pid, "stat"), err)
	}
	return ProcTimes{
		User:   float64(st.UTime) / userHZ,
		System: float64(st.STime) / userHZ,
		Tasks:  f.readTasks(pid),
		Start:  st.Starttime,
	}, nil
}

// readTasks reads the CPU time in nanoseconds of each thread of pid from
// /proc/PID/task/TID/schedstat; nil when the task directory cannot be listed, no file can be
// read, or every thread reads 0 (the kernel keeps no scheduler info). A thread that exits
// while the directory is read is skipped.
func (f *FS) readTasks(pid int) map[int]uint64 {
	dir := f.procPath(pid, "task")
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	out := make(map[int]uint64, len(ents))
	var any uint64
	for _, e := range ents {
		tid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, e.Name(), "schedstat"))
		if err != nil {
			continue
		}
		first, _, _ := strings.Cut(strings.TrimSpace(string(data)), " ")
		ns, err := strconv.ParseUint(first, 10, 64)
		if err != nil {
			continue
		}
		out[tid] = ns
		any |= ns
	}
	if len(out) == 0 || any == 0 {
		return nil
	}
	return out
}

// ReadNode reads the machine's cumulative CPU time from /proc/stat.
func (f *FS) ReadNode() (NodeTimes, error) {
	path := filepath.Join(f.root, "stat")
	st, err := safely(f.fs.Stat)
	if err != nil {
		return NodeTimes{}, fmt.Errorf("read %s: %w", path, err)
	}
	if len(st.CPU) == 0 {
		return NodeTimes{}, fmt.Errorf("read %s: %w: no per-CPU lines", path, procfs.ErrFileParse)
	}
	c := st.CPUTotal
	return NodeTimes{
		NumCPU: len(st.CPU),
		User:   c.User, Nice: c.Nice, System: c.System, Idle: c.Idle,
		IOWait: c.Iowait, IRQ: c.IRQ, SoftIRQ: c.SoftIRQ, Steal: c.Steal,
	}, nil
}

// ReadNetDev reads the interface counters of the network namespace pid lives in
// (/proc/PID/net/dev, what `sar -n DEV` shows; 0 means the calling process), keyed by
// interface name.
func (f *FS) ReadNetDev(pid int) (map[string]DevCounters, error) {
	path := f.procPath(pid, "net", "dev")
	p, err := f.proc(pid)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	nd, err := safely(p.NetDev)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	out := make(map[string]DevCounters, len(nd))
	for name, l := range nd {
		out[name] = DevCounters{RxBytes: l.RxBytes, TxBytes: l.TxBytes, RxPackets: l.RxPackets, TxPackets: l.TxPackets}
	}
	return out, nil
}

// ReadTCP reads the TCP segment counters of the network namespace pid lives in
// (/proc/PID/net/snmp; 0 means the calling process).
func (f *FS) ReadTCP(pid int) (TCPCounters, error) {
	path := f.procPath(pid, "net", "snmp")
	p, err := f.proc(pid)
	if err != nil {
		return TCPCounters{}, fmt.Errorf("read %s: %w", path, err)
	}
	sn, err := safely(p.Snmp)
	if err != nil {
		return TCPCounters{}, fmt.Errorf("read %s: %w", path, err)
	}
	var c TCPCounters
	for _, fld := range []struct {
		name string
		v    *float64
		dst  *uint64
	}{
		{"InSegs", sn.Tcp.InSegs, &c.InSegs},
		{"OutSegs", sn.Tcp.OutSegs, &c.OutSegs},
		{"RetransSegs", sn.Tcp.RetransSegs, &c.RetransSegs},
	} {
		// procfs parses counters as float64: exact up to 2^53, far beyond any real count.
		if fld.v == nil || !(*fld.v >= 0) {
			return TCPCounters{}, fmt.Errorf("read %s: %w: no valid Tcp %s", path, procfs.ErrFileParse, fld.name)
		}
		*fld.dst = uint64(*fld.v)
	}
	return c, nil
}

// ReadProc reads the cumulative CPU time of process pid from /proc (0 means the calling
// process).
func ReadProc(pid int) (ProcTimes, error) {
	f, err := Default()
	if err != nil {
		return ProcTimes{}, err
	}
	return f.ReadProc(pid)
}

// ReadNode reads the machine's cumulative CPU time from /proc/stat.
func ReadNode() (NodeTimes, error) {
	f, err := Default()
	if err != nil {
		return NodeTimes{}, err
	}
	return f.ReadNode()
}

// ReadNetDev reads /proc/PID/net/dev: the interface counters of pid's network namespace
// (0 means the calling process).
func ReadNetDev(pid int) (map[string]DevCounters, error) {
	f, err := Default()
	if err != nil {
		return nil, err
	}
	return f.ReadNetDev(pid)
}

// ReadTCP reads /proc/PID/net/snmp: the TCP counters of pid's network namespace (0 means the
// calling process).
func ReadTCP(pid int) (TCPCounters, error) {
	f, err := Default()
	if err != nil {
		return TCPCounters{}, err
	}
	return f.ReadTCP(pid)
}
