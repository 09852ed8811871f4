#!/usr/bin/env bash
# Study 1: robustness under attack. experiments/run.sh robustness [--quick | --full] [--jobs N] [--report-only]
# Resumable: finished runs under results/<grid>/ are skipped.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
exec "${COHORT_VENV:-$HOME/.cache/cohort/venv}/bin/python" "$here/robustness.py" "$@"
