"""cnnlite keeps freed large buffers for reuse (glibc), so per-batch outputs cost no page faults."""
import os
import platform
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc",
                                reason="the allocator tuning applies to glibc only")

SCRIPT = """
import resource, numpy as np, cnnlite
from cnnlite import _memory
x = np.ones((1000, 24, 24, 32), np.float32)          # 74 MB, like a conv activation of the chapter's CNN
cnnlite._kernels.relu_forward(x)
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(5):
    y = cnnlite._kernels.relu_forward(x)
    del y
faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
print(_memory.MALLOC_TUNED, faults)
"""


def run(tmp_path, **env):
    out = subprocess.run([sys.executable, "-c", SCRIPT], cwd=tmp_path, capture_output=True, text=True, check=True,
                         env=dict(os.environ, **env))
    tuned, faults = out.stdout.split()
    return tuned == "True", int(faults)


def test_large_outputs_are_reused_without_page_faults(tmp_path):
    tuned, faults = run(tmp_path)
    untuned, faults_untuned = run(tmp_path, CNNLITE_MALLOC_TUNING="0")
    assert tuned and not untuned
    # untuned, each call maps fresh memory (about 3,000 faults for the five calls here with 4 KiB pages)
    assert faults < 100 and faults_untuned > 4 * faults
