// Package bench holds pathcost's loopback benchmarks. They report Mbps and cores per Gbps with
// b.ReportMetric, so `go test -bench . -count 10 ./bench > new.txt` runs can be compared with
// benchstat. BenchmarkLoopback runs tcpload's sender and receiver on two locked threads of this
// process; BenchmarkPrograms runs tcpload, the seed's C programs and iperf3 as separate processes
// (bench/compare.sh alternates them), each in a private network namespace, all measured the same way from /proc.
package bench
