package localnet

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/pathcost/pathcost/pkg/usage"
)

// cmdTimeout bounds every external command the package runs.
const cmdTimeout = 20 * time.Second

// netnsPath is the bind-mount file of a named namespace.
func netnsPath(name string) string { return filepath.Join(NetnsDir, name) }

// run executes a program and returns its combined output; the error names the
// command and carries its output.
func run(ctx context.Context, stdin string, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, cmdTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	cmd.WaitDelay = 2 * time.Second
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("%s %s: %w: %s", filepath.Base(name), strings.Join(args, " "), err, strings.TrimSpace(out.String()))
	}
	return out.String(), nil
}

// inNetns runs fn on an OS thread that has joined the named network namespace.
// Files under /proc/sys/net and /proc/thread-self/net opened by fn belong to
// that namespace, and processes fn starts are born in it. If the thread
// cannot return to its original namespace it stays locked, so the runtime
// retires it instead of reusing it.
func inNetns(name string, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("open own netns: %w", err)
			return
		}
		defer orig.Close()
		target, err := os.Open(netnsPath(name))
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("open netns %s: %w", name, err)
			return
		}
		defer target.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("setns %s: %w", name, err)
			return
		}
		ferr := fn()
		if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- errors.Join(ferr, fmt.Errorf("return from netns %s: %w", name, err))
			return // thread stays locked and is discarded
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// sysctl is one /proc/sys/net setting.
type sysctl struct {
	key      string // path under /proc/sys, with '/' separators
	val      string
	optional bool // ignore if the key does not exist (e.g. no IPv6)
}

// setSysctls writes settings inside a namespace (never the root one).
func setSysctls(ns string, kvs ...sysctl) error {
	return inNetns(ns, func() error {
		for _, kv := range kvs {
			p := "/proc/sys/" + kv.key
			f, err := os.OpenFile(p, os.O_WRONLY, 0)
			if err != nil {
				if kv.optional && errors.Is(err, os.ErrNotExist) {
					continue
				}
				return fmt.Errorf("sysctl %s in %s: %w", kv.key, ns, err)
			}
			_, werr := f.WriteString(kv.val)
			cerr := f.Close()
			if err := errors.Join(werr, cerr); err != nil {
				return fmt.Errorf("sysctl %s=%s in %s: %w", kv.key, kv.val, ns, err)
			}
		}
		return nil
	})
}

// The spawner is a goroutine locked to its own OS thread for the life of
// the process. Sidecars are forked from it, so their Pdeathsig (which Linux
// ties to the forking thread, not the process) fires only when this process
// dies, never when the Go runtime retires a pooled thread that some other
// goroutine locked and abandoned.
var spawner struct {
	sync.Mutex
	ch chan spawnReq
}

type spawnReq struct {
	ns   string
	cmd  *exec.Cmd
	errc chan error
}

// startInNetns starts cmd from the spawner thread, so that the process is
// born in the named namespace.
func startInNetns(ns string, cmd *exec.Cmd) error {
	spawner.Lock()
	if spawner.ch == nil {
		spawner.ch = make(chan spawnReq)
		go spawnerLoop(spawner.ch)
	}
	ch := spawner.ch
	spawner.Unlock()
	req := spawnReq{ns: ns, cmd: cmd, errc: make(chan error, 1)}
	ch <- req
	return <-req.errc
}

// spawnerLoop serves start requests on a thread it never releases. If the
// thread cannot return to its namespace it retires from service but stays
// parked, keeping its children's Pdeathsig armed.
func spawnerLoop(ch chan spawnReq) {
	runtime.LockOSThread()
	orig, origErr := os.Open("/proc/thread-self/ns/net")
	for req := range ch {
		if origErr != nil {
			req.errc <- fmt.Errorf("spawner: open own netns: %w", origErr)
			continue
		}
		target, err := os.Open(netnsPath(req.ns))
		if err != nil {
			req.errc <- fmt.Errorf("spawner: open netns %s: %w", req.ns, err)
			continue
		}
		err = unix.Setns(int(target.Fd()), unix.CLONE_NEWNET)
		target.Close()
		if err != nil {
			req.errc <- fmt.Errorf("spawner: setns %s: %w", req.ns, err)
			continue
		}
		startErr := req.cmd.Start()
		if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
			spawner.Lock()
			if spawner.ch == ch {
				spawner.ch = nil
			}
			spawner.Unlock()
			req.errc <- errors.Join(startErr, fmt.Errorf("spawner: return from netns %s: %w", req.ns, err))
			select {} // park forever
		}
		req.errc <- startErr
	}
}

// nsInode returns the namespace inode behind a path such as /run/netns/X or
// /proc/PID/ns/net.
func nsInode(path string) (uint64, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return 0, err
	}
	return st.Ino, nil
}

// procInfo is one live process as seen in /proc.
type procInfo struct {
	pid     int
	netIno  uint64 // 0 if unreadable (zombie, gone)
	comm    string
	cmdline string
}

// listProcs scans /proc. Zombies and kernel threads have no net namespace
// link or command line and so match nothing.
func listProcs() ([]procInfo, error) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("read /proc: %w", err)
	}
	self := os.Getpid()
	var out []procInfo
	for _, ent := range ents {
		pid, err := strconv.Atoi(ent.Name())
		if err != nil || pid == self {
			continue
		}
		base := "/proc/" + ent.Name()
		p := procInfo{pid: pid}
		if link, err := os.Readlink(base + "/ns/net"); err == nil {
			p.netIno = parseNsLink(link)
		}
		if b, err := os.ReadFile(base + "/comm"); err == nil {
			p.comm = strings.TrimSpace(string(b))
		}
		if b, err := os.ReadFile(base + "/cmdline"); err == nil {
			p.cmdline = strings.TrimSpace(strings.ReplaceAll(string(b), "\x00", " "))
		}
		out = append(out, p)
	}
	return out, nil
}

// parseNsLink parses "net:[4026531840]".
func parseNsLink(link string) uint64 {
	i := strings.IndexByte(link, '[')
	j := strings.IndexByte(link, ']')
	if i < 0 || j <= i {
		return 0
	}
	n, _ := strconv.ParseUint(link[i+1:j], 10, 64)
	return n
}

// killAndWait sends SIGKILL to pids and waits (bounded) until none of them is
// a live, non-zombie process.
func killAndWait(pids []int, timeout time.Duration) error {
	for _, pid := range pids {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	deadline := time.Now().Add(timeout)
	for {
		var alive []int
		for _, pid := range pids {
			if _, err := usage.ProcStart(pid); err == nil {
				alive = append(alive, pid)
			}
		}
		if len(alive) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("processes %v still alive %v after SIGKILL", alive, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// deleteNetns unmounts and removes a named namespace, as `ip netns del` does.
// A missing namespace is not an error.
func deleteNetns(name string) error {
	p := netnsPath(name)
	if _, err := os.Lstat(p); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err := unix.Unmount(p, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("unmount netns %s: %w", name, err)
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove netns %s: %w", name, err)
	}
	return nil
}

// listNetns lists the named namespaces, sorted (os.ReadDir sorts by name).
func listNetns() ([]string, error) {
	return dirNames(NetnsDir, func(os.DirEntry) bool { return true })
}

// effectiveCaps reads CapEff of this process.
func effectiveCaps() (uint64, error) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "CapEff:"); ok {
			return strconv.ParseUint(strings.TrimSpace(v), 16, 64)
		}
	}
	return 0, errors.New("no CapEff in /proc/self/status")
}

// listening reports whether pid's namespace has a TCP socket listening on
// port (from /proc/PID/net/tcp and tcp6).
func listening(pid, port int) bool {
	want := fmt.Sprintf(":%04X", port)
	for _, f := range []string{"tcp", "tcp6"} {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/%s", pid, f))
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n")[1:] {
			fs := strings.Fields(line)
			if len(fs) > 3 && strings.HasSuffix(fs[1], want) && fs[3] == "0A" {
				return true
			}
		}
	}
	return false
}
