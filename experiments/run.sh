#!/usr/bin/env bash
# One command per study: experiments/run.sh STUDY [options]
#   robustness   Study 1: robustness under attack (ByzFL's benchmark)
#   proof        Study 2: proof of learning, detection rate against audit cost
#   flower       Study 3: speed against Flower
# Each study lives in experiments/<dir>/ with its own run.sh, which gets the
# remaining options (every study takes --quick). See experiments/README.md.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
usage() { sed -n '2,7p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 2; }
[[ $# -ge 1 ]] || usage
study="$1"
shift
case "$study" in
  proof) dir="proof_of_learning" ;;
  -h|--help) usage ;;
  *) dir="$study" ;;
esac
if [[ ! -x "$here/$dir/run.sh" ]]; then
  echo "experiments/run.sh: no study '$study' (no executable experiments/$dir/run.sh)" >&2
  usage
fi
"$here/setup.sh"
exec "$here/$dir/run.sh" "$@"
