#!/usr/bin/env bash
# Memory-safety run: builds the extension with AddressSanitizer + UndefinedBehaviorSanitizer into a separate copy of
# the package (build/asan/pkg/cnnlite; your in-place cnnlite/_kernels*.so is left alone) and runs the test suite
# against it. Any ASan report or UBSan diagnostic aborts the process, so pytest fails.
#   dev/sanitize.sh                      # all tests except @pytest.mark.slow
#   dev/sanitize.sh tests/test_conv2d.py -k stride   # extra arguments go to pytest instead of the defaults
# Needs cmake, ninja, cython and numpy importable by $PYTHON (default python3), and g++ (its libasan is preloaded
# because the Python interpreter itself is not instrumented).
set -euo pipefail
CALLER_DIR=$PWD
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
PY=${PYTHON:-python3}
BUILD_DIR=${BUILD_DIR:-build/asan}
PKG="$ROOT/$BUILD_DIR/pkg"

t0=$(date +%s)
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCNNLITE_INPLACE=OFF -DCNNLITE_SANITIZE=ON \
      -DPython_EXECUTABLE="$(command -v "$PY")" >/dev/null
cmake --build "$BUILD_DIR"

# Shadow package: the Python sources of this tree plus the sanitized extension.
rm -rf "$PKG" && mkdir -p "$PKG"
(cd "$ROOT" && find cnnlite -name '*.py' -o -name '*.json' -o -name '*.txt' | grep -v __pycache__ |
   while read -r f; do mkdir -p "$PKG/$(dirname "$f")" && cp "$f" "$PKG/$f"; done)
cp "$BUILD_DIR"/_kernels*.so "$PKG/cnnlite/"
t1=$(date +%s)
echo "sanitize: built in $((t1 - t0)) s -> $PKG/cnnlite"

ASAN_LIB=$(${CXX:-g++} -print-file-name=libasan.so)
[ -f "$ASAN_LIB" ] || { echo "sanitize: libasan.so not found (got '$ASAN_LIB')" >&2; exit 1; }
# libstdc++ too: ASan's __cxa_throw interceptor must find the real one at start-up, or the first C++ exception thrown
# by any extension (ours, or matplotlib's pybind11 modules) aborts with "CHECK failed ... real___cxa_throw".
STDCXX_LIB=$(${CXX:-g++} -print-file-name=libstdc++.so)
export LD_PRELOAD="$ASAN_LIB:$STDCXX_LIB${LD_PRELOAD:+:$LD_PRELOAD}"
# CPython's own allocations are not ours: no leak checking. An impossible allocation returns NULL (NumPy raises
# MemoryError, as in a normal build) instead of aborting. Everything else aborts on the first report.
export ASAN_OPTIONS="detect_leaks=0:allocator_may_return_null=1:abort_on_error=1:halt_on_error=1:strict_string_checks=1:check_initialization_order=1:detect_stack_use_after_return=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
export UBSAN_OPTIONS="halt_on_error=1:abort_on_error=1:print_stacktrace=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
export PYTHONPATH="$PKG"   # subprocess tests import the sanitized copy too
export CNNLITE_SANITIZED=1  # tests/test_memory.py skips: ASan's quarantine and shadow memory make RSS meaningless

if [ $# -eq 0 ]; then
  set -- "$ROOT/tests" -m "not slow"
fi
# Test paths given relative to the caller's folder (or node ids like tests/x.py::test_y) become absolute.
args=()
for a in "$@"; do
  if [ -e "$CALLER_DIR/${a%%::*}" ] && [ "${a#/}" = "$a" ]; then args+=("$CALLER_DIR/$a"); else args+=("$a"); fi
done
set -- "${args[@]}"
# Run from the shadow package so `import cnnlite` can only find the sanitized build.
cd "$PKG"
"$PY" -c "import cnnlite._kernels as k, sys; sys.exit(0 if k.__file__.startswith('$PKG') else 'sanitize: wrong extension ' + k.__file__)"
# --capture=sys: pytest captures Python-level output only, so a sanitizer report (written to file descriptor 2 just
# before the process aborts) reaches the terminal instead of vanishing with pytest's capture file.
status=0
"$PY" -m pytest -q -p no:cacheprovider --capture=sys --rootdir="$ROOT" -c "$ROOT/pyproject.toml" "$@" || status=$?
[ "$status" -eq 0 ] || { echo "sanitize: FAILED (pytest exit status $status; a sanitizer report, if any, is above)" >&2; exit "$status"; }
echo "sanitize: tests passed in $(( $(date +%s) - t1 )) s (build $((t1 - t0)) s)"
