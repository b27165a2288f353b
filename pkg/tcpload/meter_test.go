package tcpload

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pathcost/pathcost/pkg/result"
)

func TestNewRecordUnmeasuredIsNeverZero(t *testing.T) {
	res := &Result{Role: result.RoleClient, Local: "127.0.0.1:4000", WindowSeconds: 1, WindowBytes: 125_000_000, Conns: 1}
	t.Run("no meter", func(t *testing.T) {
		rec := NewRecord(res, nil)
		assert.Equal(t, []string{"cpu", "node", "iface", "tcp"}, rec.Unmeasured)
		assert.Len(t, rec.Notes, 4)
		assert.Empty(t, rec.StartedAt, "no session start known")
	})
	t.Run("window never opened", func(t *testing.T) {
		m, err := NewMeter(map[string]int{"sidecar": 1})
		require.NoError(t, err)
		rec := NewRecord(res, m)
		assert.Equal(t, []string{"cpu", "node", "iface", "tcp", "watched.sidecar"}, rec.Unmeasured)
		assert.Contains(t, rec.Notes[0], "the measurement window never opened")
	})
}

// TestMeterRecord measures a real loopback session (moved here from tcpload_test.go).
func TestMeterRecord(t *testing.T) {
	m, err := NewMeter(nil)
	require.NoError(t, err)
	s, err := Listen("127.0.0.1:0", Config{})
	require.NoError(t, err)
	done := make(chan *Result, 1)
	go func() { done <- s.Serve(context.Background()) }()
	before := time.Now()
	cli := RunClient(context.Background(), s.Addr().String(), Config{Conns: 4, Duration: 500 * time.Millisecond, Warmup: 100 * time.Millisecond, Probe: m})
	<-done
	require.NoError(t, cli.Err)
	rec := NewRecord(cli, m)
	assert.Equal(t, result.Schema, rec.Schema)
	assert.Equal(t, result.RoleClient, rec.Role)
	assert.Positive(t, rec.Mbps)
	assert.Positive(t, rec.CPU.Cores, "the client used CPU")
	assert.Positive(t, rec.CPU.CoresPerGbps)
	assert.Positive(t, rec.Node.BusyCores)
	assert.Empty(t, rec.Unmeasured, "%v", rec.Notes)
	assert.Equal(t, result.PerGbpsOfMbps, rec.PerGbpsOf)
	assert.Equal(t, "lo", rec.Iface.Name)
	// data read early in the window may have crossed lo before it opened (socket buffers)
	assert.GreaterOrEqual(t, float64(rec.Iface.RxBytes), float64(rec.Bytes)*0.5, "loopback carried the application bytes")
	assert.Empty(t, rec.Error)
	require.NotEmpty(t, rec.Intervals)
	started, err := time.Parse(time.RFC3339Nano, rec.StartedAt)
	require.NoError(t, err)
	assert.False(t, started.Before(before.Truncate(time.Microsecond)), "started_at %s, test started %s", started, before)
	assert.Less(t, started.UnixNano(), rec.WindowStartUnixNano)
	// the window's edges are the meter's readings, just after the engine's: within a few ms
	// on an idle machine
	assert.InDelta(t, rec.Seconds, float64(rec.WindowEndUnixNano-rec.WindowStartUnixNano)/1e9, 0.05)
}
