"""Importing cnnlite where its compiled extension is missing says why and what to do (as numpy does)."""
import os
import pathlib
import shutil
import subprocess
import sys

import pytest

import cnnlite

PACKAGE = pathlib.Path(cnnlite.__file__).resolve().parent


def _unbuilt_copy(tmp_path, checkout):
    root = tmp_path / "src"
    shutil.copytree(PACKAGE, root / "cnnlite", ignore=shutil.ignore_patterns("_kernels*", "__pycache__"))
    if checkout:
        (root / "cpp").mkdir()
        (root / "CMakeLists.txt").write_text("project(cnnlite)\n")
    return root


def _import_error(root):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run([sys.executable, "-c", "import cnnlite"], cwd=root, env=env, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode != 0
    return proc.stderr.strip().splitlines()[-1]


def test_source_checkout_without_a_build_says_how_to_build_or_where_to_run(tmp_path):
    root = _unbuilt_copy(tmp_path, checkout=True)
    last = _import_error(root)
    assert last.startswith("ImportError: cnnlite's compiled extension (cnnlite._kernels) is missing")
    assert "source checkout" in last and "dev/build.sh" in last and "outside the checkout" in last
    assert "ModuleNotFoundError" not in last


def test_installed_package_without_its_extension_says_reinstall(tmp_path):
    last = _import_error(_unbuilt_copy(tmp_path, checkout=False))
    assert "is missing from" in last and "reinstall" in last


@pytest.mark.parametrize("module", ["cnnlite.models", "cnnlite.layers", "cnnlite.callbacks", "cnnlite.profiler"])
def test_every_public_module_imports_alone(module, tmp_path):
    # From an empty folder, so the cnnlite under test is imported (not a source checkout in the working directory).
    proc = subprocess.run([sys.executable, "-c", f"import {module}"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
