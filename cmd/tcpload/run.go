package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
	"time"

	"github.com/pathcost/pathcost/pkg/result"
	"github.com/pathcost/pathcost/pkg/tcpload"
	"github.com/pathcost/pathcost/pkg/units"
)

// oneProc gives the process one P, as the seed's programs have one thread: the loop's goroutine,
// preempted every 10 ms by the runtime, is then picked up again by its own thread instead of
// waking another (see tcpload's runLoop). The loop does its system calls without the scheduler,
// so a single P is never held up by them; other goroutines (signals, the context) run when it is
// preempted.
func oneProc() { runtime.GOMAXPROCS(1) }

func runServer(ctx context.Context, args []string) int {
	var c common
	fs := flag.NewFlagSet("server", flag.ContinueOnError)
	listen := fs.String("listen", fmt.Sprintf("0.0.0.0:%d", tcpload.DefaultPort), "address to listen on (ADDR:PORT; port 0 picks one)")
	fs.IntVar(&c.cfg.Backlog, "backlog", 0, "listen backlog (0 = 10000, capped by net.core.somaxconn)")
	fs.Var((*units.Duration)(&c.cfg.AcceptTimeout), "accept-timeout", "give up when no client connects within this time (0 = wait forever)")
	c.cfg.SetupTimeout = 10 * time.Second
	fs.Var((*units.Duration)(&c.cfg.SetupTimeout), "setup-timeout", "give up when the session's connections are not all up within this time of the first")
	readyFD := fs.Int("ready-fd", 0, "write the bound address and a newline to this inherited file descriptor once listening")
	addSocketFlags(fs, &c)
	addSelftestFlags(fs, &c)
	fs.Usage = usageFunc(fs, "server [flags]", "Accepts one session: the client announces the number of connections, the direction,\nthe pacing and its window; the server writes (server-push, the seed's) or reads, opens its\nown window once every connection is up plus the warm-up, and ends when the client ends.")
	if err := parseFlags(fs, args); err != nil {
		return exitCode(err)
	}
	if c.cfg.Buffer < 1 { // WithDefaults would take 0 for "unset"
		return exitCode(usageErr("server: --buffer %d: want 1..%d bytes", c.cfg.Buffer, tcpload.MaxBuffer))
	}
	if err := c.cfg.WithDefaults().Validate(); err != nil {
		return exitCode(configErr("server", err))
	}
	meter, err := tcpload.NewWatchMeter(c.watch)
	if err != nil {
		return exitCode(err)
	}
	c.cfg.Probe = meter
	c.cfg.Progress = progressPrinter("server", c.quiet)
	srv, err := tcpload.Listen(*listen, c.cfg)
	if err != nil {
		return exitCode(fmt.Errorf("server: %w", err))
	}
	if *readyFD > 0 {
		f := os.NewFile(uintptr(*readyFD), "ready")
		fmt.Fprintf(f, "%s\n", srv.Addr())
		f.Close()
	}
	logf(c.quiet, "server: listening on %s\n", srv.Addr())
	oneProc()
	res := srv.Serve(ctx)
	return finish(res, meter, &c)
}

func runClient(ctx context.Context, args []string) int {
	var c common
	var direction string
	fs := flag.NewFlagSet("client", flag.ContinueOnError)
	connect := fs.String("connect", fmt.Sprintf("127.0.0.1:%d", tcpload.DefaultPort), "server address (HOST:PORT)")
	addSessionFlags(fs, &c, &direction)
	addSocketFlags(fs, &c)
	addSelftestFlags(fs, &c)
	fs.Usage = usageFunc(fs, "client --connect HOST:PORT [flags]", "Opens --conns connections in parallel (refused ones are retried until --setup-timeout),\nwaits --warmup once all are up, measures for --duration, printing one line per --interval,\nthen ends the session cleanly and writes the result record.")
	if err := parseFlags(fs, args); err != nil {
		return exitCode(err)
	}
	d, err := tcpload.ParseDirection(direction)
	if err != nil {
		return exitCode(usageErr("client: --%v", err))
	}
	c.cfg.Direction = d
	if err := c.cfg.Validate(); err != nil {
		return exitCode(configErr("client", err))
	}
	meter, err := tcpload.NewWatchMeter(c.watch)
	if err != nil {
		return exitCode(err)
	}
	c.cfg.Probe = meter
	c.cfg.Progress = progressPrinter("client", c.quiet)
	logf(c.quiet, "client: %d connections to %s, %s, window %s after %s warm-up\n", c.cfg.Conns, *connect, d, c.cfg.Duration, c.cfg.Warmup)
	oneProc()
	res := tcpload.RunClient(ctx, *connect, c.cfg)
	return finish(res, meter, &c)
}

// finish writes the record, prints the summary and returns the exit status.
func finish(res *tcpload.Result, m *tcpload.WatchMeter, c *common) int {
	rec := m.Record(res)
	rec.Label = c.label
	if res.ReceiverWaited > 0 {
		rec.Notes = append(rec.Notes, fmt.Sprintf("receiver_waited_ms=%d: this side read nothing for that long after set-up (--receiver-delay), so the sender filled the queues first", res.ReceiverWaited.Milliseconds()))
	}
	if res.ReadBatch > 0 {
		rec.Notes = append(rec.Notes, fmt.Sprintf("read_batch_us=%d: this side, receiving, slept that long whenever nothing was readable and then read what had come, instead of being woken by every readable socket (--read-batch; off: as the seed's client)", res.ReadBatch.Microseconds()))
	}
	if res.BurnPerKB > 0 {
		rec.Notes = append(rec.Notes, fmt.Sprintf("selftest_burn_ns_per_kb=%d: this side burned that much CPU per KB it moved, on purpose (--selftest-burn-per-kb, for testing the gates only)", res.BurnPerKB.Nanoseconds()))
	}
	printSummary(stderr, rec)
	if c.json != "" {
		if err := rec.WriteFile(c.json); err != nil {
			fmt.Fprintf(stderr, "tcpload: %v\n", err)
			return 1
		}
	}
	if res.Err != nil {
		fmt.Fprintf(stderr, "tcpload %s: %v\n", res.Role, res.Err)
		return 1
	}
	if err := m.Err(); err != nil {
		fmt.Fprintf(stderr, "tcpload %s: %v\n", res.Role, err)
		return 1
	}
	return 0
}

func logf(quiet bool, format string, args ...any) {
	if !quiet {
		fmt.Fprintf(stderr, format, args...)
	}
}

// progressPrinter prints one line per interval, like iperf3.
func progressPrinter(role string, quiet bool) func(tcpload.Interval) {
	if quiet {
		return nil
	}
	return func(iv tcpload.Interval) {
		fmt.Fprintf(stderr, "[%s] %6.2f-%6.2f s  %10.1f Mbps  %5.2f cores\n", role, iv.Start, iv.End, iv.Mbps, iv.Cores)
	}
}

// windowRetransmits is the record's retransmissions over the window, or "not measured".
func windowRetransmits(r *result.Record) string {
	if r.TCP.WindowRetransmits == nil {
		return "not measured"
	}
	return strconv.FormatUint(*r.TCP.WindowRetransmits, 10)
}

// printSummary prints the record in a few readable lines.
func printSummary(w io.Writer, r *result.Record) {
	fmt.Fprintf(w, "%s: %.1f Mbps over %.2f s (%d bytes, %d connections, set-up %.3f s)\n",
		r.Role, r.Mbps, r.Seconds, r.Bytes, r.Conns, r.SetupSeconds)
	fmt.Fprintf(w, "%s: cpu %.3f cores (user %.3f, sys %.3f) = %.3f cores/Gbps; machine busy %.2f of %d cores (softirq %.2f)\n",
		r.Role, r.CPU.Cores, r.CPU.UserCores, r.CPU.SysCores, r.CPU.CoresPerGbps, r.Node.BusyCores, r.Node.NumCPU, r.Node.SoftirqCores)
	fmt.Fprintf(w, "%s: interfaces rx %.1f Mbps tx %.1f Mbps; retransmits in the window %s, in the session %d (namespace: %d of %d segments out in the window)\n",
		r.Role, r.Iface.RxMbps, r.Iface.TxMbps, windowRetransmits(r), r.TCP.Retransmits, r.TCP.NsRetransSegs, r.TCP.NsOutSegs)
	if r.PerConn != nil {
		fmt.Fprintf(w, "%s: per connection %.1f..%.1f Mbps\n", r.Role, r.PerConn.MinMbps, r.PerConn.MaxMbps)
	}
	for name, c := range r.Watched {
		fmt.Fprintf(w, "%s: watched %s %.3f cores (%.3f cores/Gbps)\n", r.Role, name, c.Cores, c.CoresPerGbps)
	}
	for _, n := range r.Notes {
		fmt.Fprintf(w, "%s: note: %s\n", r.Role, n)
	}
	if r.Error != "" {
		fmt.Fprintf(w, "%s: error: %s\n", r.Role, r.Error)
	}
}
