#!/usr/bin/env bash
# tcpload vs the seed's C programs vs iperf3 (-P 100 -R -l 102400) at the seed's settings (100
# connections, 102400-byte buffers, server pushes), in alternating rounds: every round runs the
# three pairs once, in an order that rotates from round to round, each pair in a fresh network
# namespace, measured alike (bytes from lo's counters, CPU of all threads of both processes from
# /proc). Prints per-program medians (and the bytes queued in the pair's TCP queues at the
# window's end, which tell its steady state), the per-round ratios, and the median ratios with a 95 %
# confidence interval (order statistics; 9 rounds or more needed), then the benchmark line
# with the ratios as metrics (for benchstat).
#
# Usage: sudo bash bench/compare.sh [ROUNDS] [SECONDS] [PIN]
#   ROUNDS  rounds (default 9); SECONDS  measured window per pair (default 5, after 2 s)
#   PIN     "" (unpinned, default), split (server on CPU 0, client on CPU 1), same (both on CPU 0)
# Environment: PATHCOST_BENCH_TCPLOAD_FLAGS (added to tcpload's server and client, e.g.
#   "--notsent-lowat kernel"), PATHCOST_BENCH_NOTSENT_LOWAT (bytes: net.ipv4.tcp_notsent_lowat in
#   each pair's namespace, for all three programs), PATHCOST_MEASURE_LOCK (the lock file held while
#   measuring, default /tmp/pathcost-measure.lock).
# Run it on a quiet machine: other load lands on whichever program runs at that moment.
set -euo pipefail
cd "$(dirname "$0")"
rounds=${1:-9}
secs=${2:-5}
pin=${3:-}
command -v iperf3 >/dev/null || echo "note: iperf3 not installed (apt-get install iperf3): its rows will be missing" >&2
# one measurement at a time on this machine: wait for any other holder of the lock
lock=${PATHCOST_MEASURE_LOCK:-/tmp/pathcost-measure.lock}
exec 9>"$lock"
if ! flock -n 9; then
  echo "waiting for $lock (another measurement is running)" >&2
  flock 9
fi
bin=$(mktemp -d)
trap 'rm -rf "$bin"' EXIT
go test -c -o "$bin/bench.test" .
echo "running $rounds alternating rounds of ${secs}s windows (${pin:-unpinned}; about $((rounds * 3 * (secs + 3)))s)" >&2
PATHCOST_BENCH_ROUNDS=$rounds PATHCOST_BENCH_SECONDS=$secs PATHCOST_BENCH_PIN=$pin \
  "$bin/bench.test" -test.run '^$' -test.bench '^BenchmarkCompare$' -test.benchtime 1x
