package usage

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pathcost/pathcost/pkg/result"
)

func TestInterfaceOf(t *testing.T) {
	for _, tc := range []struct {
		addr, want, err string
	}{
		{"127.0.0.1:5000", "lo", ""},
		{"127.0.0.1", "lo", ""},
		{"127.0.0.2:1", "lo", ""}, // not assigned as such: the loopback range is lo's
		{"[::ffff:127.0.0.1]:80", "lo", ""},
		{"192.0.2.77:80", "", "find the interface of 192.0.2.77: no interface of this network namespace holds it"}, // TEST-NET-1
		{"", "", "no local address"},
		{"nonsense", "", "bad address"},
	} {
		t.Run(tc.addr, func(t *testing.T) {
			got, err := InterfaceOfAddr(tc.addr)
			if tc.err != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
	t.Run("an address of another interface", func(t *testing.T) {
		// whatever non-loopback address this namespace has must map to its own interface
		ifs, err := netInterfaceAddrs()
		require.NoError(t, err)
		for name, addrs := range ifs {
			for _, a := range addrs {
				got, err := InterfaceOf(a)
				require.NoError(t, err)
				assert.Equal(t, name, got, "%s", a)
			}
		}
	})
}

func TestFill(t *testing.T) {
	t0 := time.Unix(1700000000, 5)
	u := Usage{
		Start: t0, End: t0.Add(2 * time.Second), Seconds: 2,
		CPU:     result.CPU{Cores: 0.5},
		Node:    result.Node{NumCPU: 2, BusyCores: 1.5},
		Iface:   result.Iface{Interfaces: map[string]result.IfaceCount{"lo": {RxBytes: 10, RxMbps: 1}, "eth0": {RxBytes: 7}}},
		TCP:     result.TCP{NsInSegs: 3, NsOutSegs: 4, NsRetransSegs: 1},
		Watched: map[string]result.CPU{"sidecar": {Cores: 0.25}},
		Missing: []string{"proxy"},
		Coarse:  []string{"sidecar"},
	}
	t.Run("session side", func(t *testing.T) {
		rec := &result.Record{Mbps: 1000, PerGbpsOf: result.PerGbpsOfMbps, TCP: result.TCP{Retransmits: 9}}
		u.Fill(rec, "lo", "")
		assert.Equal(t, t0.UnixNano(), rec.WindowStartUnixNano)
		assert.Equal(t, t0.Add(2*time.Second).UnixNano(), rec.WindowEndUnixNano)
		assert.InDelta(t, 0.5, rec.CPU.CoresPerGbps, 1e-12)
		assert.InDelta(t, 1.5, rec.Node.CoresPerGbps, 1e-12)
		assert.InDelta(t, 0.25, rec.Watched["sidecar"].CoresPerGbps, 1e-12)
		assert.Equal(t, "lo", rec.Iface.Name)
		assert.Equal(t, uint64(10), rec.Iface.RxBytes)
		assert.Equal(t, result.TCP{Retransmits: 9, NsInSegs: 3, NsOutSegs: 4, NsRetransSegs: 1}, rec.TCP)
		assert.Equal(t, []string{"watched.proxy"}, rec.Unmeasured)
		assert.Len(t, rec.Notes, 2)
		assert.Contains(t, rec.Notes[0], `watched "proxy"`)
		assert.Contains(t, rec.Notes[1], "CPU of sidecar from utime/stime in 10 ms units")
	})
	t.Run("no bandwidth, unknown interface, parts unread", func(t *testing.T) {
		u := u
		u.Unmeasured = []string{PartNode, PartTCP}
		u.Node = result.Node{}
		rec := &result.Record{Mbps: 1000}
		u.Fill(rec, "", "no --iface given")
		assert.Zero(t, rec.CPU.CoresPerGbps, "no per_gbps_of: nothing divided")
		assert.Equal(t, []string{"node", "tcp", "watched.proxy", "iface"}, rec.Unmeasured)
		assert.Contains(t, rec.Notes, "the session's interface is unknown: no --iface given")
		assert.Empty(t, rec.Iface.Name)
		assert.Zero(t, rec.Iface.RxBytes)
	})
	t.Run("interface not in net/dev", func(t *testing.T) {
		rec := &result.Record{}
		u.Fill(rec, "veth7", "")
		assert.Contains(t, rec.Unmeasured, "iface")
		assert.Contains(t, rec.Notes, "the session's interface veth7 is not in this network namespace's /proc/net/dev")
	})
	t.Run("interfaces unread: one note", func(t *testing.T) {
		u := u
		u.Unmeasured = []string{PartInterfaces}
		rec := &result.Record{}
		u.Fill(rec, "lo", "")
		assert.Equal(t, []string{"iface", "watched.proxy"}, rec.Unmeasured)
	})
}

// netInterfaceAddrs lists the non-loopback addresses of this namespace held by exactly one
// interface, by interface.
func netInterfaceAddrs() (map[string][]netip.Addr, error) {
	ifs, err := net.Interfaces()
	if err != nil {
		return nil, err
	}
	owners := map[netip.Addr][]string{}
	for _, ifc := range ifs {
		addrs, err := ifc.Addrs()
		if err != nil {
			return nil, err
		}
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok {
				if ip, ok := netip.AddrFromSlice(n.IP); ok && !ip.Unmap().IsLoopback() {
					owners[ip.Unmap()] = append(owners[ip.Unmap()], ifc.Name)
				}
			}
		}
	}
	out := map[string][]netip.Addr{}
	for ip, names := range owners {
		if len(names) == 1 {
			out[names[0]] = append(out[names[0]], ip)
		}
	}
	return out, nil
}
