package nskube

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func waitNetns(pid int) error {
	self, _ := os.Readlink("/proc/self/ns/net")
	for i := 0; i < 100; i++ {
		if l, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/net", pid)); err == nil && l != self {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("process %d did not enter a new network namespace", pid)
}

func waitFile(ctx context.Context, path string, d time.Duration) error {
	deadline := time.Now().Add(d)
	for {
		if _, err := os.Stat(path); err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not appear within %s", path, d)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// start runs argv (prefixed by the namespace-entering command pre) in cgroup cg, output to
// logs/NAME.log, in its own process group so a terminal's Ctrl-C does not reach it.
func (s *State) start(ctx context.Context, name, node, cg string, pre []string, argv ...string) (Proc, error) {
	logDir := filepath.Join(s.Dir, "logs")
	if node != "" {
		logDir = filepath.Join(s.Dir, node, "logs")
	}
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		return Proc{}, err
	}
	logPath := filepath.Join(logDir, name+".log")
	lf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return Proc{}, err
	}
	defer lf.Close()
	full := append(append(append([]string{}, pre...), "sh", s.joinScript(), cg), argv...)
	cmd := exec.Command(full[0], full[1:]...)
	cmd.Stdout, cmd.Stderr = lf, lf
	cmd.Dir = s.Dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return Proc{}, fmt.Errorf("start %s: %w", name, err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }() // reap it if it dies while we live
	p := Proc{Name: name, Node: node, PID: cmd.Process.Pid, Cgroup: cg, Log: logPath}
	s.Procs = append(s.Procs, p) // recorded before the check: teardown finds it by PID either way
	// Teardown finds processes through their cgroups: one that is not in its cgroup is invisible
	// to it. The join script exits (status 125) when it joined no hierarchy; wait until the
	// process is in cg, or fail.
	deadline := time.Now().Add(10 * time.Second)
	for !s.owns(p) {
		select {
		case <-exited:
			if code := cmd.ProcessState.ExitCode(); code == joinFailed {
				return p, fmt.Errorf("%s could not join cgroup /%s in any hierarchy (see %s)", name, cg, logPath)
			}
			return p, fmt.Errorf("%s exited at once (%v; see %s)", name, cmd.ProcessState, logPath)
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			return p, fmt.Errorf("%s (pid %d) not in cgroup /%s after 10s (see %s)", name, p.PID, cg, logPath)
		}
	}
	return p, nil
}

// inNetStdin runs argv in the network namespace of pid with stdin (e.g. "ip -batch -").
func (s *State) inNetStdin(ctx context.Context, pid int, stdin string, argv ...string) error {
	full := append([]string{s.nsNet(pid), "--"}, argv...)
	ctx, cancel := context.WithTimeout(ctx, nsenterTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "nsenter", full...)
	cmd.WaitDelay = time.Second
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("nsenter %s: %w: %s\n%s", strings.Join(full, " "), err, out, stdin)
	}
	return nil
}

// nsenterTimeout bounds one configuration command run in a namespace (ip, sysctl writes).
const nsenterTimeout = 30 * time.Second

// setSysctl writes a per-network-namespace sysctl inside pid's namespace.
func (s *State) setSysctl(ctx context.Context, pid int, kv ...string) error {
	var sh strings.Builder
	for i := 0; i+1 < len(kv); i += 2 {
		fmt.Fprintf(&sh, "echo %s > /proc/sys/%s\n", kv[i+1], strings.ReplaceAll(kv[i], ".", "/"))
	}
	return s.inNetStdin(ctx, pid, "", "sh", "-ec", sh.String())
}

func (s *State) alive(name string) bool {
	for _, p := range s.Procs {
		if p.Name == name && running(p.PID) {
			return true
		}
	}
	return false
}
