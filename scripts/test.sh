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
# Sanitized: the core and ledger unit tests by default (every decoder, the
# codec, crypto, transport, the ledger). The whole suite under ASan is
# `COHORT_SANITIZE_TARGETS= bash scripts/sanitize.sh`; it is not in CI yet
# because its build has not been timed on a 2-core machine (docs/FUZZING.md).
COHORT_SANITIZE_TARGETS=${COHORT_SANITIZE_TARGETS-core_tests ledger_tests} bash "$ROOT/scripts/sanitize.sh"
