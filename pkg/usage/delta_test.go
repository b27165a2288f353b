package usage

import (
	"math"
	"reflect"
	"testing"
	"time"

	"github.com/pathcost/pathcost/pkg/result"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// assertSane fails when any float field of v (a struct, possibly with maps of structs) is
// negative, NaN or infinite.
func assertSane(t *testing.T, v any) {
	t.Helper()
	var walk func(path string, rv reflect.Value)
	walk = func(path string, rv reflect.Value) {
		switch rv.Kind() {
		case reflect.Float64:
			f := rv.Float()
			assert.False(t, f < 0 || math.IsNaN(f) || math.IsInf(f, 0), "%s = %v", path, f)
		case reflect.Struct:
			for i := range rv.NumField() {
				if rv.Type().Field(i).IsExported() {
					walk(path+"."+rv.Type().Field(i).Name, rv.Field(i))
				}
			}
		case reflect.Map:
			for _, k := range rv.MapKeys() {
				walk(path+"["+k.String()+"]", rv.MapIndex(k))
			}
		}
	}
	walk("", reflect.ValueOf(v))
}

func TestProcCPU(t *testing.T) {
	a := ProcTimes{User: 10, System: 5, Start: 7}
	for _, tc := range []struct {
		name    string
		b       ProcTimes
		seconds float64
		want    result.CPU
	}{
		{"one core over 2s", ProcTimes{User: 11.5, System: 5.5, Start: 7}, 2, result.CPU{Cores: 1, UserCores: 0.75, SysCores: 0.25}},
		{"zero seconds", ProcTimes{User: 11, System: 6, Start: 7}, 0, result.CPU{}},
		{"negative seconds", ProcTimes{User: 11, System: 6, Start: 7}, -1, result.CPU{}},
		{"NaN seconds", ProcTimes{User: 11, System: 6, Start: 7}, math.NaN(), result.CPU{}},
		{"Inf seconds", ProcTimes{User: 11, System: 6, Start: 7}, math.Inf(1), result.CPU{}},
		{"backwards", ProcTimes{User: 9, System: 4, Start: 7}, 1, result.CPU{}},
		{"user backwards only", ProcTimes{User: 9, System: 6, Start: 7}, 1, result.CPU{Cores: 1, SysCores: 1}},
		{"NaN counter", ProcTimes{User: math.NaN(), System: 6, Start: 7}, 1, result.CPU{Cores: 1, SysCores: 1}},
		{"pid reused", ProcTimes{User: 20, System: 6, Start: 8}, 1, result.CPU{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := ProcCPU(a, tc.b, tc.seconds)
			assertSane(t, got)
			assert.InDelta(t, tc.want.Cores, got.Cores, 1e-12)
			assert.InDelta(t, tc.want.UserCores, got.UserCores, 1e-12)
			assert.InDelta(t, tc.want.SysCores, got.SysCores, 1e-12)
			assert.Zero(t, got.CoresPerGbps)
		})
	}
}

func TestProcCPUFromThreadTimes(t *testing.T) {
	const ms = uint64(1e6)
	// ticks say 1.5 s user + 0.5 s sys over 2 s; the threads' nanosecond times say 1.9 s
	a := ProcTimes{User: 10, System: 5, Start: 7, Tasks: map[int]uint64{7: 1000 * ms, 8: 500 * ms}}
	b := ProcTimes{User: 11.5, System: 5.5, Start: 7}
	for _, tc := range []struct {
		name    string
		tasks   map[int]uint64
		want    result.CPU
		precise bool
	}{
		{"threads", map[int]uint64{7: 2200 * ms, 8: 1200 * ms}, result.CPU{Cores: 0.95, UserCores: 0.7125, SysCores: 0.2375}, true},
		{"a thread started", map[int]uint64{7: 2200 * ms, 8: 1000 * ms, 9: 200 * ms}, result.CPU{Cores: 0.95, UserCores: 0.7125, SysCores: 0.2375}, true},
		{"a thread exited: ticks", map[int]uint64{7: 2200 * ms}, result.CPU{Cores: 1, UserCores: 0.75, SysCores: 0.25}, false},
		{"a thread went backwards: ticks", map[int]uint64{7: 2200 * ms, 8: 100 * ms}, result.CPU{Cores: 1, UserCores: 0.75, SysCores: 0.25}, false},
		{"no thread times at the end: ticks", nil, result.CPU{Cores: 1, UserCores: 0.75, SysCores: 0.25}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := b
			b.Tasks = tc.tasks
			got, precise := procCPU(a, b, 2)
			assertSane(t, got)
			assert.Equal(t, tc.precise, precise)
			assert.InDelta(t, tc.want.Cores, got.Cores, 1e-12)
			assert.InDelta(t, tc.want.UserCores, got.UserCores, 1e-12)
			assert.InDelta(t, tc.want.SysCores, got.SysCores, 1e-12)
		})
	}
	t.Run("less than a tick: no split", func(t *testing.T) {
		b := ProcTimes{User: 10, System: 5, Start: 7, Tasks: map[int]uint64{7: 1004 * ms, 8: 500 * ms}}
		got, precise := procCPU(a, b, 1)
		assert.True(t, precise)
		assert.Equal(t, result.CPU{Cores: 0.004}, got)
	})
}

func TestNodeCPU(t *testing.T) {
	a := NodeTimes{NumCPU: 2, User: 100, Nice: 1, System: 50, Idle: 1000, IOWait: 3, IRQ: 1, SoftIRQ: 5, Steal: 2}
	// 2 CPUs over 2 s = 4 CPU-seconds: 1.4 idle + 0.2 iowait = 1.6, so 2.4 not idle, less
	// the 0.2 steal's share 2.4/4 (result.NodeBetween): 2.28 busy; the tick-sampled split 1.0
	// user + 0.2 nice + 0.6 sys + 0.1 irq + 0.3 softirq.
	b := NodeTimes{NumCPU: 2, User: 101, Nice: 1.2, System: 50.6, Idle: 1001.4, IOWait: 3.2, IRQ: 1.1, SoftIRQ: 5.3, Steal: 2.2}
	got := NodeCPU(a, b, 2)
	assertSane(t, got)
	assert.Equal(t, 2, got.NumCPU)
	assert.InDelta(t, 1.14, got.BusyCores, 1e-9)
	assert.InDelta(t, 0.6, got.UserCores, 1e-9)
	assert.InDelta(t, 0.3, got.SysCores, 1e-9)
	assert.InDelta(t, 0.05, got.IRQCores, 1e-9)
	assert.InDelta(t, 0.15, got.SoftirqCores, 1e-9)
	assert.InDelta(t, 0.1, got.StealCores, 1e-9)
	assert.InDelta(t, 0.1, got.IOWaitCores, 1e-9)
	assert.InDelta(t, 40, got.IdlePct, 1e-9)

	t.Run("zero seconds", func(t *testing.T) {
		got := NodeCPU(a, b, 0)
		assertSane(t, got)
		assert.Equal(t, result.Node{NumCPU: 2}, got)
	})
	t.Run("backwards", func(t *testing.T) {
		got := NodeCPU(b, a, 1)
		assertSane(t, got)
		assert.Equal(t, result.Node{NumCPU: 2}, got)
	})
	t.Run("iowait backwards", func(t *testing.T) { // the kernel's iowait can go backwards
		c := b
		c.IOWait = a.IOWait - 0.01
		got := NodeCPU(a, c, 2)
		assertSane(t, got)
		assert.Zero(t, got.IOWaitCores)
		// idle and iowait are taken together: they grew by 1.39 of the 4 CPU-seconds
		assert.InDelta(t, (4-1.39)*(1-0.2/4)/2, got.BusyCores, 1e-9)
	})
	t.Run("nothing moved", func(t *testing.T) {
		got := NodeCPU(a, a, 1)
		assertSane(t, got)
		assert.Zero(t, got.IdlePct)
	})
}

func TestIfaceDelta(t *testing.T) {
	a := map[string]DevCounters{
		"lo":   {RxBytes: 1000, TxBytes: 1000, RxPackets: 10, TxPackets: 10},
		"eth0": {RxBytes: 5000, TxBytes: 7000, RxPackets: 50, TxPackets: 70},
		"gone": {RxBytes: 1, TxBytes: 1},
	}
	t.Run("every interface, no totals", func(t *testing.T) {
		b := map[string]DevCounters{
			"lo":    {RxBytes: 2000, TxBytes: 2000, RxPackets: 20, TxPackets: 20},
			"eth0":  {RxBytes: 5000 + 125_000_000, TxBytes: 7000 + 1_250_000, RxPackets: 150, TxPackets: 90},
			"veth0": {RxBytes: 125_000_000, TxBytes: 0, RxPackets: 3, TxPackets: 0}, // appeared in the window
		}
		got := IfaceDelta(a, b, 2)
		assertSane(t, got)
		assert.Empty(t, got.Name)
		assert.Zero(t, got.RxBytes, "totals are the session interface's, picked by SelectIface")
		assert.Equal(t, result.IfaceCount{RxBytes: 125_000_000, TxBytes: 1_250_000, RxPackets: 100, TxPackets: 20, RxMbps: 500, TxMbps: 5},
			got.Interfaces["eth0"])
		assert.Equal(t, uint64(1000), got.Interfaces["lo"].RxBytes)
		assert.Equal(t, uint64(125_000_000), got.Interfaces["veth0"].RxBytes)
		assert.NotContains(t, got.Interfaces, "gone")
	})
	t.Run("backwards and zero seconds", func(t *testing.T) {
		b := map[string]DevCounters{"lo": {}, "eth0": {RxBytes: 1, TxBytes: 2, RxPackets: 3, TxPackets: 4}}
		for _, sec := range []float64{0, -1, math.NaN(), 1} {
			got := IfaceDelta(a, b, sec)
			assertSane(t, got)
			assert.Equal(t, result.IfaceCount{}, got.Interfaces["eth0"])
		}
	})
	t.Run("counts kept, rates zero, without seconds", func(t *testing.T) {
		b := map[string]DevCounters{"eth0": {RxBytes: 6000, TxBytes: 7000}}
		got := IfaceDelta(a, b, 0)
		assert.Equal(t, uint64(1000), got.Interfaces["eth0"].RxBytes)
		assert.Zero(t, got.Interfaces["eth0"].RxMbps)
	})
	t.Run("nil maps", func(t *testing.T) {
		got := IfaceDelta(nil, nil, 1)
		assertSane(t, got)
		assert.Empty(t, got.Interfaces)
	})
}

func TestSelectIface(t *testing.T) {
	i := result.Iface{Interfaces: map[string]result.IfaceCount{
		"lo":   {RxBytes: 250_000, TxBytes: 260_000, RxMbps: 2, TxMbps: 2.08},
		"eth0": {RxBytes: 1, TxBytes: 2},
	}}
	for _, tc := range []struct {
		name string
		ok   bool
		want result.Iface
	}{
		{"lo", true, result.Iface{Name: "lo", RxBytes: 250_000, TxBytes: 260_000, RxMbps: 2, TxMbps: 2.08}},
		{"eth0", true, result.Iface{Name: "eth0", RxBytes: 1, TxBytes: 2}},
		{"veth9", false, result.Iface{}},
		{"", false, result.Iface{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := i
			assert.Equal(t, tc.ok, SelectIface(&got, tc.name))
			got.Interfaces = nil
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestTCPDelta(t *testing.T) {
	a := TCPCounters{InSegs: 100, OutSegs: 200, RetransSegs: 3}
	assert.Equal(t, result.TCP{NsInSegs: 50, NsOutSegs: 70, NsRetransSegs: 2},
		TCPDelta(a, TCPCounters{InSegs: 150, OutSegs: 270, RetransSegs: 5}))
	assert.Equal(t, result.TCP{NsOutSegs: 1}, TCPDelta(a, TCPCounters{InSegs: 99, OutSegs: 201, RetransSegs: 0}))
}

func TestDiff(t *testing.T) {
	t0 := time.Unix(1000, 0)
	a := Snapshot{
		At:      t0,
		Proc:    ProcTimes{User: 1, System: 1, Start: 5},
		Node:    NodeTimes{NumCPU: 2, User: 10, Idle: 10},
		Net:     map[string]DevCounters{"eth0": {RxBytes: 0}},
		TCP:     TCPCounters{InSegs: 1},
		Watched: map[string]ProcTimes{"sidecar": {User: 1, Start: 9}, "reused": {User: 1, Start: 10}, "exits": {User: 1, Start: 11}},
		Missing: []string{"late"},
	}
	b := Snapshot{
		At:      t0.Add(2 * time.Second),
		Proc:    ProcTimes{User: 2, System: 2, Start: 5},
		Node:    NodeTimes{NumCPU: 2, User: 12, Idle: 12},
		Net:     map[string]DevCounters{"eth0": {RxBytes: 250_000_000}},
		TCP:     TCPCounters{InSegs: 11},
		Watched: map[string]ProcTimes{"sidecar": {User: 2, System: 0.5, Start: 9}, "reused": {User: 5, Start: 12}, "late": {User: 1}},
		Missing: []string{"exits"},
	}
	u := Diff(a, b)
	assertSane(t, u)
	assert.Equal(t, 2.0, u.Seconds)
	assert.Equal(t, result.CPU{Cores: 1, UserCores: 0.5, SysCores: 0.5}, u.CPU)
	assert.InDelta(t, 1, u.Node.BusyCores, 1e-9)
	assert.InDelta(t, 50, u.Node.IdlePct, 1e-9)
	assert.InDelta(t, 1000, u.Iface.Interfaces["eth0"].RxMbps, 1e-9)
	assert.Equal(t, t0, u.Start)
	assert.Equal(t, t0.Add(2*time.Second), u.End)
	assert.Equal(t, []string{"process", "sidecar"}, u.Coarse, "no thread times: both from utime/stime")
	assert.Equal(t, uint64(10), u.TCP.NsInSegs)
	assert.Equal(t, map[string]result.CPU{"sidecar": {Cores: 0.75, UserCores: 0.5, SysCores: 0.25}}, u.Watched)
	assert.Equal(t, []string{"exits", "late", "reused"}, u.Missing)

	t.Run("reversed and zero", func(t *testing.T) {
		assertSane(t, Diff(b, a))
		assertSane(t, Diff(a, a))
		assertSane(t, Diff(Snapshot{}, Snapshot{}))
		require.NotPanics(t, func() { Diff(Snapshot{}, b) })
	})
	t.Run("a part unread at one edge is not measured, not counted since boot", func(t *testing.T) {
		bad := a
		bad.Node = NodeTimes{}
		bad.Net = nil
		bad.Unread = []string{PartNode, PartInterfaces}
		u := Diff(bad, b)
		assertSane(t, u)
		assert.Equal(t, []string{PartNode, PartInterfaces}, u.Unmeasured)
		assert.Zero(t, u.Node.BusyCores, "no figure from a zero reading")
		assert.Zero(t, u.Iface.RxBytes)
		assert.Equal(t, result.CPU{Cores: 1, UserCores: 0.5, SysCores: 0.5}, u.CPU, "the parts read at both edges still count")
	})
}
