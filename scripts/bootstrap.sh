#!/usr/bin/env bash
# Sets up a Debian machine to build and run Cohort, then builds it into
# build/. Idempotent: installs only what is missing, never downloads torch
# twice, and rebuilds incrementally (ccache). Run as root (or with sudo).
#
# Environment:
#   COHORT_CACHE          where the Python environment lives (~/.cache/cohort)
#   COHORT_TORCH_VERSION  override the torch wheel version picked for the local CUDA
#   COHORT_BUILD_TYPE     CMake build type (Release)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE=${COHORT_CACHE:-$HOME/.cache/cohort}
VENV=$CACHE/venv
BUILD_TYPE=${COHORT_BUILD_TYPE:-Release}

log() { echo "[bootstrap] $*"; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

APT_PACKAGES=(
  build-essential cmake ninja-build ccache pkg-config git python3 python3-venv
  libzmq3-dev cppzmq-dev capnproto libcapnp-dev libsodium-dev libsqlite3-dev
  libtomlplusplus-dev nlohmann-json3-dev zlib1g-dev libboost-program-options-dev
  libgtest-dev libgmock-dev libbenchmark-dev dataset-fashion-mnist
  clang libclang-rt-14-dev  # scripts/fuzz.sh: libFuzzer and the sanitizer runtimes
)

install_debian_packages() {
  local missing=()
  for pkg in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  if [ ${#missing[@]} -eq 0 ]; then
    log "Debian packages: all ${#APT_PACKAGES[@]} present"
    return
  fi
  log "Debian packages: installing ${missing[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

# The torch wheels on PyPI are CUDA builds. Pick the one whose CUDA major
# matches the local toolkit, so that CMake's CUDA checks agree with the wheel.
pick_torch_version() {
  if [ -n "${COHORT_TORCH_VERSION:-}" ]; then echo "$COHORT_TORCH_VERSION"; return; fi
  local nvcc=/usr/local/cuda/bin/nvcc cuda_major=""
  [ -x "$nvcc" ] && cuda_major=$("$nvcc" --version | sed -n 's/.*release \([0-9]*\)\..*/\1/p')
  case "$cuda_major" in
    12) echo "2.9.1" ;;   # built with CUDA 12.8
    *)  echo "2.15.0" ;;  # built with CUDA 13.2 (and the CPU path everywhere)
  esac
}

install_python_env() {
  local want
  want=$(pick_torch_version)
  if [ ! -x "$VENV/bin/python" ]; then
    log "Python environment: creating $VENV"
    mkdir -p "$CACHE"
    python3 -m venv "$VENV"
  fi
  local have
  have=$("$VENV/bin/python" -c 'import torch; print(torch.__version__.split("+")[0])' 2>/dev/null || true)
  if [ "$have" = "$want" ]; then
    log "Python environment: torch $have present in $VENV"
  else
    log "Python environment: installing torch $want (was: ${have:-none}); this downloads ~4 GB once"
    PIP_CACHE_DIR=$CACHE/pip "$VENV/bin/pip" install --quiet --progress-bar off "torch==$want" numpy
  fi
  # The privacy accountant's oracles (tests/privacy/test_accountant.py).
  if "$VENV/bin/python" -c 'import opacus, dp_accounting' 2>/dev/null; then
    log "Python environment: opacus and dp-accounting present"
  else
    log "Python environment: installing opacus and dp-accounting (the accountant's test oracles)"
    PIP_CACHE_DIR=$CACHE/pip "$VENV/bin/pip" install --quiet --progress-bar off opacus==1.6.0 dp-accounting==0.6.0
  fi
}

configure_and_build() {
  local prefix
  prefix=$("$VENV/bin/python" -c 'import torch.utils; print(torch.utils.cmake_prefix_path)')
  # Precompiled headers and ccache need these to hit the cache.
  export CCACHE_SLOPPINESS=pch_defines,time_macros,include_file_mtime,include_file_ctime
  export CCACHE_DIR=${CCACHE_DIR:-$HOME/.cache/ccache}
  export CCACHE_BASEDIR=$ROOT  # relative paths: a fresh clone elsewhere still hits the cache
  log "configuring build/ ($BUILD_TYPE, LibTorch from $prefix)"
  cmake -S "$ROOT" -B "$ROOT/build" -G Ninja -DCMAKE_BUILD_TYPE="$BUILD_TYPE" \
    -DCMAKE_PREFIX_PATH="$prefix" -DCOHORT_PYTHON="$VENV/bin/python" -Wno-dev >"$ROOT/build.configure.log" 2>&1 ||
    { cat "$ROOT/build.configure.log"; exit 1; }
  log "building (ninja, $(nproc) cores)"
  ninja -C "$ROOT/build" "$@"
  log "built $ROOT/build/cohort"
}

install_debian_packages
install_python_env
configure_and_build "$@"
