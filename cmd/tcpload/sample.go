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
	var jsonOut, label string
	var dur, warm time.Duration = 10 * time.Second, 0
	watch := watchFlag{}
	fs := flag.NewFlagSet("sample", flag.ContinueOnError)
	fs.Var((*units.Duration)(&dur), "duration", "length of the measurement window")
	fs.Var((*units.Duration)(&warm), "warmup", "wait this long before the window opens")
	fs.Var(watch, "watch", "NAME=PID: also measure that process's CPU (repeatable)")
	fs.StringVar(&jsonOut, "json", "", "write the record as JSON to FILE (- = standard output)")
	fs.StringVar(&label, "label", "", "free text stored in the record")
	fs.Usage = usageFunc(fs, "sample [flags]", "Measures, over one window, the machine's CPU (user/sys/softirq/irq/steal), the interfaces\nand TCP counters of the network namespace it runs in, and watched processes: what a\nforwarding node (NodePort) costs. Writes a record with role \"sample\".")
	if err := parseFlags(fs, args); err != nil {
		return exitCode(err)
	}
	if dur <= 0 {
		return exitCode(usageErr("sample: --duration %s: must be positive", dur))
	}
	if warm < 0 {
		return exitCode(usageErr("sample: --warmup %s: must not be negative", warm))
	}
	rec, err := sample(ctx, dur, warm, watch)
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

// sample measures one window; a cancelled ctx ends it early with the record's error set.
func sample(ctx context.Context, dur, warm time.Duration, watch map[string]int) (*result.Record, error) {
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
	s := usage.NewSampler(0, watch)
	a, err := s.Take()
	if err != nil {
		rec.Error = err.Error()
		return rec, fmt.Errorf("sample: %w", err)
	}
	var stopErr error
	select {
	case <-ctx.Done():
		stopErr = fmt.Errorf("sample: interrupted %.1f s into the %s window", time.Since(a.At).Seconds(), dur)
	case <-time.After(dur):
	}
	b, err := s.Take()
	if err != nil {
		rec.Error = err.Error()
		return rec, fmt.Errorf("sample: %w", err)
	}
	u := usage.Diff(a, b)
	rec.Seconds = u.Seconds
	rec.Node = u.Node
	rec.Iface = u.Iface
	rec.TCP = u.TCP
	rec.Mbps = u.Iface.RxMbps
	rec.Node.CoresPerGbps = result.CoresPerGbps(u.Node.BusyCores, u.Iface.RxMbps)
	for name, c := range u.Watched {
		if rec.Watched == nil {
			rec.Watched = map[string]result.CPU{}
		}
		c.CoresPerGbps = result.CoresPerGbps(c.Cores, u.Iface.RxMbps)
		rec.Watched[name] = c
	}
	for _, name := range u.Missing {
		rec.Notes = append(rec.Notes, fmt.Sprintf("watched process %q could not be sampled at both edges", name))
	}
	for _, part := range u.Unmeasured {
		rec.Notes = append(rec.Notes, fmt.Sprintf("%s counters could not be read at both edges: their figures are 0, not measured", part))
	}
	rec.Notes = append(rec.Notes, "mbps is the namespace's interface receive rate (a sampler moves no application bytes)")
	if stopErr != nil {
		rec.Error = stopErr.Error()
	}
	return rec, stopErr
}

func printSample(r *result.Record) {
	fmt.Fprintf(stderr, "sample: %.2f s; machine busy %.2f of %d cores (user %.2f, sys %.2f, softirq %.2f, steal %.2f), idle %.1f%%\n",
		r.Seconds, r.Node.BusyCores, r.Node.NumCPU, r.Node.UserCores, r.Node.SysCores, r.Node.SoftirqCores, r.Node.StealCores, r.Node.IdlePct)
	fmt.Fprintf(stderr, "sample: interfaces rx %.1f Mbps tx %.1f Mbps\n", r.Iface.RxMbps, r.Iface.TxMbps)
	for name, c := range r.Watched {
		fmt.Fprintf(stderr, "sample: watched %s %.3f cores\n", name, c.Cores)
	}
	if r.Error != "" {
		fmt.Fprintf(stderr, "sample: error: %s\n", r.Error)
	}
}
