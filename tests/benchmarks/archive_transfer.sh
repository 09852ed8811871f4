#!/usr/bin/env bash
# Archive transfer: how much a TorchScript model's first task costs a worker
# that must fetch the archive, against later tasks that find it cached
# (docs/PERFORMANCE.md). It measures; it asserts nothing.
#
#   bash tests/benchmarks/archive_transfer.sh [BUILD_DIR] [HIDDEN]
#
# A 784-HIDDEN-HIDDEN/2-10 MLP (HIDDEN 3800: 10.2M parameters, a 41 MB
# archive) trained by one worker for one step per round over CurveZMQ on
# loopback (tcp), 3 rounds; then the same worker, restarted with its state
# directory, in a second job of 2 rounds. Prints each round's collect time
# (task sent -> update in) from metrics.jsonl.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD=${1:-$ROOT/build}
HIDDEN=${2:-3800}
PYTHON=${COHORT_PYTHON:-$HOME/.cache/cohort/venv/bin/python}
WORK=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT

"$PYTHON" - "$WORK/mlp.pt" "$HIDDEN" <<'PY'
import sys, warnings, torch
from torch import nn
hidden = int(sys.argv[2])
model = nn.Sequential(nn.Flatten(), nn.Linear(784, hidden), nn.ReLU(), nn.Linear(hidden, hidden // 2), nn.ReLU(),
                      nn.Linear(hidden // 2, 10))
with warnings.catch_warnings():
    warnings.simplefilter("ignore", FutureWarning)
    torch.jit.script(model).save(sys.argv[1])
print(f"archive: {sum(p.numel() for p in model.parameters())} parameters")
PY
ls -l "$WORK/mlp.pt" | awk '{print "archive bytes:", $5}'

run_job() {  # name rounds
  local name=$1 rounds=$2 port
  port=$("$PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  cat >"$WORK/$name.toml" <<TOML
[job]
rounds = $rounds
output_dir = "$WORK/$name"
[model]
path = "$WORK/mlp.pt"
[data]
eval_samples = 100
[training]
local_steps = 1
[round]
min_workers = 1
[network]
listen = "tcp://127.0.0.1:$port"
TOML
  "$BUILD/cohort" coordinator --config "$WORK/$name.toml" -q &
  local coordinator=$!
  while [ ! -s "$WORK/$name/coordinator.pub" ]; do sleep 0.1; done
  "$BUILD/cohort" worker --coordinator "tcp://127.0.0.1:$port" --coordinator-key "$WORK/$name/coordinator.pub" \
    --accept-models --state-dir "$WORK/worker" --threads 1 --idle-timeout 30 -q &
  wait "$coordinator"
  "$PYTHON" - "$WORK/$name/metrics.jsonl" "$name" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    r = json.loads(line)
    print(f"{sys.argv[2]} round {r['round']}: collect {r['seconds']['collect']:.3f} s, bytes out {r['bytes_out']}")
PY
  wait
}

run_job first 3
run_job restarted 2
