package usage

import (
	"path/filepath"
	"testing"

	"github.com/prometheus/procfs"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func fixtureFS(t *testing.T, root string) *FS {
	t.Helper()
	f, err := NewFS(filepath.Join("testdata", root))
	require.NoError(t, err)
	return f
}

func TestReadProcFixture(t *testing.T) {
	f := fixtureFS(t, "proc")
	for _, pid := range []int{0, 4242} { // self is a symlink to 4242
		got, err := f.ReadProc(pid)
		require.NoError(t, err)
		assert.InDelta(t, 12.34, got.User, 1e-9)
		assert.InDelta(t, 5.67, got.System, 1e-9)
		assert.Equal(t, uint64(26986), got.Start)
		assert.InDelta(t, 18.01, got.Total(), 1e-9)
		assert.Equal(t, map[int]uint64{4242: 1_500_000_000, 4250: 300_000_001}, got.Tasks, "threads' schedstat, non-numeric entries skipped")
	}
	got, err := f.ReadProc(4243)
	require.NoError(t, err)
	assert.Equal(t, ProcTimes{User: 2.5, System: 0.5, Start: 30000}, got, `a kernel without scheduler info ("0 0 0"): no thread times`)
}

// Our userHZ must match the one procfs applies to /proc/stat and ProcStat.CPUTime.
func TestUserHZMatchesProcfs(t *testing.T) {
	fs, err := procfs.NewFS(filepath.Join("testdata", "proc"))
	require.NoError(t, err)
	p, err := fs.Proc(4242)
	require.NoError(t, err)
	st, err := p.Stat()
	require.NoError(t, err)
	assert.InDelta(t, st.CPUTime(), float64(st.UTime+st.STime)/userHZ, 1e-12)
}

func TestReadNodeFixture(t *testing.T) {
	got, err := fixtureFS(t, "proc").ReadNode()
	require.NoError(t, err)
	want := NodeTimes{NumCPU: 2, User: 10, Nice: 0.2, System: 3, Idle: 50, IOWait: 0.4, IRQ: 0.05, SoftIRQ: 0.6, Steal: 0.07}
	assert.Equal(t, want.NumCPU, got.NumCPU)
	for _, c := range []struct {
		name      string
		want, got float64
	}{
		{"user", want.User, got.User}, {"nice", want.Nice, got.Nice}, {"system", want.System, got.System},
		{"idle", want.Idle, got.Idle}, {"iowait", want.IOWait, got.IOWait}, {"irq", want.IRQ, got.IRQ},
		{"softirq", want.SoftIRQ, got.SoftIRQ}, {"steal", want.Steal, got.Steal},
	} {
		assert.InDelta(t, c.want, c.got, 1e-9, c.name)
	}
}

func TestReadNetDevFixture(t *testing.T) {
	got, err := fixtureFS(t, "proc").ReadNetDev(0)
	require.NoError(t, err)
	assert.Equal(t, map[string]DevCounters{
		"lo":       {RxBytes: 3293, TxBytes: 3293, RxPackets: 31, TxPackets: 31},
		"eth0":     {RxBytes: 46608811, TxBytes: 270756, RxPackets: 2588, TxPackets: 2648},
		"veth1a2b": {RxBytes: 18446744073709551000, TxBytes: 12345678901, RxPackets: 4294967296, TxPackets: 99},
	}, got)
}

func TestReadTCPFixture(t *testing.T) {
	got, err := fixtureFS(t, "proc").ReadTCP(4242)
	require.NoError(t, err)
	assert.Equal(t, TCPCounters{InSegs: 2574, OutSegs: 1 << 53, RetransSegs: 17}, got)
}

// Malformed files give errors, never panics (procfs itself panics on some of them).
func TestMalformedFixtures(t *testing.T) {
	f := fixtureFS(t, "bad/proc")
	for _, tc := range []struct {
		name string
		read func() error
		want string
	}{
		{"stat", func() error { _, err := f.ReadProc(0); return err }, "self/stat"},
		{"net/dev", func() error { _, err := f.ReadNetDev(0); return err }, "self/net/dev"},
		{"net/snmp", func() error { _, err := f.ReadTCP(1); return err }, "1/net/snmp"},
		{"proc stat", func() error { _, err := f.ReadNode(); return err }, "bad/proc/stat"},
		{"start", func() error { _, err := f.ProcStart(0); return err }, "self/stat"},
		{"no such pid", func() error { _, err := f.ReadProc(999999); return err }, "999999/stat"},
		{"negative pid", func() error { _, err := f.ReadNetDev(-5); return err }, "invalid pid"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var err error
			require.NotPanics(t, func() { err = tc.read() })
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

func TestSamplerFixture(t *testing.T) {
	s, err := NewSamplerFS(filepath.Join("testdata", "proc"), 0, map[string]int{"sidecar": 4243, "gone": 31337})
	require.NoError(t, err)
	snap, err := s.Take()
	require.NoError(t, err)
	assert.InDelta(t, 12.34, snap.Proc.User, 1e-9)
	assert.Equal(t, 2, snap.Node.NumCPU)
	assert.Len(t, snap.Net, 3)
	assert.Equal(t, uint64(17), snap.TCP.RetransSegs)
	assert.Equal(t, map[string]ProcTimes{"sidecar": {User: 2.5, System: 0.5, Start: 30000}}, snap.Watched)
	assert.Equal(t, []string{"gone"}, snap.Missing)
	require.Error(t, snap.WatchErr)
	assert.Contains(t, snap.WatchErr.Error(), `"gone" (pid 31337)`)
}

func TestNewFSBadRoot(t *testing.T) {
	_, err := NewFS(filepath.Join("testdata", "nope"))
	require.Error(t, err)
	_, err = NewSamplerFS(filepath.Join("testdata", "nope"), 0, nil)
	require.Error(t, err)
}
