#!/usr/bin/env bash
# Installs what the experiments need on top of the project's bootstrap
# (scripts/test.sh or scripts/demo.sh must have run: they make the Python
# environment and build build/cohort). Idempotent: a stamp records the
# requirement files installed, so a second run does nothing.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="${COHORT_VENV:-$HOME/.cache/cohort/venv}"
if [[ ! -x "$venv/bin/python" ]]; then
  echo "experiments/setup.sh: no Python environment at $venv; run scripts/test.sh first" >&2
  exit 1
fi
stamp="$venv/.cohort-experiments-stamp"
wanted="$(cat "$here/requirements.txt" "$here/requirements-no-deps.txt" | sha256sum | cut -d' ' -f1)"
if [[ -f "$stamp" && "$(cat "$stamp")" == "$wanted" ]]; then
  exit 0
fi
export PIP_CACHE_DIR="${PIP_CACHE_DIR:-$HOME/.cache/cohort/pip}"
"$venv/bin/pip" install --quiet -r "$here/requirements.txt"
"$venv/bin/pip" install --quiet --no-deps -r "$here/requirements-no-deps.txt"
echo "$wanted" > "$stamp"
