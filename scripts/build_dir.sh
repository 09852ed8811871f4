# Sourced by scripts/fuzz.sh and scripts/sanitize.sh (not run on its own).
#
# configure_build_dir DIR CMAKE_ARGS...: configures DIR with Ninja, ccache
# and LibTorch from the Python environment scripts/bootstrap.sh made (in
# $CACHE/venv), logging to DIR/configure.log and showing it on failure.
# Expects ROOT and CACHE to be set.
configure_build_dir() {
  local build=$1 prefix
  shift
  prefix=$("$CACHE/venv/bin/python" -c 'import torch.utils; print(torch.utils.cmake_prefix_path)')
  export CCACHE_SLOPPINESS=pch_defines,time_macros,include_file_mtime,include_file_ctime
  export CCACHE_DIR=${CCACHE_DIR:-$HOME/.cache/ccache}
  export CCACHE_BASEDIR=$ROOT
  mkdir -p "$build"
  cmake -S "$ROOT" -B "$build" -G Ninja -Wno-dev -DCMAKE_PREFIX_PATH="$prefix" \
    -DCOHORT_PYTHON="$CACHE/venv/bin/python" "$@" \
    >"$build/configure.log" 2>&1 || { cat "$build/configure.log"; exit 1; }
}
