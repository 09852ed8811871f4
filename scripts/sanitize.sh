#!/usr/bin/env bash
# Builds the unit and integration tests with AddressSanitizer and
# UndefinedBehaviorSanitizer (GCC) into build-asan/ and runs them with ctest.
# Fails on a failing test or on any sanitizer report, including one from a
# `cohort` process an integration test started (reports go to
# build-asan/sanitizer-logs/, which is checked at the end). docs/FUZZING.md
# explains the suppressions and gives the measured time.
#
# Run scripts/bootstrap.sh first (scripts/test.sh does): it installs the
# compilers and the Python environment that holds LibTorch.
#
# Environment:
#   COHORT_CACHE           where the Python environment lives (~/.cache/cohort)
#   COHORT_JOBS            ninja's parallel jobs (ninja's default when unset)
#   COHORT_SANITIZE_EXCLUDE  a ctest -E regex of tests to leave out (none)
#   COHORT_SANITIZE_TARGETS  test executables to build and run (default: all)
# Arguments are passed to ctest (e.g. -R wire).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=$ROOT/build-asan
CACHE=${COHORT_CACHE:-$HOME/.cache/cohort}
LOGS=$BUILD/sanitizer-logs
SUPPRESSIONS=$ROOT/fuzz/sanitizers

log() { echo "[sanitize] $*"; }
# shellcheck source=scripts/build_dir.sh
source "$ROOT/scripts/build_dir.sh"

configure_and_build() {
  log "configuring $BUILD (GCC, ASan + UBSan)"
  CC=gcc CXX=g++ configure_build_dir "$BUILD" -DCOHORT_SANITIZE=ON -DCOHORT_BUILD_BENCHMARKS=OFF \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1" \
    -DCMAKE_C_FLAGS_RELWITHDEBINFO="-O1 -g1"
  log "building"
  # shellcheck disable=SC2086  # a list of targets
  ninja -C "$BUILD" ${COHORT_JOBS:+-j"$COHORT_JOBS"} ${COHORT_SANITIZE_TARGETS:-}
}

run_tests() {
  rm -rf "$LOGS"
  mkdir -p "$LOGS"
  export ASAN_OPTIONS="log_path=$LOGS/asan:detect_leaks=1:suppressions=$SUPPRESSIONS/asan.supp"
  export LSAN_OPTIONS="suppressions=$SUPPRESSIONS/lsan.supp:print_suppressions=0"
  export UBSAN_OPTIONS="log_path=$LOGS/ubsan:print_stacktrace=1:halt_on_error=1:suppressions=$SUPPRESSIONS/ubsan.supp"
  # Test executables that were not built (COHORT_SANITIZE_TARGETS) appear
  # to ctest as <target>_NOT_BUILT placeholders.
  local exclude=(-E "_NOT_BUILT${COHORT_SANITIZE_EXCLUDE:+|$COHORT_SANITIZE_EXCLUDE}")
  log "running ctest in $BUILD${COHORT_SANITIZE_EXCLUDE:+ (excluding $COHORT_SANITIZE_EXCLUDE)}"
  local status=0
  (cd "$BUILD" && ctest --output-on-failure --timeout 1800 "${exclude[@]}" "$@") || status=$?
  local reports
  reports=$(find "$LOGS" -type f | sort)
  if [ -n "$reports" ]; then
    log "sanitizer reports:"
    for report in $reports; do echo "== $report"; cat "$report"; done
    status=1
  fi
  return $status
}

configure_and_build
start=$SECONDS
if run_tests "$@"; then
  log "all sanitized tests passed in $((SECONDS - start)) s"
else
  log "FAILED (tests or sanitizer reports above)"
  exit 1
fi
