package usage

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/pathcost/pathcost/pkg/result"
)

// MinSeriesInterval is the shortest interval NodeSeries accepts: /proc/stat counts in 10 ms
// units, so closer samples tell nothing more.
const MinSeriesInterval = 10 * time.Millisecond

// NodeSeries reads the machine's CPU counters (/proc/stat, one read per sample) at once, then
// every interval, and a last time when ctx is done, and returns the samples in order. It
// runs until ctx is done: call it on its own goroutine. Samples that could not be read are
// left out; the error says how many and why (the samples returned are still valid).
func (f *FS) NodeSeries(ctx context.Context, interval time.Duration) ([]result.NodeSample, error) {
	if interval < MinSeriesInterval {
		return nil, fmt.Errorf("node series: interval %s is below %s", interval, MinSeriesInterval)
	}
	var out []result.NodeSample
	var errs []error
	failed := 0
	read := func() {
		at := time.Now()
		n, err := f.ReadNode()
		if err != nil {
			if failed++; len(errs) < 3 {
				errs = append(errs, err)
			}
			return
		}
		out = append(out, n.Sample(at.UnixNano()))
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	read()
	for {
		select {
		case <-ctx.Done():
			read()
			if failed > 0 {
				return out, fmt.Errorf("node series: %d of %d samples could not be read: %w", failed, failed+len(out), errors.Join(errs...))
			}
			return out, nil
		case <-t.C:
			read()
		}
	}
}
