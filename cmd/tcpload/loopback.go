package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"github.com/pathcost/pathcost/pkg/jsonfile"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/pathcost/pathcost/pkg/result"
	"github.com/pathcost/pathcost/pkg/tcpload"
)

// loopbackPair is what `tcpload loopback --json` writes.
type loopbackPair struct {
	Server *result.Record `json:"server"`
	Client *result.Record `json:"client"`
}

func runLoopback(ctx context.Context, args []string) int {
	var c common
	var direction string
	fs := flag.NewFlagSet("loopback", flag.ContinueOnError)
	addSessionFlags(fs, &c, &direction)
	addSocketFlags(fs, &c)
	host := fs.String("host", "127.0.0.1", "loopback address to use")
	fs.Usage = usageFunc(fs, "loopback [flags]", "Runs `tcpload server` and `tcpload client` as two separate processes (each one epoll\nthread, like the seed) on the loopback interface and prints both sides' summaries.\n--json - prints {\"server\":{record},\"client\":{record}}.")
	if err := parseFlags(fs, args); err != nil {
		return exitCode(err)
	}
	d, err := tcpload.ParseDirection(direction)
	if err != nil {
		return exitCode(usageErr("loopback: --%v", err))
	}
	c.cfg.Direction = d
	if err := c.cfg.Validate(); err != nil {
		return exitCode(configErr("loopback", err))
	}
	if len(c.watch) > 0 {
		return exitCode(usageErr("loopback: --watch is for server and client"))
	}
	pair, code, err := loopback(ctx, *host, c)
	if err != nil {
		fmt.Fprintf(stderr, "tcpload loopback: %v\n", err)
		if code == 0 {
			code = 1
		}
	}
	if pair != nil && c.json != "" {
		if werr := writeJSON(c.json, pair); werr != nil {
			fmt.Fprintf(stderr, "tcpload loopback: %v\n", werr)
			return 1
		}
	}
	return code
}

// loopback runs the two processes and collects their records.
func loopback(ctx context.Context, host string, c common) (*loopbackPair, int, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, 1, fmt.Errorf("find own executable: %w", err)
	}
	dir, err := os.MkdirTemp("", "tcpload-loopback-")
	if err != nil {
		return nil, 1, fmt.Errorf("temp dir: %w", err)
	}
	defer os.RemoveAll(dir)
	sock := socketArgs(c.cfg)
	srvJSON, cliJSON := filepath.Join(dir, "server.json"), filepath.Join(dir, "client.json")

	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, 1, fmt.Errorf("pipe: %w", err)
	}
	// the server runs --quiet: the client's interval lines are enough on a terminal
	srvArgs := append([]string{"server", "--listen", host + ":0", "--ready-fd", "3", "--json", srvJSON, "--accept-timeout", "20s", "--quiet"}, sock...)
	srv := exec.Command(exe, srvArgs...)
	srv.Stderr = stderr
	srv.ExtraFiles = []*os.File{pw}
	srv.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := srv.Start(); err != nil {
		pr.Close()
		pw.Close()
		return nil, 1, fmt.Errorf("start server: %w", err)
	}
	pw.Close()
	addrCh := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(pr).ReadString('\n')
		addrCh <- strings.TrimSpace(line)
	}()
	var addr string
	select {
	case addr = <-addrCh:
	case <-time.After(10 * time.Second):
	case <-ctx.Done():
	}
	pr.Close()
	if addr == "" {
		srv.Process.Kill()
		srv.Wait()
		return nil, 1, fmt.Errorf("server did not start listening on %s", host)
	}
	cliArgs := append([]string{"client", "--connect", addr, "--json", cliJSON,
		"--conns", strconv.Itoa(c.cfg.Conns), "--duration", c.cfg.Duration.String(), "--warmup", c.cfg.Warmup.String(),
		"--receiver-delay", c.cfg.ReceiverDelay.String(), "--interval", c.cfg.Interval.String(), "--direction", string(c.cfg.Direction),
		"--setup-timeout", c.cfg.SetupTimeout.String(),
		"--rate", strconv.FormatFloat(c.cfg.Pace.RateBytes, 'f', -1, 64),
		"--msgs", strconv.FormatFloat(c.cfg.Pace.MsgsPerSec, 'f', -1, 64),
		"--msg-size", strconv.Itoa(c.cfg.Pace.MsgBytes)}, sock...)
	if c.quiet {
		cliArgs = append(cliArgs, "--quiet")
	}
	if c.label != "" {
		cliArgs = append(cliArgs, "--label", c.label)
	}
	// the client also reads the server's CPU at its own window edges: both processes and the
	// machine over one window, read at the same instants (the kernel share in printPair)
	cliArgs = append(cliArgs, "--watch", watchServer+"="+strconv.Itoa(srv.Process.Pid))
	cli := exec.Command(exe, cliArgs...)
	cli.Stderr = stderr
	cli.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := cli.Start(); err != nil {
		srv.Process.Kill()
		srv.Wait()
		return nil, 1, fmt.Errorf("start client: %w", err)
	}
	// a signal to us (SIGTERM from a supervisor) is passed on to the client, which ends the
	// session cleanly; the server follows it
	stopFwd := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
			cli.Process.Signal(syscall.SIGTERM)
		case <-stopFwd:
		}
	}()
	cliErr := cli.Wait()
	close(stopFwd)
	srvDone := make(chan error, 1)
	go func() { srvDone <- srv.Wait() }()
	var srvErr error
	select {
	case srvErr = <-srvDone:
	case <-time.After(5 * time.Second):
		srv.Process.Signal(syscall.SIGTERM)
		srvErr = <-srvDone
	}
	pair := &loopbackPair{}
	var errs []string
	if pair.Server, err = result.ReadFile(srvJSON); err != nil {
		errs = append(errs, "server record: "+err.Error())
	}
	if pair.Client, err = result.ReadFile(cliJSON); err != nil {
		errs = append(errs, "client record: "+err.Error())
	}
	code := max(exitStatus(cliErr), exitStatus(srvErr))
	if pair.Server != nil && pair.Client != nil {
		printPair(pair)
	}
	if len(errs) > 0 {
		return pair, max(code, 1), fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return pair, code, nil
}

// watchServer is the name under which a loopback client watches its server.
const watchServer = "server"

// socketArgs turns socket options into flags for a child.
func socketArgs(cfg tcpload.Config) []string {
	a := []string{"--buffer", strconv.Itoa(cfg.Buffer), "--sndbuf", strconv.Itoa(cfg.Options.SndBuf), "--rcvbuf", strconv.Itoa(cfg.Options.RcvBuf)}
	if cfg.Options.Congestion != "" {
		a = append(a, "--congestion", cfg.Options.Congestion)
	}
	if cfg.Options.NotSentLowat != 0 {
		a = append(a, "--notsent-lowat", (*notSentLowat)(&cfg.Options.NotSentLowat).String())
	}
	if cfg.ReadBatch != 0 {
		a = append(a, "--read-batch", (*readBatch)(&cfg.ReadBatch).String())
	}
	if cfg.Options.NoDelay {
		a = append(a, "--nodelay")
	}
	if cfg.Options.ZeroCopy {
		a = append(a, "--zerocopy")
	}
	return a
}

func exitStatus(err error) int {
	if err == nil {
		return 0
	}
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	return 1
}

// printPair prints both sides and the bytes-conservation check.
func printPair(p *loopbackPair) {
	s, c := p.Server, p.Client
	fmt.Fprintf(stderr, "\n%-8s %10s %10s %12s %10s %12s\n", "side", "Mbps", "cores", "cores/Gbps", "setup s", "retrans")
	for _, r := range []*result.Record{s, c} {
		fmt.Fprintf(stderr, "%-8s %10.1f %10.3f %12.3f %10.3f %12s\n", r.Role, r.Mbps, r.CPU.Cores, r.CPU.CoresPerGbps, r.SetupSeconds, windowRetransmits(r))
	}
	fmt.Fprintf(stderr, "machine busy %.2f of %d cores during the client's window (softirq %.2f)\n", c.Node.BusyCores, c.Node.NumCPU, c.Node.SoftirqCores)
	if k, tol, ok := loopbackKernel(c); ok {
		fmt.Fprintf(stderr, "client + server over the client's window %.3f cores: kernel share %.3f cores (reading tolerance %.3f)\n",
			c.CPU.Cores+c.Watched[watchServer].Cores, k, tol)
	}
	if s.Error == "" && c.Error == "" {
		if s.TotalBytes == c.TotalBytes {
			fmt.Fprintf(stderr, "bytes conserved: %d written = %d read\n", s.TotalBytes, c.TotalBytes)
		} else {
			fmt.Fprintf(stderr, "bytes NOT conserved: server %d, client %d\n", s.TotalBytes, c.TotalBytes)
		}
	}
}

// writeJSON writes v as indented JSON to path ("-" = standard output).
func writeJSON(path string, v any) error {
	if path == "-" {
		return jsonfile.Encode(stdout, v)
	}
	return jsonfile.Write(path, v)
}

// loopbackKernel returns the kernel share over the client's window (machine busy minus client
// and server, all read at the client's window edges) and its reading tolerance; false when
// one of them was not measured.
func loopbackKernel(c *result.Record) (kernel, tol float64, ok bool) {
	srv, ok := c.Watched[watchServer]
	if !ok || c.Node.BusyCores <= 0 || slices.Contains(c.Unmeasured, result.UnmeasuredCPU) ||
		slices.Contains(c.Unmeasured, result.UnmeasuredNode) || slices.Contains(c.Unmeasured, result.UnmeasuredWatched+watchServer) {
		return 0, 0, false
	}
	return c.Node.BusyCores - c.CPU.Cores - srv.Cores, result.KernelTolerance(c.Seconds, c.Node.NumCPU, 0), true
}
