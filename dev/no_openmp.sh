#!/usr/bin/env bash
# Build the extension without OpenMP (-DCNNLITE_OPENMP=OFF) into build/noomp, as a separate copy of the package
# (build/noomp/pkg/cnnlite; your in-place cnnlite/_kernels*.so is untouched), and run pytest against it:
#     dev/no_openmp.sh tests/test_gemm.py tests/test_threads.py     # any pytest arguments (default: tests/)
# Everything runs single-threaded there; CNNLITE_EXPECT_OPENMP=0 makes tests/test_threads.py require that.
set -euo pipefail
CALLER_DIR=$PWD
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
PY=${PYTHON:-python3}
BUILD_DIR=${BUILD_DIR:-build/noomp}
PKG="$ROOT/$BUILD_DIR/pkg"

t0=$(date +%s)
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCNNLITE_INPLACE=OFF -DCNNLITE_OPENMP=OFF \
      -DPython_EXECUTABLE="$(command -v "$PY")" >/dev/null
cmake --build "$BUILD_DIR" >/dev/null
rm -rf "$PKG" && mkdir -p "$PKG"
(cd "$ROOT" && find cnnlite -name '*.py' -o -name '*.json' -o -name '*.txt' | grep -v __pycache__ |
   while read -r f; do mkdir -p "$PKG/$(dirname "$f")" && cp "$f" "$PKG/$f"; done)
cp "$BUILD_DIR"/_kernels*.so "$PKG/cnnlite/"
t1=$(date +%s)
echo "no_openmp: built in $((t1 - t0)) s -> $PKG/cnnlite"

export PYTHONPATH="$PKG"      # subprocess tests import this copy too
export CNNLITE_EXPECT_OPENMP=0
[ $# -eq 0 ] && set -- "$ROOT/tests"
args=()
for a in "$@"; do
  if [ -e "$CALLER_DIR/${a%%::*}" ] && [ "${a#/}" = "$a" ]; then args+=("$CALLER_DIR/$a"); else args+=("$a"); fi
done
cd "$PKG"
"$PY" -c "import cnnlite, sys; sys.exit(0 if cnnlite.__file__.startswith('$PKG') and not cnnlite.has_openmp() else 'no_openmp: wrong extension ' + cnnlite.__file__)"
"$PY" -m pytest -q -p no:cacheprovider --rootdir="$ROOT" -c "$ROOT/pyproject.toml" "${args[@]}"
echo "no_openmp: tests passed in $(( $(date +%s) - t1 )) s (build $((t1 - t0)) s)"
