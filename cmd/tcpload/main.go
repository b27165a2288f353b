// Command tcpload is pathcost's one binary: the epoll sender and receiver of the seed's method
// (server, client, loopback), a sampler for forwarding nodes (sample), and the reporting tools
// (report, compare). Run `tcpload help` or `tcpload SUBCOMMAND --help`.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/pathcost/pathcost/pkg/cluster/nskube"
	"github.com/pathcost/pathcost/pkg/interrupt"
)

var (
	stdout io.Writer = os.Stdout
	stderr io.Writer = os.Stderr
)

const topUsage = `tcpload measures what a network path costs a TCP workload (pathcost).

usage: tcpload SUBCOMMAND [flags]

subcommands:
  server    accept one session of connections and write (or read) until the client ends it
  client    open N connections to a server, measure a window, end the session cleanly
  loopback  run server and client as two processes on 127.0.0.1 and print both sides
  sample    measure node CPU, this namespace's interfaces and watched processes for a while
  report    print the table of a results directory (summary.json) and write its chart
  compare   compare two summaries (old, new) figure by figure
  cluster   build, start and stop the offline Kubernetes cluster (nskube)
  help      this text

Exit status: 0 success, 1 the run failed (the record is still written, with "error" set),
2 bad command-line input, 130/143 stopped by SIGINT/SIGTERM (the record of what was measured
is written).
`

func main() {
	// First: this process may have been started as the reaper of a cluster (nskube).
	if reaper, err := nskube.RunReaperIfAsked(); reaper {
		if err != nil {
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(run(os.Args[1:]))
}

// subcommands maps names to their entry points; each returns the exit status.
var subcommands = map[string]func(ctx context.Context, args []string) int{
	"server":   runServer,
	"client":   runClient,
	"loopback": runLoopback,
	"sample":   runSample,
	"report":   runReport,
	"compare":  runCompare,
	"cluster":  runCluster,
}

func run(args []string) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, topUsage)
		return 2
	}
	name := args[0]
	switch name {
	case "help", "-h", "--help", "-help":
		fmt.Fprint(stdout, topUsage)
		return 0
	}
	f, ok := subcommands[name]
	if !ok {
		fmt.Fprintf(stderr, "tcpload: unknown subcommand %q (try tcpload help)\n", name)
		return 2
	}
	ctx, sig := signalContext()
	code := f(ctx, args[1:])
	if s := sig(); s != nil && code == 1 {
		return interrupt.ExitCode(s)
	}
	return code
}

// signalContext returns a context cancelled by SIGINT or SIGTERM and a func telling which
// signal (if any) arrived. A second signal ends the program at once with 128+signal, without
// waiting for what the first one set off (the record, a teardown).
func signalContext() (context.Context, func() os.Signal) {
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan os.Signal, 2)
	signal.Notify(ch, syscall.SIGINT, syscall.SIGTERM)
	got := make(chan os.Signal, 1)
	go func() {
		s := <-ch
		got <- s
		cancel()
		s2 := <-ch
		fmt.Fprintf(stderr, "tcpload: %v after %v: exiting at once\n", s2, s)
		os.Exit(interrupt.ExitCode(s2))
	}()
	return ctx, func() os.Signal {
		select {
		case s := <-got:
			got <- s
			return s
		default:
			return nil
		}
	}
}

// exitCode maps an error to the exit status: 2 for usage errors, 1 otherwise.
func exitCode(err error) int {
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		fmt.Fprintf(stderr, "tcpload: %v\n", err)
		return 2
	default:
		fmt.Fprintf(stderr, "tcpload: %v\n", err)
		return 1
	}
}
