#!/usr/bin/env bash
# Installs Flower, matplotlib and psutil (pinned in requirements.txt) into the
# project's Python environment. Idempotent: does nothing when they are present.
# Refuses to go on if pip would touch torch or numpy.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="${COHORT_VENV:-$HOME/.cache/cohort/venv}"
python="$venv/bin/python"
export PIP_CACHE_DIR="${PIP_CACHE_DIR:-$HOME/.cache/cohort/pip}"

if [[ ! -x "$python" ]]; then
  echo "setup.sh: no Python environment at $venv (run scripts/bootstrap.sh first)" >&2
  exit 1
fi
if "$python" - "$here/requirements.txt" <<'PY'
import sys
from importlib.metadata import version, PackageNotFoundError
for line in open(sys.argv[1]):
    line = line.split("#")[0].strip()
    if not line:
        continue
    name, pinned = line.split("==")
    try:
        if version(name) != pinned:
            sys.exit(1)
    except PackageNotFoundError:
        sys.exit(1)
PY
then
  echo "setup.sh: flwr, matplotlib and psutil already installed"
  exit 0
fi

plan="$(nice -n 10 "$python" -m pip install --dry-run -r "$here/requirements.txt" 2>&1)"
if grep -E '^Would install' <<<"$plan" | grep -qE '(^| )(torch|numpy)-'; then
  echo "setup.sh: pip would change torch or numpy; refusing:" >&2
  grep -E '^Would install' <<<"$plan" >&2
  exit 1
fi
nice -n 10 "$python" -m pip install --quiet -r "$here/requirements.txt"
echo "setup.sh: installed $(tr '\n' ' ' < <(grep -v '^#' "$here/requirements.txt"))"
