#!/usr/bin/env bash
# Sets everything up, builds, and runs the whole test suite (ctest).
# Exits non-zero if any test fails.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bash "$ROOT/scripts/bootstrap.sh"
cd "$ROOT/build"
ctest --output-on-failure --timeout 900 "$@"
