#!/usr/bin/env bash
# Study 2: proof of learning, detection rate against audit cost.
#   experiments/run.sh proof [--quick]
# Builds pol_experiment, runs the detection and cost studies into results/
# (or results-quick/ with --quick), skipping a study whose CSV is already
# there (delete it to rerun), then draws the plots and summary.md.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
quick=()
out="$here/results"
if [[ "${1:-}" == "--quick" ]]; then
  quick=(--quick)
  out="$here/results-quick"
fi
python="${COHORT_CACHE:-$HOME/.cache/cohort}/venv/bin/python"

[[ -x "$root/build/cohort" ]] || bash "$root/scripts/bootstrap.sh"
ninja -C "$root/build" pol_experiment >/dev/null
driver="$root/build/experiments/proof_of_learning/pol_experiment"

run_study() {  # study, the CSV it writes
  if [[ -s "$out/$2" ]]; then
    echo "[proof] $1: $out/$2 exists, skipping"
    return
  fi
  echo "[proof] $1 -> $out/$2"
  local started=$SECONDS
  "$driver" "$1" --out "$out" "${quick[@]}"
  echo "[proof] $1 took $((SECONDS - started)) s"
}
run_study detection detection.csv
run_study cost cost.csv
"$python" "$here/plot.py" "$out"
echo "[proof] done: $out/summary.md, $out/detection.png, $out/cost.png"
