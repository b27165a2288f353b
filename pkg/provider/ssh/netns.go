package ssh

import (
	"context"
	"fmt"
	"net"
	"os"
	"runtime"

	"golang.org/x/sys/unix"
)

// DialInNetNS returns a dial function whose sockets are made inside the network namespace at
// nsPath (/run/netns/NAME or /proc/PID/ns/net): hosts on a bridge inside a namespace (the vm
// provider's VMs, the tests' sshd) are reached without any address in this process's own
// namespace. Each dial runs on an OS thread that joins the namespace for the socket() call
// and the connection's set-up, then returns to its own namespace.
func DialInNetNS(nsPath string) func(ctx context.Context, network, addr string) (net.Conn, error) {
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
