#!/usr/bin/env bash
# Builds the libFuzzer harnesses (fuzz/, clang, ASan + UBSan) into
# build-fuzz/ and runs each for a bounded time from a copy of its committed
# seed corpus (fuzz/corpus/<target>/). Fails if any harness reports a crash,
# a leak, a sanitizer finding or a broken invariant, naming the target and
# the reproducer. docs/FUZZING.md explains targets and reproduction.
#
# Run scripts/bootstrap.sh first (scripts/test.sh does): it installs clang and
# the Python environment that holds LibTorch.
#
# Environment:
#   COHORT_FUZZ_SECONDS  seconds per target (30; 7 targets: 3.5 minutes in all)
#   COHORT_FUZZ_TARGETS  space-separated subset of targets (all by default)
#   COHORT_CACHE         where the Python environment lives (~/.cache/cohort)
#   COHORT_JOBS          ninja's parallel jobs (ninja's default when unset)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=$ROOT/build-fuzz
CACHE=${COHORT_CACHE:-$HOME/.cache/cohort}
SECONDS_PER_TARGET=${COHORT_FUZZ_SECONDS:-30}
TARGETS=${COHORT_FUZZ_TARGETS:-"message tensor_codec idx config npy ledger_entry checkpoint"}
SUPPRESSIONS=$ROOT/fuzz/sanitizers

log() { echo "[fuzz] $*"; }
# shellcheck source=scripts/build_dir.sh
source "$ROOT/scripts/build_dir.sh"

configure_and_build() {
  log "configuring $BUILD (clang, libFuzzer + ASan + UBSan)"
  CC=clang CXX=clang++ configure_build_dir "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCOHORT_FUZZ=ON -DCOHORT_BUILD_TESTS=OFF -DCOHORT_BUILD_BENCHMARKS=OFF
  log "building the fuzzers"
  ninja -C "$BUILD" ${COHORT_JOBS:+-j"$COHORT_JOBS"} fuzzers
}

# Runs one target; prints the reproducer on failure. Returns its status.
run_target() {
  local target=$1 work=$BUILD/runs/$1
  rm -rf "$work"
  mkdir -p "$work/corpus" "$work/artifacts"
  cp "$ROOT/fuzz/corpus/$target/"* "$work/corpus/"
  log "$target: ${SECONDS_PER_TARGET} s from $(ls "$work/corpus" | wc -l) seeds"
  local status=0
  ASAN_OPTIONS="detect_leaks=1:suppressions=$SUPPRESSIONS/asan.supp" \
  LSAN_OPTIONS="suppressions=$SUPPRESSIONS/lsan.supp:print_suppressions=0" \
  UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:suppressions=$SUPPRESSIONS/ubsan.supp" \
    "$BUILD/fuzz/${target}_fuzzer" -max_total_time="$SECONDS_PER_TARGET" -timeout=30 -rss_limit_mb=4096 \
    -print_final_stats=1 -artifact_prefix="$work/artifacts/" "$work/corpus" >"$work/log" 2>&1 || status=$?
  grep -E '^(#[0-9]+ +DONE|stat::number_of_executed_units|stat::peak_rss_mb)' "$work/log" || true
  if [ "$status" -ne 0 ]; then
    tail -n 60 "$work/log"
    log "$target FAILED (exit $status); full log: $work/log"
    local artifact
    for artifact in "$work/artifacts/"*; do
      [ -e "$artifact" ] && log "$target reproducer: $artifact (run: $BUILD/fuzz/${target}_fuzzer $artifact)"
    done
  fi
  return "$status"
}

configure_and_build
failed=()
for target in $TARGETS; do
  run_target "$target" || failed+=("$target")
done
if [ ${#failed[@]} -ne 0 ]; then
  log "FAILED: ${failed[*]}"
  exit 1
fi
log "all targets ran ${SECONDS_PER_TARGET} s without a finding: $TARGETS"
