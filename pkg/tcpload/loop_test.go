//go:build linux

package tcpload

import (
	"testing"
	"time"

	"github.com/pathcost/pathcost/pkg/result"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// TestBatchingReaderNapsThenWaitsWhenNothingComes checks the receiving side's waits with read
// batches (Config.ReadBatch): with nothing readable a wait is a short nap, not a wait for the
// loop's full timeout; after idleWaits naps that found nothing the loop waits to be woken (a paced
// or idle session does not spin); an event is returned and makes it nap again.
func TestBatchingReaderNapsThenWaitsWhenNothingComes(t *testing.T) {
	e, err := newEngine(Config{Conns: 1, Buffer: 1024, Direction: ServerPush, ReadBatch: 100 * time.Microsecond}, result.RoleClient)
	require.NoError(t, err)
	defer e.close()
	e.setDirection(ServerPush)
	require.False(t, e.sending)
	require.Equal(t, 100*time.Microsecond, e.readNap)

	const wait = 300 * time.Millisecond // what the loop would allow the wait
	for i := 1; i <= idleWaits; i++ {
		start := time.Now()
		n, err := e.poll(wait)
		took := time.Since(start)
		require.NoError(t, err)
		assert.Zero(t, n)
		assert.Equal(t, i, e.emptyWaits, "a nap that found nothing counts as an empty wait")
		assert.Less(t, took, wait/3, "nap %d: a nap, not a wait for the timeout", i)
	}
	start := time.Now()
	n, err := e.poll(wait)
	require.NoError(t, err)
	assert.Zero(t, n)
	assert.GreaterOrEqual(t, time.Since(start), wait-10*time.Millisecond, "after %d empty naps the loop waits to be woken", idleWaits)

	one := [8]byte{1}
	_, err = unix.Write(e.wake, one[:])
	require.NoError(t, err)
	n, err = e.poll(wait)
	require.NoError(t, err)
	require.Equal(t, 1, n, "the event")
	assert.Equal(t, e.wake, int(e.events[0].Fd))
	assert.Zero(t, e.emptyWaits, "an event ends the idle state")
	e.handleWake()
	start = time.Now()
	n, err = e.poll(wait)
	require.NoError(t, err)
	assert.Zero(t, n)
	assert.Less(t, time.Since(start), wait/3, "busy again: a nap")
}
