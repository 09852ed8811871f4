#!/usr/bin/env bash
# Study 3: speed against Flower (flwr). Usage: experiments/flower/run.sh [--quick]
#
# Full: 10 rounds x 8 clients, Cohort and Flower interleaved (2 pairs) plus one
# Cohort run with proof of learning; aggregation rules for n = 10, 50, 100 and
# d = 1e5, 1e6. Results (JSON lines, plots, summary.md) go to
# experiments/flower/results/; raw logs to runs/experiments/flower/.
# --quick: 2 rounds x 2 clients of 0.1 local epoch, one run each, aggregation
# at n = 10, d = 1e5 only; everything under runs/experiments/flower-quick/.
#
# COHORT_FLOWER_PORT (default 9850) moves Flower's ports (it uses N + 1 of them).
# Re-running starts from scratch and overwrites the previous results. The
# measurements run at normal priority (they are timings); setup runs niced.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
python="${COHORT_VENV:-$HOME/.cache/cohort/venv}/bin/python"
cohort="$root/build/cohort"
bench="$root/build/tests/benchmarks/aggregation_bench"

quick=0
for arg in "$@"; do
  case "$arg" in
    --quick) quick=1 ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) echo "run.sh: unknown argument '$arg' (use --quick or nothing)" >&2; exit 2 ;;
  esac
done

bash "$here/setup.sh"
if [[ ! -x "$cohort" || ! -x "$bench" ]]; then
  if [[ ! -f "$root/build/build.ninja" ]]; then
    echo "run.sh: no build in $root/build: run scripts/bootstrap.sh first" >&2
    exit 1
  fi
  echo "building cohort and aggregation_bench ..."
  nice -n 10 ninja -C "$root/build" -j1 cohort aggregation_bench
fi

if (( quick )); then
  work="$root/runs/experiments/flower-quick"
  results="$work/results"
  race=(--pairs 1 --proof-runs 1 --clients 2 --rounds 2 --local-epochs 0.1)
  agg=(--n 10 --d 1e5)
else
  work="$root/runs/experiments/flower"
  results="$here/results"
  race=(--pairs 2 --proof-runs 1)
  agg=()
fi
rm -rf "$work"
mkdir -p "$work" "$results"
rm -f "$results/fl_runs.jsonl" "$results/aggregation.jsonl"

echo "== 1/3 federated job, Cohort and Flower interleaved (load: $(cut -d' ' -f1-3 /proc/loadavg))"
"$python" "$here/fl_race.py" --out "$work/fl" --cohort "$cohort" --flower-port "${COHORT_FLOWER_PORT:-9850}" "${race[@]}"
cp "$work/fl/runs.jsonl" "$results/fl_runs.jsonl"

echo "== 2/3 aggregation rules alone (load: $(cut -d' ' -f1-3 /proc/loadavg))"
"$python" "$here/agg_race.py" --cohort "$cohort" --bench "$bench" --out "$results/aggregation.jsonl" "${agg[@]}"

echo "== 3/3 tables and plots"
"$python" "$here/report.py" --results "$results"
echo "done: $results/summary.md and the PNG files beside it"
