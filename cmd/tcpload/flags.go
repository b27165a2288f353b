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

// watchTargets collects repeated NAME=PID and NAME=comm:PROCNAME pairs (server and client).
type watchTargets map[string]tcpload.WatchTarget

func (w watchTargets) String() string { return fmt.Sprint(map[string]tcpload.WatchTarget(w)) }

func (w watchTargets) Set(s string) error {
	name, target, ok := strings.Cut(s, "=")
	if !ok || name == "" {
		return fmt.Errorf("%q: want NAME=PID or NAME=comm:PROCNAME", s)
	}
	t, err := tcpload.ParseWatchTarget(target)
	if err != nil {
		return fmt.Errorf("%s: %w (want NAME=PID or NAME=comm:PROCNAME)", name, err)
	}
	w[name] = t
	return nil
}

// common holds the flags server, client and loopback share.
type common struct {
	cfg   tcpload.Config
	json  string
	quiet bool
	label string
	watch watchTargets
}

// configFlags names the flag of each Config field the command line sets.
var configFlags = map[string]string{
	"Conns":                "--conns",
	"Buffer":               "--buffer",
	"Duration":             "--duration",
	"Warmup":               "--warmup",
	"ReceiverDelay":        "--receiver-delay",
	"Interval":             "--interval",
	"Options.SndBuf":       "--sndbuf",
	"Options.RcvBuf":       "--rcvbuf",
	"SetupTimeout":         "--setup-timeout",
	"AcceptTimeout":        "--accept-timeout",
	"Backlog":              "--backlog",
	"Direction":            "--direction",
	"Pace.RateBytes":       "--rate",
	"Pace.MsgsPerSec":      "--msgs",
	"Pace.MsgBytes":        "--msg-size",
	"BurnPerKB":            "--selftest-burn-per-kb",
	"DrainTimeout":         "drain timeout",
	"Options.Congestion":   "--congestion",
	"Options.NotSentLowat": "--notsent-lowat",
	"ReadBatch":            "--read-batch",
}

// configErr turns a configuration error of the library (naming Config fields) into a usage
// error of subcommand cmd naming the flags.
func configErr(cmd string, err error) error {
	var fe *tcpload.FieldError
	if errors.As(err, &fe) {
		return usageErr("%s: %s", cmd, fe.Render(func(field string) string {
			if f, ok := configFlags[field]; ok {
				return f
			}
			return field
		}))
	}
	return usageErr("%s: %v", cmd, err)
}

// addSelftestFlags registers the knobs that exist only to test the gates (server and client).
func addSelftestFlags(fs *flag.FlagSet, c *common) {
	fs.Var((*units.Duration)(&c.cfg.BurnPerKB), "selftest-burn-per-kb", "for testing the gates only: burn this much CPU per KB read or written, on the loop's thread (e.g. 200ns; recorded in the record's notes)")
}

// addSocketFlags registers the socket and buffer options.
func addSocketFlags(fs *flag.FlagSet, c *common) {
	c.cfg.Buffer = tcpload.DefaultBuffer
	fs.Var((*units.Size)(&c.cfg.Buffer), "buffer", "application buffer per read()/write() (bytes; k/M suffixes)")
	fs.Var((*units.Size)(&c.cfg.Options.SndBuf), "sndbuf", "SO_SNDBUF to ask for (0 = kernel autotuning); the granted size is reported")
	fs.Var((*units.Size)(&c.cfg.Options.RcvBuf), "rcvbuf", "SO_RCVBUF to ask for (0 = kernel autotuning); the granted size is reported")
	fs.Var((*notSentLowat)(&c.cfg.Options.NotSentLowat), "notsent-lowat", "TCP_NOTSENT_LOWAT: written but unsent bytes a socket may hold before writes to it stop; auto: twice --buffer, at least 128k; kernel: not set (net.ipv4.tcp_notsent_lowat applies, unbounded by default, as the seed's programs run); or a size")
	fs.Var((*readBatch)(&c.cfg.ReadBatch), "read-batch", "the receiving side, when nothing is readable, sleeps this long before it looks again and reads what came meanwhile in one turn, instead of being woken by every readable socket (auto: 50us; off: woken per socket, as the seed's client; or a duration up to 1ms)")
	fs.StringVar(&c.cfg.Options.Congestion, "congestion", "", "TCP congestion control (e.g. cubic, bbr, reno)")
	fs.BoolVar(&c.cfg.Options.NoDelay, "nodelay", false, "set TCP_NODELAY")
	fs.BoolVar(&c.cfg.Options.ZeroCopy, "zerocopy", false, "send with MSG_ZEROCOPY when this side sends (reported if unsupported)")
	fs.StringVar(&c.json, "json", "", "write the result record as JSON to FILE (- = standard output)")
	fs.BoolVar(&c.quiet, "quiet", false, "do not print interval lines")
	fs.StringVar(&c.label, "label", "", "free text stored in the record (e.g. the scenario)")
	c.watch = watchTargets{}
	fs.Var(c.watch, "watch", "NAME=PID or NAME=comm:PROCNAME: also measure that process's CPU over the window; by comm, every visible process of that name when the window opens, summed (repeatable; e.g. sidecar=1234, sidecar=comm:envoy)")
}

// addSessionFlags registers what the client decides for the session.
func addSessionFlags(fs *flag.FlagSet, c *common, direction *string) {
	fs.IntVar(&c.cfg.Conns, "conns", tcpload.DefaultConns, "number of TCP connections")
	c.cfg.Duration, c.cfg.Warmup, c.cfg.Interval = tcpload.DefaultDuration, tcpload.DefaultWarmup, tcpload.DefaultInterval
	c.cfg.SetupTimeout = 10 * time.Second
	fs.Var((*units.Duration)(&c.cfg.Duration), "duration", "length of the measurement window")
	fs.Var((*units.Duration)(&c.cfg.Warmup), "warmup", "time after all connections are up before the window opens")
	fs.Var((*units.Duration)(&c.cfg.Interval), "interval", "reporting interval inside the window")
	fs.Var((*units.Duration)(&c.cfg.ReceiverDelay), "receiver-delay", "the reading side waits this long after set-up before its first read, so the sender fills every queue first (at most --warmup; 0: both start at once)")
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

// notSentLowat is the --notsent-lowat flag: "auto" (Options.NotSentLowat 0), "kernel"
// (tcpload.KernelNotSentLowat) or a size.
type notSentLowat int

// String prints auto, kernel or the size.
func (n *notSentLowat) String() string {
	switch {
	case n == nil || *n == 0:
		return "auto"
	case *n == tcpload.KernelNotSentLowat:
		return "kernel"
	}
	return strconv.Itoa(int(*n))
}

// Set parses auto, kernel or a positive size.
func (n *notSentLowat) Set(s string) error {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "auto":
		*n = 0
		return nil
	case "kernel":
		*n = tcpload.KernelNotSentLowat
		return nil
	}
	v, err := units.ParseSize(s)
	if err != nil {
		return fmt.Errorf("%w, auto or kernel", err)
	}
	if v <= 0 {
		return fmt.Errorf("%q: want a positive size, auto or kernel", s)
	}
	*n = notSentLowat(v)
	return nil
}

// readBatch is the --read-batch flag: "auto" (Config.ReadBatch 0), "off" (tcpload.NoReadBatch)
// or a duration up to tcpload.MaxReadBatch.
type readBatch time.Duration

// String prints auto, off or the duration.
func (r *readBatch) String() string {
	switch {
	case r == nil || *r == 0:
		return "auto"
	case time.Duration(*r) == tcpload.NoReadBatch:
		return "off"
	}
	return time.Duration(*r).String()
}

// Set parses auto, off or a positive duration up to tcpload.MaxReadBatch.
func (r *readBatch) Set(s string) error {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "auto":
		*r = 0
		return nil
	case "off":
		*r = readBatch(tcpload.NoReadBatch)
		return nil
	}
	d, err := units.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("%w, auto or off", err)
	}
	if d <= 0 || d > tcpload.MaxReadBatch {
		return fmt.Errorf("%q: want a duration above 0 and at most %s, auto or off", s, tcpload.MaxReadBatch)
	}
	*r = readBatch(d)
	return nil
}
