#!/usr/bin/env bash
# Sets everything up, builds, and runs a local federated job on
# Fashion-MNIST (one coordinator, several worker processes on loopback).
# Extra arguments go to `cohort demo` (see `build/cohort demo --help`).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bash "$ROOT/scripts/bootstrap.sh" cohort
cd "$ROOT"
exec build/cohort demo "$@"
