#!/usr/bin/env bash
# Development build: compiles cpp/ + src/ into cnnlite/_kernels*.so in this source tree, incrementally.
# Then run tests from the tree root with:  PYTHONPATH=$PWD python -m pytest tests
# Extra CMake options may be passed, e.g.  dev/build.sh -DCNNLITE_OPENMP=OFF  (use another build dir via BUILD_DIR=...)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build/dev}
PY=${PYTHON:-python3}
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCNNLITE_INPLACE=ON \
      -DPython_EXECUTABLE="$(command -v "$PY")" "$@" >/dev/null
cmake --build "$BUILD_DIR"
