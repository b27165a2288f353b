package interrupt

import (
	"errors"
	"os"
	"os/signal"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestExitCode(t *testing.T) {
	assert.Equal(t, 130, ExitCode(syscall.SIGINT))
	assert.Equal(t, 143, ExitCode(syscall.SIGTERM))
	assert.Equal(t, 129, ExitCode(syscall.SIGHUP))
	assert.Equal(t, 1, ExitCode(nil))
}

type call struct {
	sig os.Signal
	err error
}

// sink keeps SIGUSR1/2 from ending the test process whatever the Watcher does.
func sink(t *testing.T) {
	ch := make(chan os.Signal, 16)
	signal.Notify(ch, syscall.SIGUSR1, syscall.SIGUSR2)
	t.Cleanup(func() { signal.Stop(ch) })
}

func kill(t *testing.T, sig syscall.Signal) {
	require.NoError(t, syscall.Kill(os.Getpid(), sig))
}

func TestTeardownThenHandler(t *testing.T) {
	sink(t)
	calls := make(chan call, 2)
	torn := false
	w := Watch(func() error { torn = true; return errors.New("left: x") }, func(s os.Signal, err error) { calls <- call{s, err} }, syscall.SIGUSR1)
	defer w.Stop()
	assert.Nil(t, w.Caught())
	kill(t, syscall.SIGUSR1)
	select {
	case c := <-calls:
		assert.Equal(t, syscall.SIGUSR1, c.sig)
		assert.EqualError(t, c.err, "left: x")
		assert.True(t, torn, "the handler runs after the teardown")
	case <-time.After(5 * time.Second):
		t.Fatal("handler not called")
	}
	<-w.Done()
	assert.Equal(t, syscall.SIGUSR1, w.Caught())
}

func TestSecondSignalCutsShort(t *testing.T) {
	sink(t)
	calls := make(chan call, 2)
	release, started := make(chan struct{}), make(chan struct{})
	defer close(release)
	w := Watch(func() error { close(started); <-release; return nil }, func(s os.Signal, err error) { calls <- call{s, err} }, syscall.SIGUSR1, syscall.SIGUSR2)
	kill(t, syscall.SIGUSR1)
	<-started
	kill(t, syscall.SIGUSR2)
	select {
	case c := <-calls:
		assert.Equal(t, syscall.SIGUSR2, c.sig, "the second signal is reported")
		assert.ErrorIs(t, c.err, ErrCutShort)
	case <-time.After(5 * time.Second):
		t.Fatal("a second signal did not end the wait at once")
	}
	<-w.Done()
}

func TestStopBeforeSignal(t *testing.T) {
	sink(t)
	calls := make(chan call, 1)
	w := Watch(func() error { return nil }, func(s os.Signal, err error) { calls <- call{s, err} }, syscall.SIGUSR1)
	w.Stop()
	w.Stop()
	time.Sleep(20 * time.Millisecond) // let the watcher leave signal.Notify
	kill(t, syscall.SIGUSR1)
	select {
	case c := <-calls:
		t.Fatalf("handler called after Stop: %v", c)
	case <-time.After(200 * time.Millisecond):
	}
	assert.Nil(t, w.Caught())
}
