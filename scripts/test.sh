#!/usr/bin/env bash
# Sets everything up, builds, and runs the whole test suite (ctest), then
# the fuzzers and the sanitized tests. Exits non-zero if any of them fails.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bash "$ROOT/scripts/bootstrap.sh"
cd "$ROOT/build"
ctest --output-on-failure --timeout 900 "$@"

# Hostile-input checks (docs/FUZZING.md): each libFuzzer harness for a
# bounded time, then the tests built with ASan + UBSan. CI (CI=true) always
# runs them; COHORT_SKIP_SANITIZERS=1 skips them for a quick local run.
if [ "${CI:-}" != true ] && [ "${COHORT_SKIP_SANITIZERS:-0}" = 1 ]; then
  echo "[test] COHORT_SKIP_SANITIZERS=1: skipping scripts/fuzz.sh and scripts/sanitize.sh"
  exit 0
fi
bash "$ROOT/scripts/fuzz.sh"
# Sanitized: every unit and integration test, two at a time (about 15 min
# on two cores, docs/FUZZING.md); COHORT_SANITIZE_TARGETS="core_tests
# ledger_tests" narrows it for a quicker local run.
bash "$ROOT/scripts/sanitize.sh" -j 2
