#!/usr/bin/env bash
# make bench-compare: the loopback benchmarks of two revisions, compared by benchstat.
#
# Environment (the Makefile passes its variables):
#   OLD, NEW   git revisions; an empty one is the working tree (default OLD=HEAD, NEW= working tree)
#   COUNT      samples per side (benchstat needs >= 4-5 to call a change significant)
#   BENCH      -bench regexp (default Loopback/seed: one 100-connection loopback session per op)
#   BENCH_SECONDS  measured window per op (PATHCOST_BENCH_SECONDS, default 2; warm-up 1 s on top)
#   BENCHSTAT  go run argument for benchstat (the golang.org/x/perf version in go.mod)
#
# Each side is compiled once (`go test -c ./bench`, a revision checked out with `git worktree add`
# into a temporary directory, removed afterwards), then the two test binaries run one op each in
# turn, COUNT times: old, new, old, new... so drift of a shared machine falls on both sides alike
# instead of on whichever ran second. That is `go test -run '^$' -bench BENCH -count COUNT ./bench`
# per side, interleaved. It measures: run it on a quiet machine.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD

OLD=${OLD-HEAD}
NEW=${NEW-}
COUNT=${COUNT:-5}
BENCH=${BENCH:-Loopback/seed}
BENCH_SECONDS=${BENCH_SECONDS:-2}
GO=${GO:-go}
BENCHSTAT=${BENCHSTAT:?BENCHSTAT: the go run argument for benchstat, e.g. golang.org/x/perf/cmd/benchstat@VERSION}

case $COUNT in '' | *[!0-9]* | 0) echo "bench-compare: COUNT=$COUNT: want a positive integer" >&2; exit 2 ;; esac

tmp=$(mktemp -d)
trees=()
cleanup() {
  for t in "${trees[@]}"; do git -C "$repo" worktree remove --force "$t" || echo "bench-compare: could not remove worktree $t" >&2; done
  git -C "$repo" worktree prune
  rm -rf "$tmp"
}
trap cleanup EXIT

# tree REV SIDE prints the directory holding REV: the working tree for an empty REV, else a
# temporary worktree of REV (detached).
tree() {
  if [ -z "$1" ]; then
    echo "$repo"
    return
  fi
  local dir=$tmp/tree-$2
  git -C "$repo" rev-parse --verify --quiet "$1^{commit}" >/dev/null || { echo "bench-compare: $2=$1 is not a revision" >&2; return 2; }
  git -C "$repo" worktree add --quiet --detach "$dir" "$1" >&2
  echo "$dir"
}

label() { if [ -z "$1" ]; then echo "working tree"; else echo "$1 ($(git -C "$repo" rev-parse --short "$1"))"; fi; }

old_tree=$(tree "$OLD" old)
[ "$old_tree" = "$repo" ] || trees+=("$old_tree")
new_tree=$(tree "$NEW" new)
[ "$new_tree" = "$repo" ] || trees+=("$new_tree")
echo "bench-compare: old = $(label "$OLD"), new = $(label "$NEW"); -bench '$BENCH', $COUNT samples each, ${BENCH_SECONDS}s windows"

for side in old new; do
  dir=${side}_tree
  (cd "${!dir}" && "$GO" test -c -o "$tmp/$side.test" ./bench) || { echo "bench-compare: $side: go test -c ./bench failed" >&2; exit 1; }
done

for i in $(seq 1 "$COUNT"); do
  for side in old new; do
    dir=${side}_tree
    echo "  $side $i/$COUNT"
    (cd "${!dir}/bench" && PATHCOST_BENCH_SECONDS=$BENCH_SECONDS "$tmp/$side.test" \
      -test.run '^$' -test.bench "$BENCH" -test.count 1 -test.benchtime 1x) >>"$tmp/$side.txt" ||
      { echo "bench-compare: $side run $i failed:" >&2; tail -n 20 "$tmp/$side.txt" >&2; exit 1; }
  done
done
grep -q '^Benchmark' "$tmp/old.txt" || { echo "bench-compare: -bench '$BENCH' matched no benchmark" >&2; exit 1; }

echo
# ns/op is 0 by design (the benchmarks report Mbps, cores and cores/Gbps per session)
"$GO" run "$BENCHSTAT" -confidence 0.9 old="$tmp/old.txt" new="$tmp/new.txt"
