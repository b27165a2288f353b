package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/pathcost/pathcost/pkg/tcpload"
	"github.com/pathcost/pathcost/pkg/units"
)

// errUsage marks bad command-line input: exit status 2.
var errUsage = errors.New("usage")

// usageErr wraps a message as a usage error.
func usageErr(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{errUsage}, args...)...)
}

// watchFlag collects repeated NAME=PID pairs.
type watchFlag map[string]int

func (w watchFlag) String() string { return fmt.Sprint(map[string]int(w)) }

func (w watchFlag) Set(s string) error {
	name, pidS, ok := strings.Cut(s, "=")
	if !ok || name == "" {
		return fmt.Errorf("%q: want NAME=PID", s)
	}
	pid, err := strconv.Atoi(pidS)
	if err != nil || pid <= 0 {
		return fmt.Errorf("%q: PID must be a positive number", s)
	}
	w[name] = pid
	return nil
}

// common holds the flags server, client and loopback share.
type common struct {
	cfg   tcpload.Config
	json  string
	quiet bool
	label string
	watch watchFlag
}

// addSocketFlags registers the socket and buffer options.
func addSocketFlags(fs *flag.FlagSet, c *common) {
	c.cfg.Buffer = tcpload.DefaultBuffer
	fs.Var((*units.Size)(&c.cfg.Buffer), "buffer", "application buffer per read()/write() (bytes; k/M suffixes)")
	fs.Var((*units.Size)(&c.cfg.Options.SndBuf), "sndbuf", "SO_SNDBUF to ask for (0 = kernel autotuning); the granted size is reported")
	fs.Var((*units.Size)(&c.cfg.Options.RcvBuf), "rcvbuf", "SO_RCVBUF to ask for (0 = kernel autotuning); the granted size is reported")
	fs.StringVar(&c.cfg.Options.Congestion, "congestion", "", "TCP congestion control (e.g. cubic, bbr, reno)")
	fs.BoolVar(&c.cfg.Options.NoDelay, "nodelay", false, "set TCP_NODELAY")
	fs.BoolVar(&c.cfg.Options.ZeroCopy, "zerocopy", false, "send with MSG_ZEROCOPY when this side sends (reported if unsupported)")
	fs.StringVar(&c.json, "json", "", "write the result record as JSON to FILE (- = standard output)")
	fs.BoolVar(&c.quiet, "quiet", false, "do not print interval lines")
	fs.StringVar(&c.label, "label", "", "free text stored in the record (e.g. the scenario)")
	c.watch = watchFlag{}
	fs.Var(c.watch, "watch", "NAME=PID: also measure that process's CPU over the window (repeatable; e.g. sidecar=1234)")
}

// addSessionFlags registers what the client decides for the session.
func addSessionFlags(fs *flag.FlagSet, c *common, direction *string) {
	fs.IntVar(&c.cfg.Conns, "conns", tcpload.DefaultConns, "number of TCP connections")
	c.cfg.Duration, c.cfg.Warmup, c.cfg.Interval = tcpload.DefaultDuration, tcpload.DefaultWarmup, tcpload.DefaultInterval
	c.cfg.SetupTimeout = 10 * time.Second
	fs.Var((*units.Duration)(&c.cfg.Duration), "duration", "length of the measurement window")
	fs.Var((*units.Duration)(&c.cfg.Warmup), "warmup", "time after all connections are up before the window opens")
	fs.Var((*units.Duration)(&c.cfg.Interval), "interval", "reporting interval inside the window")
	fs.StringVar(direction, "direction", "server-push", "who writes: server-push (the seed's) or client-push")
	fs.Var((*units.Rate)(&c.cfg.Pace.RateBytes), "rate", "pace the sender: bytes/s per connection (k/M/G = 1000s; 'bit' or 'bps' suffix for bits/s)")
	fs.Float64Var(&c.cfg.Pace.MsgsPerSec, "msgs", 0, "pace the sender like the seed's business load: messages per second per connection")
	fs.Var((*units.Size)(&c.cfg.Pace.MsgBytes), "msg-size", "bytes per message with --msgs")
	fs.Var((*units.Duration)(&c.cfg.SetupTimeout), "setup-timeout", "give up when the connections are not all up (refused ones are retried) within this time")
}

// parseFlags parses args, which must all be flags; -h/--help prints the complete usage and
// returns flag.ErrHelp.
func parseFlags(fs *flag.FlagSet, args []string) error {
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usageErr("%s: unexpected argument %q", fs.Name(), pos[0])
	}
	return nil
}

// parseInterspersed parses flags wherever they stand among the positional arguments (Go's flag
// package stops at the first positional one) and returns the positional arguments.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	fs.SetOutput(io.Discard)
	var pos []string
	for {
		err := fs.Parse(args)
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(stdout)
			fs.Usage()
			return nil, err
		}
		if err != nil {
			return nil, usageErr("%s %v", fs.Name(), err)
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

// usageFunc prints a synopsis line and then every flag.
func usageFunc(fs *flag.FlagSet, synopsis, about string) func() {
	return func() {
		fmt.Fprintf(fs.Output(), "usage: tcpload %s\n\n%s\n\nflags:\n", synopsis, about)
		fs.PrintDefaults()
	}
}
