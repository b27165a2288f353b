package tcpload

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/pathcost/pathcost/pkg/result"
)

// WatchTarget names a process to measure beside this one: by PID, or by its command name (comm,
// as in /proc/PID/comm and ps -o comm), found among the processes this one can see when the
// window opens — a pod with shareProcessNamespace sees its sidecar.
type WatchTarget struct {
	PID  int    // > 0: this process
	Comm string // otherwise: every visible process with this comm
}

// ParseWatchTarget parses "PID" or "comm:PROCNAME".
func ParseWatchTarget(s string) (WatchTarget, error) {
	if name, ok := strings.CutPrefix(s, "comm:"); ok {
		if name == "" || strings.ContainsAny(name, "/\n") {
			return WatchTarget{}, fmt.Errorf("%q: want comm:PROCNAME", s)
		}
		return WatchTarget{Comm: name}, nil
	}
	pid, err := strconv.Atoi(s)
	if err != nil || pid <= 0 {
		return WatchTarget{}, fmt.Errorf("%q: want a positive PID or comm:PROCNAME", s)
	}
	return WatchTarget{PID: pid}, nil
}

// commLen is the longest comm the kernel keeps (TASK_COMM_LEN - 1).
const commLen = 15

// FindComm returns the PIDs of the processes under procRoot (normally /proc) whose comm is comm
// (compared on the kernel's 15 characters), leaving out this process. No match is an error
// naming comm.
func FindComm(procRoot, comm string) ([]int, error) {
	want := comm
	if len(want) > commLen {
		want = want[:commLen]
	}
	entries, err := os.ReadDir(procRoot)
	if err != nil {
		return nil, fmt.Errorf("find process %q: %w", comm, err)
	}
	self := os.Getpid()
	var pids []int
	for _, de := range entries {
		pid, err := strconv.Atoi(de.Name())
		if err != nil || pid == self {
			continue
		}
		b, err := os.ReadFile(filepath.Join(procRoot, de.Name(), "comm"))
		if err != nil {
			continue // exited meanwhile
		}
		if strings.TrimSuffix(string(b), "\n") == want {
			pids = append(pids, pid)
		}
	}
	if len(pids) == 0 {
		return nil, fmt.Errorf("watch: no process named %q (comm) is visible from this one", comm)
	}
	slices.Sort(pids)
	return pids, nil
}

// WatchMeter is a Probe that resolves watch targets to PIDs when the window opens, then measures
// this process, the node and the targets with a Meter. Several processes matching one comm name
// are measured one by one and summed in the record.
type WatchMeter struct {
	targets  map[string]WatchTarget
	procRoot string
	meter    *Meter
	matched  map[string][]int // name -> PIDs found for a comm target
	err      error
}

// NewWatchMeter returns a WatchMeter for targets (name -> target); it checks that a Meter can be
// made here.
func NewWatchMeter(targets map[string]WatchTarget) (*WatchMeter, error) {
	if _, err := NewMeter(nil); err != nil {
		return nil, err
	}
	return &WatchMeter{targets: targets, procRoot: "/proc", matched: map[string][]int{}}, nil
}

// partName is the name a matched process is sampled under before the record sums it.
func partName(name string, i int) string { return fmt.Sprintf("%s#%d", name, i+1) }

// WindowStart implements Probe: it resolves the targets and starts measuring.
func (w *WatchMeter) WindowStart(at time.Time) {
	pids := map[string]int{}
	var errs []error
	for name, t := range w.targets {
		if t.PID > 0 {
			pids[name] = t.PID
			continue
		}
		found, err := FindComm(w.procRoot, t.Comm)
		if err != nil {
			errs = append(errs, fmt.Errorf("--watch %s=comm:%s: %w", name, t.Comm, err))
			continue
		}
		w.matched[name] = found
		for i, pid := range found {
			pids[partName(name, i)] = pid
		}
	}
	w.err = errors.Join(errs...)
	m, err := NewMeter(pids)
	if err != nil {
		w.err = errors.Join(w.err, err)
		return
	}
	w.meter = m
	m.WindowStart(at)
}

// IntervalEnd implements Probe.
func (w *WatchMeter) IntervalEnd(at time.Time) float64 {
	if w.meter == nil {
		return 0
	}
	return w.meter.IntervalEnd(at)
}

// WindowEnd implements Probe.
func (w *WatchMeter) WindowEnd(at time.Time) {
	if w.meter != nil {
		w.meter.WindowEnd(at)
	}
}

// Err is the error of resolving the targets (nil when every target was found).
func (w *WatchMeter) Err() error { return w.err }

// Record is NewRecord with the processes of each comm target summed under its name, a note
// saying how many matched, and a failed resolution as the record's error.
func (w *WatchMeter) Record(r *Result) *result.Record {
	var m *Meter
	if w != nil {
		m = w.meter
	}
	rec := NewRecord(r, m)
	if w == nil {
		return rec
	}
	names := make([]string, 0, len(w.matched))
	for name := range w.matched {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		found := w.matched[name]
		var sum result.CPU
		n := 0
		for i := range found {
			part := partName(name, i)
			if c, ok := rec.Watched[part]; ok {
				sum.Cores += c.Cores
				sum.UserCores += c.UserCores
				sum.SysCores += c.SysCores
				n++
				delete(rec.Watched, part)
			}
		}
		if n > 0 {
			sum.CoresPerGbps = result.CoresPerGbps(sum.Cores, rec.Mbps)
			rec.Watched[name] = sum
		}
		rec.Notes = append(rec.Notes, fmt.Sprintf("watched %q: comm %q matched %d process(es) at window start (pids %v); %d measured at both edges, summed",
			name, w.targets[name].Comm, len(found), found, n))
	}
	if w.err != nil {
		msg := w.err.Error()
		if rec.Error != "" {
			msg = rec.Error + "; " + msg
		}
		rec.Error = msg
	}
	return rec
}
