#!/usr/bin/env bash
# Publishes a pathcost results directory in a GitHub Actions job: the markdown table goes to the
# job summary, every failed gate becomes an error annotation, every warning a warning annotation.
# Usage: publish-results.sh RESULTS_ROOT  (the newest directory holding summary.md below it is used)
set -euo pipefail
root=${1:?usage: publish-results.sh RESULTS_ROOT}
if [ ! -d "$root" ]; then
  echo "::warning title=pathcost::no results directory $root (the run stopped before writing one)"
  exit 0
fi
summary=$(find "$root" -name summary.md -printf '%T@ %p\n' | sort -n | tail -n 1 | cut -d' ' -f2-)
if [ -z "$summary" ]; then
  echo "::warning title=pathcost::no summary.md under $root"
  exit 0
fi
dir=$(dirname "$summary")
echo "results: $dir"
if [ -n "${GITHUB_STEP_SUMMARY:-}" ]; then
  { echo "## pathcost: $(basename "$dir")"; echo; cat "$summary"; } >>"$GITHUB_STEP_SUMMARY"
fi
if [ -f "$dir/summary.txt" ]; then
  # gate lines look like "  FAIL gr+istio: client Mbps ratio to baseline ... is below the floor 0.30"
  grep -E '^\s*FAIL ' "$dir/summary.txt" | sed -E 's/^\s*FAIL /::error title=pathcost gate::/' || true
  grep -E '^\s*WARN ' "$dir/summary.txt" | sed -E 's/^\s*WARN /::warning title=pathcost gate::/' || true
fi
