package usage

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/pathcost/pathcost/pkg/result"
)

// MinSeriesInterval is the shortest interval StartNodeSeries accepts: /proc/stat counts in
// 10 ms units, so closer samples tell nothing more.
const MinSeriesInterval = 10 * time.Millisecond

// StartNodeSeries reads the machine's CPU counters (/proc/stat, one read per sample) once
// before it returns, then every interval on its own goroutine, until the returned stop is
// called: stop reads a last sample and returns the series in order. So a window measured
// between StartNodeSeries and stop is covered by the series. Samples that could not be read
// are left out; stop's error says how many and why (the samples returned are still valid).
func (f *FS) StartNodeSeries(interval time.Duration) (stop func() ([]result.NodeSample, error), err error) {
	if interval < MinSeriesInterval {
		return nil, fmt.Errorf("node series: interval %s is below %s", interval, MinSeriesInterval)
	}
	var (
		out    []result.NodeSample
		errs   []error
		failed int
	)
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
	read()
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				read()
			}
		}
	}()
	var once sync.Once
	return func() ([]result.NodeSample, error) {
		once.Do(func() {
			close(done)
			wg.Wait()
			read()
		})
		if failed > 0 {
			return out, fmt.Errorf("node series: %d of %d samples could not be read: %w", failed, failed+len(out), errors.Join(errs...))
		}
		return out, nil
	}, nil
}
