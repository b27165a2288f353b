package bench

import (
	"context"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/pathcost/pathcost/pkg/result"
	"github.com/pathcost/pathcost/pkg/tcpload"
)

// window returns the measured seconds per benchmark op (PATHCOST_BENCH_SECONDS, default 3).
func window() time.Duration {
	if s, err := strconv.ParseFloat(os.Getenv("PATHCOST_BENCH_SECONDS"), 64); err == nil && s > 0 {
		return time.Duration(s * float64(time.Second))
	}
	return 3 * time.Second
}

// BenchmarkLoopback runs one tcpload session per op on 127.0.0.1: server and client on their own
// locked OS threads in this process. cores/Gbps counts both sides (the whole process).
func BenchmarkLoopback(b *testing.B) {
	for _, tc := range []struct {
		name string
		cfg  tcpload.Config
	}{
		{"seed-100conns-100kB", tcpload.Config{Conns: 100, Buffer: 102400}},
		{"1conn-100kB", tcpload.Config{Conns: 1, Buffer: 102400}},
		{"100conns-16kB", tcpload.Config{Conns: 100, Buffer: 16384}},
		{"client-push", tcpload.Config{Conns: 100, Buffer: 102400, Direction: tcpload.ClientPush}},
		{"business-20msgs-25kB", tcpload.Config{Conns: 100, Buffer: 102400, Pace: tcpload.Pace{MsgsPerSec: 20, MsgBytes: 25000}}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			var mbps, cores float64
			for i := 0; i < b.N; i++ {
				m, c := loopbackOnce(b, tc.cfg)
				mbps += m
				cores += c
			}
			n := float64(b.N)
			b.ReportMetric(0, "ns/op")
			b.ReportMetric(mbps/n, "Mbps")
			b.ReportMetric(cores/n, "cores")
			b.ReportMetric(result.CoresPerGbps(cores/n, mbps/n), "cores/Gbps")
		})
	}
}

// loopbackOnce runs one session and returns the client's Mbps and the process's cores over the
// client's window.
func loopbackOnce(b *testing.B, cfg tcpload.Config) (mbps, cores float64) {
	b.Helper()
	srv, err := tcpload.Listen("127.0.0.1:0", tcpload.Config{Buffer: cfg.Buffer, AcceptTimeout: 30 * time.Second})
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan *tcpload.Result, 1)
	go func() { done <- srv.Serve(context.Background()) }()
	meter, err := tcpload.NewMeter(nil)
	if err != nil {
		b.Fatal(err)
	}
	cfg.Duration, cfg.Warmup, cfg.Probe = window(), time.Second, meter
	cli := tcpload.RunClient(context.Background(), srv.Addr().String(), cfg)
	sres := <-done
	if cli.Err != nil || sres.Err != nil {
		b.Fatalf("client: %v; server: %v", cli.Err, sres.Err)
	}
	if sres.TotalBytes != cli.TotalBytes {
		b.Fatalf("bytes not conserved: server %d, client %d", sres.TotalBytes, cli.TotalBytes)
	}
	u, ok := meter.Usage()
	if !ok {
		b.Fatal("the window never closed")
	}
	return cli.Mbps(), u.CPU.Cores
}
