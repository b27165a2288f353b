// Package bench holds pathcost's loopback benchmarks. They report Mbps and cores per Gbps with
// b.ReportMetric, so `go test -bench 'Loopback|Programs' -count 10 ./bench > new.txt` runs can be
// compared with benchstat. BenchmarkLoopback runs tcpload's sender and receiver as two loops of
// this process; BenchmarkPrograms runs tcpload, the seed's C programs and iperf3 as separate
// processes, each pair in a private network namespace, all measured the same way from /proc;
// BenchmarkCompare (bench/compare.sh, make compare) runs them in alternating rounds and reports
// tcpload's median per-round ratios to the others as metrics.
package bench
