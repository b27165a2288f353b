package nskube

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/pathcost/pathcost/pkg/usage"
)

// ProcRef identifies a process across PID reuse: its PID and its start time (clock ticks after
// boot, field 22 of /proc/PID/stat).
type ProcRef struct {
	PID   int    `json:"pid"`
	Start uint64 `json:"start"`
}

// procRef returns the ProcRef of a running process (nil if it is gone).
func procRef(pid int) *ProcRef {
	st, err := usage.ProcStart(pid)
	if err != nil {
		return nil
	}
	return &ProcRef{PID: pid, Start: st}
}

// Alive says whether the process is still running (the same one, not a reuse of its PID).
func (r *ProcRef) Alive() bool {
	if r == nil {
		return false
	}
	st, err := usage.ProcStart(r.PID)
	return err == nil && st == r.Start
}

// sweepStale tears down every cluster under root that has an owner (made by the provider) when
// its owner and its reaper are both gone. Clusters of `tcpload cluster up` have no owner and are
// never swept.
func sweepStale(ctx context.Context, root string, out io.Writer) {
	ents, err := os.ReadDir(root)
	if err != nil {
		return
	}
	for _, e := range ents {
		if !e.IsDir() || ValidName(e.Name()) != nil {
			continue
		}
		st, err := LoadState(root, e.Name())
		if err != nil || st.Owner == nil || st.Owner.Alive() || st.Reaper.Alive() {
			continue
		}
		fmt.Fprintf(out, "nskube: cluster %s: its process (pid %d) and reaper are gone; tearing it down\n", st.Name, st.Owner.PID)
		if err := DownState(ctx, st, out); err != nil {
			fmt.Fprintf(out, "nskube: stale cluster %s: %v\n", st.Name, err)
		}
	}
}
