package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/pathcost/pathcost/pkg/result"
	"github.com/pathcost/pathcost/pkg/units"
	"github.com/pathcost/pathcost/pkg/usage"
)

// RoleSample is the role of a `tcpload sample` record.
const RoleSample = "sample"

func runSample(ctx context.Context, args []string) int {
	var jsonOut, label, iface string
	var dur, warm, every time.Duration = 10 * time.Second, 0, 100 * time.Millisecond
	watch := watchFlag{}
	fs := flag.NewFlagSet("sample", flag.ContinueOnError)
	fs.Var((*units.Duration)(&dur), "duration", "length of the measurement window")
	fs.Var((*units.Duration)(&warm), "warmup", "wait this long before the window opens")
	fs.Var((*units.Duration)(&every), "series-interval", "also record the machine's CPU counters every D over the window (node_series; 0 = off)")
	fs.Var(watch, "watch", "NAME=PID: also measure that process's CPU (repeatable)")
	fs.StringVar(&iface, "iface", "", "the interface whose figures are the record's iface totals (without it only the per-interface figures)")
	fs.StringVar(&jsonOut, "json", "", "write the record as JSON to FILE (- = standard output)")
	fs.StringVar(&label, "label", "", "free text stored in the record")
	fs.Usage = usageFunc(fs, "sample [flags]", "Measures, over one window, the machine's CPU (user/sys/softirq/irq/steal), the interfaces\nand TCP counters of the network namespace it runs in, and watched processes: what a\nforwarding node (NodePort) costs. It also records the machine's CPU counters every\n--series-interval (node_series), from which the figures over any window inside its own\n(a client's) are computed afterwards. Writes a record with role \"sample\".")
	if err := parseFlags(fs, args); err != nil {
		return exitCode(err)
	}
	if dur <= 0 {
		return exitCode(usageErr("sample: --duration %s: must be positive", dur))
	}
	if warm < 0 {
		return exitCode(usageErr("sample: --warmup %s: must not be negative", warm))
	}
	if every != 0 && (every < usage.MinSeriesInterval || every > dur) {
		return exitCode(usageErr("sample: --series-interval %s: want 0 (off) or %s..--duration", every, usage.MinSeriesInterval))
	}
	rec, err := sample(ctx, dur, warm, every, iface, watch)
	rec.Label = label
	printSample(rec)
	if jsonOut != "" {
		if werr := rec.WriteFile(jsonOut); werr != nil {
			return exitCode(werr)
		}
	}
	if err != nil {
		return exitCode(err)
	}
	return 0
}

// sample measures one window, recording the node series every `every` (0: none) on its own
// goroutine; a cancelled ctx ends it early with the record's error set.
func sample(ctx context.Context, dur, warm, every time.Duration, iface string, watch map[string]int) (*result.Record, error) {
	rec := &result.Record{Schema: result.Schema, Role: RoleSample, PID: os.Getpid(), Intervals: []result.Interval{}}
	if h, err := os.Hostname(); err == nil {
		rec.Host = h
	}
	select {
	case <-ctx.Done():
		rec.Error = "interrupted before the window opened"
		return rec, fmt.Errorf("sample: %s", rec.Error)
	case <-time.After(warm):
	}
	fsys, err := usage.Default()
	if err != nil {
		rec.Error = err.Error()
		return rec, fmt.Errorf("sample: %w", err)
	}
	stopSeries := func() ([]result.NodeSample, error) { return nil, nil }
	if every > 0 {
		// the first sample is read now, before the window's first reading; the last one after
		// the window's last
		if stopSeries, err = fsys.StartNodeSeries(every); err != nil {
			rec.Error = err.Error()
			return rec, fmt.Errorf("sample: %w", err)
		}
	}
	s := &usage.Sampler{Watch: watch, FS: fsys}
	a, err := s.Take()
	if err != nil {
		stopSeries()
		rec.Error = err.Error()
		return rec, fmt.Errorf("sample: %w", err)
	}
	rec.StartedAt = a.At.UTC().Format(time.RFC3339Nano)
	var stopErr error
	select {
	case <-ctx.Done():
		stopErr = fmt.Errorf("sample: interrupted %.1f s into the %s window", time.Since(a.At).Seconds(), dur)
	case <-time.After(dur):
	}
	b, err := s.Take()
	var serr error
	if rec.NodeSeries, serr = stopSeries(); serr != nil {
		rec.Notes = append(rec.Notes, serr.Error())
	}
	if err != nil {
		rec.Error = err.Error()
		return rec, fmt.Errorf("sample: %w", err)
	}
	u := usage.Diff(a, b)
	rec.Seconds = u.Seconds
	why := ""
	if iface == "" {
		why = "no --iface given: see the per-interface figures"
	}
	u.Fill(rec, iface, why)
	if stopErr != nil {
		rec.Error = stopErr.Error()
	}
	return rec, stopErr
}

func printSample(r *result.Record) {
	fmt.Fprintf(stderr, "sample: %.2f s; machine busy %.2f of %d cores (user %.2f, sys %.2f, softirq %.2f, steal %.2f), idle %.1f%%; %d series samples\n",
		r.Seconds, r.Node.BusyCores, r.Node.NumCPU, r.Node.UserCores, r.Node.SysCores, r.Node.SoftirqCores, r.Node.StealCores, r.Node.IdlePct, len(r.NodeSeries))
	if r.Iface.Name != "" {
		fmt.Fprintf(stderr, "sample: %s rx %.1f Mbps tx %.1f Mbps\n", r.Iface.Name, r.Iface.RxMbps, r.Iface.TxMbps)
	}
	for name, c := range r.Watched {
		fmt.Fprintf(stderr, "sample: watched %s %.3f cores\n", name, c.Cores)
	}
	if r.Error != "" {
		fmt.Fprintf(stderr, "sample: error: %s\n", r.Error)
	}
}
