package bench

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/pathcost/pathcost/pkg/result"
	"github.com/pathcost/pathcost/pkg/tcpload"
)

// rounds returns the rounds per BenchmarkCompare op (PATHCOST_BENCH_ROUNDS, default 9).
func rounds(b *testing.B) int {
	s := os.Getenv("PATHCOST_BENCH_ROUNDS")
	if s == "" {
		return 9
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		b.Fatalf("PATHCOST_BENCH_ROUNDS=%q: want a positive number", s)
	}
	return n
}

// cost is cores (server + client) per Gbps of lo traffic.
func (m measurement) cost() float64 {
	return result.CoresPerGbps(m.serverCores+m.clientCores, m.mbps)
}

// serverCost is the server's cores per Gbps of lo traffic.
func (m measurement) serverCost() float64 { return result.CoresPerGbps(m.serverCores, m.mbps) }

// clientCost is the client's cores per Gbps of lo traffic.
func (m measurement) clientCost() float64 { return result.CoresPerGbps(m.clientCores, m.mbps) }

// BenchmarkCompare runs tcpload, the seed's C programs and iperf3 in alternating rounds (one op =
// PATHCOST_BENCH_ROUNDS rounds, default 9; each round runs every pair once, the order rotating
// from round to round), each pair in a fresh network namespace, measured alike (see runPair).
// It prints a table of medians, the per-round ratios and the median ratios with a 95 %
// confidence interval to stderr, and reports the median ratios as metrics benchstat can track:
//
//	x-seed-tput    tcpload's Mbps / the C pair's, same round (>= 1: as fast)
//	x-seed-cost    tcpload's cores per Gbps / the C pair's, same round (<= 1: as cheap)
//	x-iperf3-tput-per-core  tcpload's Mbps per core / iperf3's, same round
//	x-seed-server-cost, x-seed-client-cost  x-seed-cost for each side alone: which program of
//	               the pair the difference is in
//	x-seed-cost-short, x-iperf3-tput-per-core-short  the same over the rounds in which both
//	               pairs were in the short-queue state (absent when none was)
//
// Run it with -benchtime 1x (bench/compare.sh does, under the measurement lock).
// PATHCOST_BENCH_PIN=split|same pins server and client (see pinning).
func BenchmarkCompare(b *testing.B) {
	needRoot(b)
	progs := programs(b)
	n := rounds(b)
	for i := 0; i < b.N; i++ {
		got := map[string][]measurement{}
		for r := 0; r < n; r++ {
			for k := range progs {
				p := progs[(r+k)%len(progs)]
				if p.missing != "" {
					continue
				}
				got[p.name] = append(got[p.name], runPair(b, p))
			}
		}
		metrics := writeComparison(os.Stderr, progs, got)
		for _, m := range metrics {
			b.ReportMetric(m.value, m.unit)
		}
	}
	b.ReportMetric(0, "ns/op")
}

type metric struct {
	unit  string
	value float64
}

// writeComparison prints the table and returns the metrics to report.
func writeComparison(w io.Writer, progs []program, got map[string][]measurement) []metric {
	pin := os.Getenv("PATHCOST_BENCH_PIN")
	if pin == "" {
		pin = "unpinned"
	}
	fmt.Fprintf(w, "\n%d rounds, %s, %s windows; Mbps = lo's bytes, cores = server + client from /proc,\n"+
		"queued = bytes in the TCP send and receive queues at the window's end (a few MB: the reader keeps up; hundreds: every queue full)\n", len(got["tcpload"]), pin, window())
	flags, lowat := os.Getenv("PATHCOST_BENCH_TCPLOAD_FLAGS"), os.Getenv("PATHCOST_BENCH_NOTSENT_LOWAT")
	if flags == "" {
		flags = fmt.Sprintf("none (TCP_NOTSENT_LOWAT twice the buffer, at least %d KiB; the reader reads in batches, %s naps)",
			tcpload.MinAutoNotSentLowat>>10, tcpload.DefaultReadBatch)
	}
	if lowat == "" {
		lowat = "the kernel's (unbounded unless set)"
	}
	fmt.Fprintf(w, "tcpload's extra flags: %s; net.ipv4.tcp_notsent_lowat in each namespace, for all three: %s\n", flags, lowat)
	fmt.Fprintf(w, "%-8s %22s %22s %12s %12s %20s\n", "program", "Mbps median (min-max)", "cores/Gbps (min-max)", "server cores", "client cores", "queued MB (min-max)")
	for _, p := range progs {
		ms := got[p.name]
		if len(ms) == 0 {
			fmt.Fprintf(w, "%-8s %s\n", p.name, p.missing)
			continue
		}
		mbps, cost, sc, cc := column(ms, func(m measurement) float64 { return m.mbps }), column(ms, measurement.cost),
			column(ms, func(m measurement) float64 { return m.serverCores }), column(ms, func(m measurement) float64 { return m.clientCores })
		q := column(ms, func(m measurement) float64 { return m.queuedMB })
		fmt.Fprintf(w, "%-8s %8.0f (%5.0f-%5.0f) %8.4f (%.4f-%.4f) %12.3f %12.3f %6.0f (%4.0f-%4.0f)\n", p.name,
			median(mbps), minOf(mbps), maxOf(mbps), median(cost), minOf(cost), maxOf(cost), median(sc), median(cc), median(q), minOf(q), maxOf(q))
	}
	for _, p := range progs {
		if ms := got[p.name]; len(ms) > 0 {
			var qs []string
			for _, m := range ms {
				qs = append(qs, fmt.Sprintf("%.0f", m.queuedMB))
			}
			fmt.Fprintf(w, "queued MB per round, %-8s %s\n", p.name+":", strings.Join(qs, " "))
		}
	}
	var out []metric
	t := got["tcpload"]
	// ratio prints the per-round ratios f of tcpload against other over the rounds keep admits
	// (nil: all) and reports their median as unit; nothing when no round is admitted.
	ratio := func(other string, label, unit string, f func(t, o measurement) float64, keep func(t, o measurement) bool) {
		o := got[other]
		n := min(len(t), len(o))
		var rs []string
		var xs []float64
		for i := 0; i < n; i++ {
			if keep != nil && !keep(t[i], o[i]) {
				continue
			}
			x := f(t[i], o[i])
			xs = append(xs, x)
			rs = append(rs, fmt.Sprintf("%.2f", x))
		}
		if len(xs) == 0 {
			if n > 0 {
				fmt.Fprintf(w, "tcpload / %-7s %-22s no round qualifies\n", other, label)
			}
			return
		}
		lo, hi, cov, ok := medianCI(xs, 0.95)
		ci := fmt.Sprintf("95%% CI %.2f-%.2f (exact coverage %.1f%%)", lo, hi, cov*100)
		if !ok {
			ci = fmt.Sprintf("too few rounds for a 95%% CI: min-max %.2f-%.2f covers %.1f%%", lo, hi, cov*100)
		}
		rounds := ""
		if keep != nil {
			rounds = fmt.Sprintf(" over %d of %d rounds", len(xs), n)
		}
		fmt.Fprintf(w, "tcpload / %-7s %-22s median %.2fx%s, %s; per round: %s\n", other, label, median(xs), rounds, ci, strings.Join(rs, " "))
		out = append(out, metric{unit, median(xs)})
	}
	tput := func(t, o measurement) float64 { return t.mbps / o.mbps }
	cost := func(t, o measurement) float64 { return t.cost() / o.cost() }
	perCore := func(t, o measurement) float64 { return o.cost() / t.cost() }
	ratio("seed-c", "throughput", "x-seed-tput", tput, nil)
	ratio("seed-c", "cores per Gbps", "x-seed-cost", cost, nil)
	ratio("seed-c", "server cores/Gbps", "x-seed-server-cost", func(t, o measurement) float64 { return t.serverCost() / o.serverCost() }, nil)
	ratio("seed-c", "client cores/Gbps", "x-seed-client-cost", func(t, o measurement) float64 { return t.clientCost() / o.clientCost() }, nil)
	ratio("seed-c", "cores/Gbps, short q.", "x-seed-cost-short", cost, bothShort)
	ratio("iperf3", "throughput", "x-iperf3-tput", tput, nil)
	ratio("iperf3", "throughput per core", "x-iperf3-tput-per-core", perCore, nil)
	ratio("iperf3", "tput/core, short q.", "x-iperf3-tput-per-core-short", perCore, bothShort)
	fmt.Fprintf(w, "(short q.: rounds in which both pairs held under %.0f MB in their queues, the same steady state)\n", fullQueuesMB)
	return out
}

// fullQueuesMB separates the two steady states by the bytes a pair's TCP queues hold at the
// window's end: a few MB to a few tens when the reader keeps up, 300-440 MB when every queue is
// full (README, "Two steady states").
const fullQueuesMB = 100.0

// bothShort admits a round in which both pairs were in the short-queue state.
func bothShort(t, o measurement) bool { return t.queuedMB < fullQueuesMB && o.queuedMB < fullQueuesMB }

func column(ms []measurement, f func(measurement) float64) []float64 {
	xs := make([]float64, len(ms))
	for i, m := range ms {
		xs[i] = f(m)
	}
	return xs
}

func minOf(xs []float64) float64 {
	m := xs[0]
	for _, x := range xs {
		m = min(m, x)
	}
	return m
}

func maxOf(xs []float64) float64 {
	m := xs[0]
	for _, x := range xs {
		m = max(m, x)
	}
	return m
}
