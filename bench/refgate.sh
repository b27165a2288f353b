#!/usr/bin/env bash
# The reference gate behind `make gate`, `make reference` and `make gate-selftest`.
#
#   refgate.sh current                print the reference summary make gate compares with
#   refgate.sh compare REF NEW        tcpload compare REF NEW --tolerance $GATE_TOLERANCE; exit 1 on
#                                     a significant regression past the tolerance, 2 on bad input
#   refgate.sh save RESULTS_DIR       copy a combined run (summary.json/.md/.txt, chart.svg) into
#                                     testdata/reference/local-<UTC date>/ and point CURRENT at it;
#                                     refuses a run with missing scenarios or failed repeats
#   refgate.sh selftest               no measurement: the reference against itself must pass, and
#                                     against a copy with client Mbps x0.7 (and, separately, total
#                                     cores/Gbps x1.3) must fail naming that figure
#
# The measurement itself (the six scenarios) is `make e2e`, run by the Makefile targets.
set -euo pipefail
cd "$(dirname "$0")/.."

REF_ROOT=${REF_ROOT:-testdata/reference}
TOLERANCE=${GATE_TOLERANCE:-10}
# The figures that may fail the gate: bandwidth at saturation and each component's cost at equal
# load. Retransmits, set-up seconds and the kernel share are shown but do not gate: they are
# small numbers that move by more than any percentage between sessions on the same code.
FIGURES=${GATE_FIGURES:-client_mbps,server_mbps,client_cores_per_gbps,server_cores_per_gbps,sidecar_cores_per_gbps,total_cores_per_gbps}
# fewer samples than this and a Mann-Whitney U test at alpha 0.05 can hardly (4+4: only with no
# overlap at all) or never (3+3) call a change significant: such a gate could not fail
MIN_SAMPLES=${GATE_MIN_SAMPLES:-5}
GO=${GO:-go}
SCENARIOS=(plain gr gr+istio vpccni vpccni+istio nodeport)

die() { echo "refgate: $*" >&2; exit 2; }
tcpload() { "$GO" run ./cmd/tcpload "$@"; }
need_jq() { command -v jq >/dev/null || die "needs jq (sudo apt-get install jq)"; }

# current prints the summary.json of the reference named by $REF_ROOT/CURRENT.
current() {
  [ -f "$REF_ROOT/CURRENT" ] || die "no $REF_ROOT/CURRENT: make a reference first (sudo make reference)"
  local name
  name=$(tr -d '[:space:]' <"$REF_ROOT/CURRENT")
  [ -n "$name" ] || die "$REF_ROOT/CURRENT is empty"
  [ -f "$REF_ROOT/$name/summary.json" ] || die "$REF_ROOT/CURRENT names $name, which has no summary.json"
  echo "$REF_ROOT/$name/summary.json"
}

# compare runs tcpload compare and passes its exit status on (0 pass, 1 regression, 2 bad input,
# including a side with too few samples per figure for the test to ever find a change).
compare() {
  local ref=$1 new=$2 rc=0
  check_power "$ref"
  check_power "$new"
  echo "=== tcpload compare $ref $new --tolerance $TOLERANCE --figures $FIGURES"
  tcpload compare "$ref" "$new" --tolerance "$TOLERANCE" --figures "$FIGURES" || rc=$?
  case $rc in
    0) echo "gate PASSED: no figure significantly worse than the reference by more than $TOLERANCE%" ;;
    1) echo "gate FAILED: figure(s) significantly worse than the reference by more than $TOLERANCE% (REGRESSION above)" ;;
    *) echo "gate ERROR: tcpload compare could not compare (exit $rc)" ;;
  esac
  return "$rc"
}

# check_run fails unless the combined summary holds all six scenarios and no repeat failed.
check_run() {
  local sum=$1 missing dropped
  need_jq
  [ -f "$sum" ] || die "no combined summary $sum (the matrix stopped before writing it)"
  missing=$(jq -r --args '[.rows[].scenario] as $have | $ARGS.positional - $have | join(" ")' "$sum" "${SCENARIOS[@]}")
  [ -z "$missing" ] || die "$sum lacks scenario(s): $missing"
  dropped=$(jq '[.rows[].dropped // 0] | add' "$sum")
  [ "$dropped" = 0 ] || die "$sum has $dropped failed repeat(s) (dropped_runs, in its notes): a broken path is neither a pass nor a reference"
}

# check_power fails unless every row keeps at least MIN_SAMPLES per-run values of client Mbps and,
# when it has cost runs, of total cores/Gbps (summaries written before Stats kept values do not).
check_power() {
  local sum=$1 weak
  need_jq
  [ -f "$sum" ] || die "no summary $sum"
  weak=$(jq -r --argjson min "$MIN_SAMPLES" '.rows[] | . as $r
    | ["client_mbps", "total_cores_per_gbps"][] as $f
    | select($f == "client_mbps" or ($r[$f].n // 0) > 0)
    | select((($r[$f].values // []) | length) < $min)
    | "\($r.scenario) \($f): \((($r[$f].values // []) | length)) per-run values"' "$sum")
  [ -z "$weak" ] || die "$sum has too few samples for the gate (want >= $MIN_SAMPLES per figure; make gate and make reference run $MIN_SAMPLES repeats):
$weak"
}

save() {
  local dir=${1:?usage: refgate.sh save RESULTS_DIR} name dst f
  check_run "$dir/summary.json"
  check_power "$dir/summary.json"
  name=local-$(date -u +%Y-%m-%d)
  dst=$REF_ROOT/$name
  mkdir -p "$dst"
  for f in summary.json summary.md summary.txt chart.svg; do
    [ -f "$dir/$f" ] || die "$dir has no $f"
    cp "$dir/$f" "$dst/$f"
  done
  echo "$name" >"$REF_ROOT/CURRENT"
  echo "reference: $dst (from $dir); $REF_ROOT/CURRENT now names it — review and commit both"
}

# scaled writes a copy of summary $1 with figure $2 (of runs of mode $3) multiplied by $4 in every
# row that has it: the Stat (median, min, max, mean, values) and the value of each run of that mode
# (or of no mode: old summaries), so compare sees it whether it reads Stat values or runs.
scaled() {
  jq --arg fig "$2" --arg mode "$3" --argjson f "$4" '
    def sc: if type == "number" then . * $f else . end;
    .rows |= map(
      if .[$fig] then .[$fig] |= (.median |= sc | .min |= sc | .max |= sc | .mean |= sc
                                  | if .values then .values |= map(sc) else . end) else . end
      | if .runs then .runs |= map(if .[$fig] and (.mode == $mode or .mode == null) then .[$fig] |= sc else . end)
        else . end)' "$1"
}

selftest() {
  need_jq
  local ref fails=0
  ref=$(current)
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  expect() { # expect WANT_RC NEW FIGURE_LABEL: prints all but the "~" lines
    local want=$1 new=$2 label=$3 out rc=0
    out=$(compare "$ref" "$new" 2>&1) || rc=$?
    grep -v '~ (p=' <<<"$out" || true
    if [ "$rc" != "$want" ]; then
      echo "SELFTEST FAIL: $new: make gate's compare exited $rc, want $want"; fails=$((fails + 1))
    elif [ -n "$label" ] && ! grep -E "^[^ ]+ +$label {2,}.*REGRESSION" <<<"$out" >/dev/null; then
      echo "SELFTEST FAIL: $new: no REGRESSION line for '$label'"; fails=$((fails + 1))
    else
      echo "selftest ok: exit $rc as expected"
    fi
    if [ -n "$label" ]; then # which scenarios told the change from their own noise
      local caught missed
      caught=$(grep -E "^[^ ]+ +$label {2,}.*REGRESSION" <<<"$out" | awk '{print $1}' | paste -sd' ' -) || true
      missed=$(grep -E "^[^ ]+ +$label {2,}.*~ \(p=" <<<"$out" | awk '{print $1}' | paste -sd' ' -) || true
      echo "caught in: ${caught:-none}; not significant (the reference's spread overlaps) in: ${missed:-none}"
    fi
    echo
  }
  echo "--- the reference against itself: must pass"
  expect 0 "$ref" ""
  echo "--- client Mbps x0.7 (30 % less bandwidth in every scenario): must fail"
  scaled "$ref" client_mbps bandwidth 0.7 >"$tmp/bw.json"
  expect 1 "$tmp/bw.json" "client Mbps"
  echo "--- total cores/Gbps x1.3 (30 % more cost in every scenario): must fail"
  scaled "$ref" total_cores_per_gbps cost 1.3 >"$tmp/cost.json"
  expect 1 "$tmp/cost.json" "total cores/Gbps"
  [ "$fails" = 0 ] || { echo "gate-selftest: $fails check(s) failed"; return 1; }
  echo "gate-selftest: the gate passes the reference and fails both injected regressions"
}

case ${1:-} in
  current) current ;;
  compare) [ $# = 3 ] || die "usage: refgate.sh compare REF NEW"; compare "$2" "$3" ;;
  save) save "${2:-}" ;;
  check) check_run "${2:?usage: refgate.sh check SUMMARY}" ;;
  selftest) selftest ;;
  *) die "usage: refgate.sh current | compare REF NEW | save RESULTS_DIR | check SUMMARY | selftest" ;;
esac
