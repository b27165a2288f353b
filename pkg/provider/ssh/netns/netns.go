// Package netns manages the named network namespaces the ssh provider's tests and the vm
// provider put their hosts in: created and deleted with iproute2, every process in them killed
// on delete, and connections dialled from inside them without touching this process's own
// namespace.
package netns

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Dialer returns a dial function whose sockets are made inside the network namespace at
// nsPath (/run/netns/NAME, see Path, or /proc/PID/ns/net): hosts on a bridge inside a namespace (the vm
// provider's VMs, the tests' sshd) are reached without any address in this process's own
// namespace. Each dial runs on an OS thread that joins the namespace for the socket() call
// and the connection's set-up, then returns to its own namespace.
func Dialer(nsPath string) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		type result struct {
			conn net.Conn
			err  error
		}
		ch := make(chan result, 1)
		go func() {
			runtime.LockOSThread()
			back, err := os.Open("/proc/thread-self/ns/net")
			if err != nil {
				runtime.UnlockOSThread()
				ch <- result{err: fmt.Errorf("this thread's network namespace: %w", err)}
				return
			}
			defer back.Close()
			f, err := os.Open(nsPath)
			if err != nil {
				runtime.UnlockOSThread()
				ch <- result{err: fmt.Errorf("network namespace: %w", err)}
				return
			}
			defer f.Close()
			if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
				runtime.UnlockOSThread()
				ch <- result{err: fmt.Errorf("join network namespace %s: %w", nsPath, err)}
				return
			}
			var d net.Dialer
			c, err := d.DialContext(ctx, network, addr)
			// Back to where the thread came from; a thread that cannot return stays locked,
			// and the runtime retires it with this goroutine.
			if unix.Setns(int(back.Fd()), unix.CLONE_NEWNET) == nil {
				runtime.UnlockOSThread()
			}
			ch <- result{c, err}
		}()
		r := <-ch
		return r.conn, r.err
	}
}

// Dir holds the bind mounts of named network namespaces.
const Dir = "/run/netns"

// Path is the file of the named namespace.
func Path(name string) string { return filepath.Join(Dir, name) }

// IP runs `ip ARGS...`; the error carries its output.
func IP(args ...string) error {
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// Add creates the named namespace with its loopback up.
func Add(name string) error {
	if err := IP("netns", "add", name); err != nil {
		return err
	}
	return IP("-n", name, "link", "set", "lo", "up")
}

// Exists reports whether the named namespace exists.
func Exists(name string) bool {
	_, err := os.Stat(Path(name))
	return err == nil
}

// Pids lists the processes (other than this one) whose network namespace is the named one.
func Pids(name string) ([]int, error) {
	var want syscall.Stat_t
	if err := syscall.Stat(Path(name), &want); err != nil {
		return nil, fmt.Errorf("network namespace %s: %w", name, err)
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		var st syscall.Stat_t
		if syscall.Stat("/proc/"+e.Name()+"/ns/net", &st) == nil && st.Ino == want.Ino && st.Dev == want.Dev {
			pids = append(pids, pid)
		}
	}
	return pids, nil
}

// Delete kills every process in the named namespace (waiting up to 5 s for them to go) and
// deletes it. A missing namespace is not an error.
func Delete(name string) error {
	if !Exists(name) {
		return nil
	}
	var left []int
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		pids, err := Pids(name)
		if err != nil {
			return err
		}
		left = nil
		for _, pid := range pids {
			if isZombie(pid) {
				continue
			}
			left = append(left, pid)
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		if len(left) == 0 || time.Now().After(deadline) {
			break
		}
	}
	err := IP("netns", "del", name)
	if len(left) > 0 {
		err = errors.Join(err, fmt.Errorf("network namespace %s: processes %v did not die", name, left))
	}
	return err
}

// isZombie reports whether pid has exited and waits for its parent.
func isZombie(pid int) bool {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] == 'Z'
}
