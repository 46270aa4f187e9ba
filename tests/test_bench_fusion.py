"""Smoke test of benchmarks/bench_fusion.py (tiny batch), run by path from a temporary directory."""
import os
import pathlib
import subprocess
import sys

import pytest

import cnnlite

SCRIPT = pathlib.Path(__file__).resolve().parent.parent / "benchmarks" / "bench_fusion.py"


@pytest.mark.skipif(not SCRIPT.exists(), reason="benchmarks/ not present")
@pytest.mark.parametrize("extra,rows", [([], 12), (["--only", "pool-forward"], 2), (["--only", "pool-store"], 5),
                                        (["--only", "conv-dense"], 3)])
def test_bench_fusion_runs(tmp_path, extra, rows):
    package_root = os.path.dirname(os.path.dirname(os.path.abspath(cnnlite.__file__)))
    env = dict(os.environ, PYTHONPATH=package_root)
    out = subprocess.run([sys.executable, str(SCRIPT), "--batch", "2", "--repeats", "1", "--clock", "cpu", *extra],
                         env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    assert len(lines) == 1 + rows and "threads 1, batch 2" in lines[0]
    if not extra:
        assert "fused" in lines[1] and "direct" in lines[-1]
