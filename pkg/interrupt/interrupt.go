// Package interrupt carries SIGINT and SIGTERM from the libraries that must tear something
// down when one arrives (pkg/localnet's namespaces, pkg/cluster/nskube's cluster) to the
// program, which decides how to exit: library code never ends the process.
//
// A library starts a Watcher with its teardown and the program's Handler. On the first signal
// the Watcher runs the teardown and then calls the Handler with the signal and the teardown's
// error; a second signal before the teardown ends calls the Handler at once, with an error
// wrapping ErrCutShort. The Handler usually exits:
//
//	func(sig os.Signal, err error) {
//		if err != nil {
//			fmt.Fprintln(os.Stderr, err)
//		}
//		os.Exit(interrupt.ExitCode(sig)) // 130 for SIGINT, 143 for SIGTERM
//	}
package interrupt

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"sync"
	"syscall"
)

// ExitCode is the exit status a program stopped by sig reports, as a shell does: 128 + the
// signal's number (130 for SIGINT, 143 for SIGTERM, 129 for SIGHUP); 1 for nil or a signal
// that is not a syscall.Signal.
func ExitCode(sig os.Signal) int {
	if s, ok := sig.(syscall.Signal); ok && s > 0 {
		return 128 + int(s)
	}
	return 1
}

// ErrCutShort is wrapped by the error a Handler gets when a second signal arrived before the
// teardown that the first one started had ended.
var ErrCutShort = errors.New("a second signal cut the teardown short")

// Handler is told that sig arrived and how the teardown it started ended: nil when it is
// complete, an error wrapping ErrCutShort when a second signal (sig) arrived first, else the
// teardown's own error. A Handler normally exits the process (with ExitCode(sig)); if it
// returns, the Watcher stops catching signals, so the next one ends the process the default
// way.
type Handler func(sig os.Signal, err error)

// Watcher runs a teardown on the first of its signals and then tells its Handler.
type Watcher struct {
	ch     chan os.Signal
	quit   chan struct{}
	done   chan struct{}
	stop   sync.Once
	mu     sync.Mutex
	caught os.Signal
}

// Watch catches sigs (SIGINT and SIGTERM when none are given) from now on: on the first it runs
// teardown and calls h (nil: nothing is called) as Handler describes. Stop ends the watch.
func Watch(teardown func() error, h Handler, sigs ...os.Signal) *Watcher {
	if len(sigs) == 0 {
		sigs = []os.Signal{syscall.SIGINT, syscall.SIGTERM}
	}
	if h == nil {
		h = func(os.Signal, error) {}
	}
	w := &Watcher{ch: make(chan os.Signal, 2), quit: make(chan struct{}), done: make(chan struct{})}
	signal.Notify(w.ch, sigs...)
	go w.run(teardown, h)
	return w
}

func (w *Watcher) run(teardown func() error, h Handler) {
	defer signal.Stop(w.ch)
	var sig os.Signal
	select {
	case sig = <-w.ch:
	case <-w.quit:
		return
	}
	w.mu.Lock()
	w.caught = sig
	w.mu.Unlock()
	defer close(w.done)
	result := make(chan error, 1)
	go func() { result <- teardown() }()
	select {
	case err := <-result:
		h(sig, err)
	case sig2 := <-w.ch:
		h(sig2, fmt.Errorf("%v during the teardown after %v: %w", sig2, sig, ErrCutShort))
	}
}

// Stop stops catching the signals, unless one has already arrived: then the teardown and the
// Handler go on (and a second signal still cuts them short). It is safe to call more than
// once and from the teardown itself.
func (w *Watcher) Stop() { w.stop.Do(func() { close(w.quit) }) }

// Caught returns the signal that started the teardown (nil while none has arrived).
func (w *Watcher) Caught() os.Signal {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.caught
}

// Done is closed when the Handler of a caught signal has returned (never if none arrives).
func (w *Watcher) Done() <-chan struct{} { return w.done }
