#!/usr/bin/env bash
# tcpload vs the seed's C programs vs iperf3 (-P 100 -R -l 102400), at the seed's settings,
# alternately (one round runs the three in turn; go test -count would group each program's runs),
# each pair in a private network namespace and measured alike from /proc. Prints medians and
# the ratios.
# Usage: sudo bash bench/compare.sh [COUNT] [SECONDS]   (defaults: 5 runs of 5 s each)
set -euo pipefail
cd "$(dirname "$0")/.."
count=${1:-5}
secs=${2:-5}
command -v iperf3 >/dev/null || echo "note: iperf3 not installed (apt-get install iperf3): its row will be missing" >&2
out=$(mktemp)
trap 'rm -f "$out"' EXIT
echo "running BenchmarkPrograms: $count alternating runs of ${secs}s each (this takes about $((count * 3 * (secs + 4)))s)" >&2
for i in $(seq "$count"); do
  echo "--- round $i of $count" >&2
  PATHCOST_BENCH_SECONDS=$secs go test -run '^$' -bench 'Programs' -count 1 ./bench | grep '^Benchmark' | tee -a "$out"
done
awk '
/^BenchmarkPrograms\// {
  split($1, a, "/"); name = a[2]; sub(/-[0-9]+$/, "", name)
  for (i = 3; i < NF; i++) {
    if ($(i+1) == "Mbps") mbps[name] = mbps[name] " " $i
    if ($(i+1) == "cores/Gbps") cpg[name] = cpg[name] " " $i
  }
}
function median(s,   n, v, i, j, t) {
  n = split(s, v, " ")
  for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (v[j] + 0 < v[i] + 0) { t = v[i]; v[i] = v[j]; v[j] = t }
  if (n == 0) return 0
  return (n % 2) ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
}
END {
  printf "\n%-8s %12s %12s\n", "program", "Mbps", "cores/Gbps"
  for (p in mbps) { m[p] = median(mbps[p]); c[p] = median(cpg[p]); printf "%-8s %12.0f %12.4f\n", p, m[p], c[p] }
  printf "\n"
  for (p in m) if (p != "tcpload" && m[p] > 0 && c["tcpload"] > 0)
    printf "tcpload / %-7s throughput %.2fx, cores per Gbps %.2fx (below 1 = cheaper)\n", p, m["tcpload"] / m[p], c["tcpload"] / c[p]
}' "$out"
