"""Memory stays clean: a long training loop (and long predict/evaluate and kernel loops) does not grow the resident
set. Workspaces are allocated once per shape and reused, so after a warm-up RSS must stay flat. And cnnlite keeps
freed large buffers for reuse (glibc), so per-batch outputs cost no page faults.
"""
import gc
import os
import platform
import subprocess
import sys

import numpy as np
import pytest

from cnnlite import _kernels as K
from cnnlite.layers import Conv2D, Dense, Dropout, Flatten, MaxPooling2D
from cnnlite.models import Sequential

STATM = "/proc/self/statm"
pytestmark = [
    pytest.mark.skipif(not os.path.exists(STATM), reason="needs Linux /proc/self/statm"),
    # Under AddressSanitizer (dev/sanitize.sh) freed memory sits in a quarantine and RSS swings by tens of MiB.
    pytest.mark.skipif(os.environ.get("CNNLITE_SANITIZED") == "1", reason="RSS is meaningless under ASan"),
]
MiB = 1 << 20


def rss():
    gc.collect()
    with open(STATM) as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _growth(step, rounds, warmup=3):
    """RSS after each of `rounds` calls of step() (after `warmup` calls); returns (growth in bytes, samples)."""
    for _ in range(warmup):
        step()
    base = rss()
    samples = []
    for _ in range(rounds):
        step()
        samples.append(rss() - base)
    return max(samples), samples


def _mnist_like(n=2048, seed=0):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, n)
    x = rng.random((n, 28, 28, 1), dtype=np.float32)
    return x, np.eye(10, dtype=np.float32)[labels]


def test_rss_stays_flat_over_hundreds_of_training_batches():
    x, y = _mnist_like()
    model = Sequential([Conv2D(8, 3, activation="relu", input_shape=(28, 28, 1)), MaxPooling2D(2), Dropout(0.25),
                        Flatten(), Dense(32, activation="relu"), Dropout(0.5), Dense(10, activation="softmax")])
    model.compile("adam", "categorical_crossentropy", ["accuracy"])
    # 64 batches of 32 an epoch; 10 measured epochs = 640 batches (shuffled: the gather buffers are reused too)
    growth, samples = _growth(lambda: model.fit(x, y, batch_size=32, epochs=1, verbose=0), rounds=10, warmup=2)
    assert growth < 4 * MiB, f"RSS grew by {growth / MiB:.1f} MiB over 640 batches: {[s // 1024 for s in samples]} KiB"


def test_rss_stays_flat_over_repeated_predict_and_evaluate():
    x, y = _mnist_like(1024)
    model = Sequential([Conv2D(8, 3, activation="relu", input_shape=(28, 28, 1)), MaxPooling2D(2), Flatten(),
                        Dense(10, activation="softmax")])
    model.compile("sgd", "categorical_crossentropy", ["accuracy"])

    def step():
        model.predict(x, batch_size=100, verbose=0)
        model.evaluate(x, y, batch_size=100, verbose=0)

    growth, samples = _growth(step, rounds=12)
    assert growth < 4 * MiB, f"RSS grew by {growth / MiB:.1f} MiB: {[s // 1024 for s in samples]} KiB"


def test_rss_stays_flat_over_many_kernel_calls_including_failed_ones():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((16, 14, 14, 8), dtype=np.float32)
    w = rng.standard_normal((3, 3, 8, 16), dtype=np.float32)

    def step():
        for _ in range(50):
            y = K.conv2d_forward(x, w, None, 1, 1, 1, 1, 1, 1)
            K.conv2d_backward(y, x, w, 1, 1, 1, 1, 1, 1)
            p, arg = K.maxpool2d_forward(y, 2, 2, 2, 2, 0, 0, 0, 0)
            K.maxpool2d_backward(p, arg, 14, 14)
            K.softmax_xent(p.reshape(16, -1), np.zeros((16, p[0].size), np.float32))
            # errors raised from C++ (std::invalid_argument -> ValueError) must not leak either
            with pytest.raises(ValueError):
                K.maxpool2d_backward(p, np.full_like(arg, 10**6), 14, 14)

    growth, samples = _growth(step, rounds=10)
    assert growth < 2 * MiB, f"RSS grew by {growth / MiB:.1f} MiB: {[s // 1024 for s in samples]} KiB"


# ----- freed large buffers are reused (cnnlite/_memory.py) ------------------------------------------------------

FAULT_SCRIPT = """
import resource, numpy as np, cnnlite
from cnnlite import config
x = np.ones((1000, 24, 24, 32), np.float32)          # 74 MB, like a conv activation of the chapter's CNN
cnnlite._kernels.relu_forward(x)
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(5):
    y = cnnlite._kernels.relu_forward(x)
    del y
faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
print(config.MALLOC_TUNED, faults)
"""


def _run_fault_script(tmp_path, **env):
    out = subprocess.run([sys.executable, "-c", FAULT_SCRIPT], cwd=tmp_path, capture_output=True, text=True, check=True,
                         env=dict(os.environ, **env))
    tuned, faults = out.stdout.split()
    return tuned == "True", int(faults)


@pytest.mark.skipif(not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc",
                    reason="the allocator tuning applies to glibc only")
def test_large_outputs_are_reused_without_page_faults(tmp_path):
    tuned, faults = _run_fault_script(tmp_path)
    untuned, faults_untuned = _run_fault_script(tmp_path, CNNLITE_MALLOC_TUNING="0")
    assert tuned and not untuned
    # untuned, each call maps fresh memory (about 3,000 faults for the five calls here with 4 KiB pages)
    assert faults < 100 and faults_untuned > 4 * faults
