package ssh

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	xssh "golang.org/x/crypto/ssh"
)

// commandTimeout bounds every short remote command (probe, staging, rules, clean-up).
const commandTimeout = 60 * time.Second

// stopGrace is how long a process asked to stop (SIGTERM, so that it writes its record) may
// take before it is killed.
const stopGrace = 5 * time.Second

// Remote layout, under the host's staging directory DIR:
//
//	DIR/tcpload               the binary (checksum-compared: a matching one is not copied again)
//	DIR/run-ID/               this provider's run: removed at Close, or by the guard when the
//	DIR/run-ID/pids/P-N       pid of a running process of path P
//	DIR/run-ID/undo/P.sh      what undoes path P's changes (iptables rules, ip_forward)
//
// The guard is a shell on the host that waits on its stdin (our ssh channel). When we close
// it, or the connection drops because this process died, it kills what is in pids/, runs
// undo/*.sh, removes the run directory and (unless Keep) the binary.

// guardScript is the guard; args: DIR RUN KEEP.
const guardScript = `dir=$1; run=$2; keep=$3
mkdir -p "$run/pids" "$run/undo" || exit 1
echo ready
read -r _
for f in "$run"/pids/*; do
  [ -f "$f" ] || continue
  p=$(cat "$f")
  case "$(readlink "/proc/$p/exe" 2>/dev/null)" in "$dir/tcpload"*) kill -KILL "$p" 2>/dev/null;; esac
done
for f in "$run"/undo/*.sh; do [ -f "$f" ] && sh "$f"; done
rm -rf "$run"
[ "$keep" = 1 ] || rm -f "$dir/tcpload"
rmdir "$dir" 2>/dev/null
echo clean
`

// probeScript reports what the provider needs to know about a host; args: BIN.
const probeScript = `PATH=$PATH:/usr/sbin:/sbin
echo "arch=$(uname -m)"
echo "uid=$(id -u)"
echo "kernel=$(uname -r)"
echo "boot=$(cat /proc/sys/kernel/random/boot_id)"
echo "sum=$(sha256sum "$1" 2>/dev/null | cut -d' ' -f1)"
echo "iptables=$(command -v iptables-restore)"
echo "os=$(. /etc/os-release 2>/dev/null; echo "$PRETTY_NAME")"
`

// stageScript writes stdin to the binary's place, atomically; args: TMP BIN.
const stageScript = `set -e
cat > "$1"
chmod 0755 "$1"
mv -f "$1" "$2"
sha256sum "$2" | cut -d' ' -f1
`

// runScript runs a command so that it stops when our side goes away; args: PIDFILE CMD ARGS.
// The command's stdin is /dev/null; ours (fd 3) is watched: EOF (we closed it to stop the
// command, or the connection dropped) sends SIGTERM, then SIGKILL after the grace period.
// The exit status is the command's.
const runScript = `pf=$1; shift
exec 3<&0
"$@" </dev/null &
p=$!
echo "$p" > "$pf"
( read -r _ <&3; kill -TERM "$p" 2>/dev/null; i=0
  while kill -0 "$p" 2>/dev/null && [ "$i" -lt %d ]; do sleep 0.1; i=$((i+1)); done
  kill -KILL "$p" 2>/dev/null ) >/dev/null 2>&1 &
w=$!
wait "$p"; rc=$?
kill "$w" 2>/dev/null
rm -f "$pf"
exit "$rc"
`

// hostInfo is what probeScript found.
type hostInfo struct {
	arch, uid, kernel, boot, sum, iptables, os string
}

// remote is one ssh connection to one host (several roles may share it).
type remote struct {
	spec   HostSpec // the first role naming the host; errors name spec.Target()
	roles  []string
	client *xssh.Client
	run    string // DIR/run-ID
	info   hostInfo

	guardIn   io.WriteCloser
	guardOut  *bufio.Reader
	guardSess *xssh.Session

	mu     sync.Mutex
	staged bool
	closed bool
}

func (r *remote) bin() string { return r.spec.dir() + "/tcpload" }

// name is how errors name the host: "server host root@10.0.0.6:22".
func (r *remote) name() string { return strings.Join(r.roles, "/") + " host " + r.spec.Target() }

// startGuard starts the guard and waits until the run directory exists.
func (r *remote) startGuard(keep bool) error {
	s, err := r.client.NewSession()
	if err != nil {
		return fmt.Errorf("%s: open session: %w", r.name(), err)
	}
	in, err := s.StdinPipe()
	if err != nil {
		_ = s.Close()
		return fmt.Errorf("%s: guard stdin: %w", r.name(), err)
	}
	out, err := s.StdoutPipe()
	if err != nil {
		_ = s.Close()
		return fmt.Errorf("%s: guard stdout: %w", r.name(), err)
	}
	var stderr bytes.Buffer
	s.Stderr = &stderr
	k := "0"
	if keep {
		k = "1"
	}
	if err := s.Start(shellCommand(guardScript, r.spec.dir(), r.run, k)); err != nil {
		_ = s.Close()
		return fmt.Errorf("%s: start guard: %w", r.name(), err)
	}
	r.guardSess, r.guardIn, r.guardOut = s, in, bufio.NewReader(out)
	line, err := r.guardOut.ReadString('\n')
	if strings.TrimSpace(line) != "ready" {
		_ = s.Close()
		return fmt.Errorf("%s: create %s: %v %s", r.name(), r.run, err, strings.TrimSpace(stderr.String()))
	}
	return nil
}

// closeGuard makes the guard clean up and waits for it (bounded).
func (r *remote) closeGuard() error {
	if r.guardSess == nil {
		return nil
	}
	_, _ = io.WriteString(r.guardIn, "close\n")
	_ = r.guardIn.Close()
	done := make(chan string, 1)
	go func() {
		rest, _ := io.ReadAll(r.guardOut)
		done <- string(rest)
	}()
	select {
	case rest := <-done:
		if strings.TrimSpace(rest) != "clean" {
			return fmt.Errorf("%s: clean-up of %s did not finish (%q)", r.name(), r.run, rest)
		}
	case <-time.After(commandTimeout):
		return fmt.Errorf("%s: clean-up of %s took longer than %s", r.name(), r.run, commandTimeout)
	}
	_ = r.guardSess.Wait()
	return nil
}

// probe fills r.info.
func (r *remote) probe(ctx context.Context) error {
	out, err := r.output(ctx, nil, probeScript, r.bin())
	if err != nil {
		return err
	}
	for _, line := range strings.Split(string(out), "\n") {
		k, v, _ := strings.Cut(line, "=")
		switch k {
		case "arch":
			r.info.arch = v
		case "uid":
			r.info.uid = v
		case "kernel":
			r.info.kernel = v
		case "boot":
			r.info.boot = v
		case "sum":
			r.info.sum = v
		case "iptables":
			r.info.iptables = v
		case "os":
			r.info.os = v
		}
	}
	if r.info.boot == "" || r.info.arch == "" {
		return fmt.Errorf("%s: probe printed no boot id or architecture (is the login shell POSIX sh compatible?): %q", r.name(), out)
	}
	return nil
}

// stage copies the binary unless the host has one with the same checksum; it returns the
// bytes copied.
func (r *remote) stage(ctx context.Context, b *binary) (int64, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.staged {
		return 0, nil
	}
	if r.info.arch != b.arch {
		return 0, fmt.Errorf("%s is %s, the tcpload binary %s is built for %s (build it with GOARCH for the host)", r.name(), r.info.arch, b.path, b.arch)
	}
	if r.info.sum == b.sum {
		r.staged = true
		return 0, nil
	}
	out, err := r.output(ctx, bytes.NewReader(b.data), stageScript, r.run+"/tcpload.tmp", r.bin())
	if err != nil {
		return 0, fmt.Errorf("stage tcpload: %w", err)
	}
	if got := strings.TrimSpace(string(out)); got != b.sum {
		return 0, fmt.Errorf("stage tcpload on %s: checksum after copying is %q, want %s", r.name(), got, b.sum)
	}
	r.info.sum, r.staged = b.sum, true
	return int64(len(b.data)), nil
}

// output runs script with args under sh on the host and returns its stdout; the error carries
// stderr and names the host.
func (r *remote) output(ctx context.Context, stdin io.Reader, script string, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, commandTimeout)
	defer cancel()
	s, err := r.client.NewSession()
	if err != nil {
		return nil, fmt.Errorf("%s: open session: %w", r.name(), err)
	}
	defer s.Close()
	var stdout, stderr bytes.Buffer
	s.Stdin, s.Stdout, s.Stderr = stdin, &stdout, &stderr
	stop := context.AfterFunc(ctx, func() { _ = s.Close() })
	defer stop()
	err = s.Run(shellCommand(script, args...))
	if err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("%w (%v)", ctx.Err(), err)
		}
		return stdout.Bytes(), fmt.Errorf("%s: %s: %w: %s", r.name(), firstLine(script), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.Bytes(), nil
}

// shellCommand is the command line sshd hands to the login shell: sh -c SCRIPT sh ARGS...,
// every word single-quoted.
func shellCommand(script string, args ...string) string {
	words := []string{"sh", "-c", shellQuote(script), "sh"}
	for _, a := range args {
		words = append(words, shellQuote(a))
	}
	return strings.Join(words, " ")
}

// shellQuote single-quotes s for a POSIX shell.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// detachable passes writes to w until detach; later writes are dropped.
type detachable struct {
	mu sync.Mutex
	w  io.Writer
}

func (d *detachable) Write(b []byte) (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.w == nil {
		return len(b), nil
	}
	return d.w.Write(b)
}

func (d *detachable) detach() {
	d.mu.Lock()
	d.w = nil
	d.mu.Unlock()
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	return line
}

// proc is a process started over an ssh session.
type proc struct {
	sess           *xssh.Session
	stdin          io.WriteCloser
	stdout, stderr *detachable // the caller's writers, detached when the session is abandoned
	what           string      // "tcpload server on server host root@..."
	stopped        chan struct{}
	// abandoned is closed 3*stopGrace after stop: if the session has not ended by then, Wait
	// returns without the host's word (a host whose network died never answers).
	abandoned chan struct{}
	once      sync.Once
	cancel    func() bool
}

// stop closes the process's stdin: the wrapper sends SIGTERM (the record is still written),
// then SIGKILL after stopGrace; if the session has not ended after twice that, it is closed,
// and if it has not ended after three times that, it is abandoned. The timer starts first: a
// close may block on a dead host's connection.
func (p *proc) stop() {
	p.once.Do(func() {
		time.AfterFunc(3*stopGrace, func() { close(p.abandoned) })
		go func() {
			_ = p.stdin.Close()
			select {
			case <-p.stopped:
			case <-time.After(2 * stopGrace):
				_ = p.sess.Close()
			}
		}()
	})
}

// Wait waits for the process to end and its output to be copied, or until the session is
// abandoned (stop, on a host that no longer answers): then the caller's writers are detached,
// so that output arriving later cannot race with the caller reading them.
func (p *proc) Wait() error {
	done := make(chan error, 1)
	go func() { done <- p.sess.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-p.abandoned:
		select {
		case err = <-done: // ended just now after all
		default:
			p.stdout.detach()
			p.stderr.detach()
			close(p.stopped)
			p.cancel()
			return fmt.Errorf("%s: the host did not end the session within %s of being asked to stop (host or its network down?); abandoned", p.what, 3*stopGrace)
		}
	}
	close(p.stopped)
	p.cancel()
	_ = p.sess.Close()
	var ee *xssh.ExitError
	var em *xssh.ExitMissingError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &ee):
		return fmt.Errorf("%s: exit status %d", p.what, ee.ExitStatus())
	case errors.As(err, &em):
		return fmt.Errorf("%s: the session ended without an exit status (connection lost?)", p.what)
	}
	return fmt.Errorf("%s: %w", p.what, err)
}
