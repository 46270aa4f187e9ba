"""Memory bounds (issue 13): before a batch runs, the model estimates from its shapes the bytes it needs
(ExecutionPlan.bytes_per_batch) and refuses a batch that cannot fit in the memory available with a MemoryError that
names the batch size, the bytes needed and the bytes available, before anything is allocated."""
import os
import re
import subprocess
import sys
import textwrap
import tracemalloc

import numpy as np
import pytest

from cnnlite import _memory
from cnnlite.layers import Conv2D, Dense, Dropout, Flatten, MaxPooling2D
from cnnlite.models import Sequential


def full_cnn(seed=1):
    np.random.seed(seed)
    # Explicit names: the per-process name counters (which other tests' summaries depend on) stay where they were.
    layers = [
        Conv2D(16, (3, 3), input_shape=(28, 28, 1), activation="relu", name="c1"),
        Conv2D(32, (3, 3), activation="relu", name="c2"), MaxPooling2D(pool_size=(2, 2), name="p1"),
        Conv2D(64, (3, 3), activation="relu", name="c3"), MaxPooling2D(pool_size=(2, 2), name="p2"),
        Dropout(0.25, name="d1"), Flatten(name="f"), Dense(128, activation="relu", name="h"),
        Dropout(0.25, name="d2"), Dense(10, activation="softmax", name="out")]
    model = Sequential(layers, name="full_cnn")
    model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
    return model


def data(n, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((n, 28, 28, 1), dtype=np.float32), np.eye(10, dtype=np.float32)[rng.integers(0, 10, n)]


def test_estimate_grows_with_the_batch_and_training_needs_more():
    plan = full_cnn()._current_plan()
    train = [plan.bytes_per_batch(b, True) for b in (1, 10, 100, 1000)]
    infer = [plan.bytes_per_batch(b, False) for b in (1, 10, 100, 1000)]
    assert train == sorted(train) and infer == sorted(infer)
    assert all(t > i for t, i in zip(train, infer))
    # Per sample, training keeps at least every step's output (about 0.2 MB for this network), float32.
    per_sample = (train[-1] - train[0]) / 999
    kept = sum(int(np.prod(s.output_shape[1:])) for s in plan.steps) * 4
    assert kept <= per_sample <= 4 * kept


@pytest.mark.parametrize("call", ["fit", "evaluate", "predict", "train_on_batch", "predict_on_batch"])
def test_a_batch_over_the_available_memory_is_refused_with_the_figures_before_allocating(call, monkeypatch):
    model = full_cnn()
    x, y = data(64)
    weights = [w.copy() for w in model.get_weights()]
    training = call in ("fit", "train_on_batch")
    needed = model._current_plan().bytes_per_batch(len(x), training)
    monkeypatch.setattr(_memory, "available_bytes", lambda: (needed - 1, {"MemAvailable": needed - 1}))
    run = {"fit": lambda: model.fit(x, y, batch_size=64, epochs=1, verbose=0),
           "evaluate": lambda: model.evaluate(x, y, batch_size=64, verbose=0),
           "predict": lambda: model.predict(x, batch_size=64, verbose=0),
           "train_on_batch": lambda: model.train_on_batch(x, y),
           "predict_on_batch": lambda: model.predict_on_batch(x)}[call]
    tracemalloc.start()
    try:
        with pytest.raises(MemoryError) as err:
            run()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    msg = str(err.value)
    assert "batch_size=64" in msg and f"needs about {needed} bytes" in msg and f"only {needed - 1} bytes" in msg, msg
    assert peak < x.nbytes, f"{peak} bytes allocated before the refusal"  # not even one batch copy
    assert all(a.tobytes() == b.tobytes() for a, b in zip(weights, model.get_weights()))
    # Exactly enough: accepted.
    monkeypatch.setattr(_memory, "available_bytes", lambda: (needed, {"MemAvailable": needed}))
    run()


def test_memory_check_can_be_turned_off(monkeypatch):
    model = full_cnn()
    x, _ = data(8)
    monkeypatch.setattr(_memory, "available_bytes", lambda: (1, {"MemAvailable": 1}))
    with pytest.raises(MemoryError, match="batch_size=8"):
        model.predict(x, verbose=0)
    monkeypatch.setenv("CNNLITE_MEMORY_CHECK", "0")
    assert model.predict(x, verbose=0).shape == (8, 10)


def test_available_memory_is_known_on_linux_and_the_chapter_batch_fits():
    if not os.path.exists("/proc/meminfo"):
        pytest.skip("needs /proc/meminfo")
    available, sources = _memory.available_bytes()
    assert "MemAvailable" in sources and available > 0
    plan = full_cnn()._current_plan()
    assert plan.bytes_per_batch(1000, True) < 1 << 30  # the chapter's batch: well under a GiB


CHILD = textwrap.dedent("""
    import resource, sys
    resource.setrlimit(resource.RLIMIT_AS, (4 << 30, resource.RLIM_INFINITY))
    import numpy as np
    from test_memory_bounds import data, full_cnn
    x, y = data(60000)
    model = full_cnn()
    try:
        model.fit(x, y, batch_size=60000, epochs=1, verbose=0)
    except MemoryError as e:
        print("REFUSED", e)
    else:
        print("TRAINED")
    # The chapter's batch trains under the same limit.
    h = model.fit(x[:2000], y[:2000], batch_size=1000, epochs=1, verbose=0)
    print("BATCH1000", h.history["loss"][0])
""")


@pytest.mark.skipif(sys.platform != "linux", reason="RLIMIT_AS and /proc are Linux")
@pytest.mark.skipif(os.environ.get("CNNLITE_SANITIZED") == "1", reason="ASan reserves terabytes of address space")
def test_under_a_4_gib_address_space_limit_batch_60000_is_refused_and_batch_1000_trains(tmp_path):
    tests = os.path.dirname(os.path.abspath(__file__))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (tests, os.environ.get("PYTHONPATH")) if p))
    out = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, timeout=300,
                         cwd=tmp_path, env=env)
    assert out.returncode == 0, out.stderr[-3000:]
    lines = out.stdout.splitlines()
    refused = next(line for line in lines if line.startswith(("REFUSED", "TRAINED")))
    assert refused.startswith("REFUSED"), out.stdout
    m = re.search(r"batch_size=60000 needs about (\d+) bytes .* only (\d+) bytes .*RLIMIT_AS headroom (\d+)", refused)
    assert m, refused
    needed, available = int(m.group(1)), int(m.group(2))
    assert needed > available and available < 4 << 30
    assert any(line.startswith("BATCH1000") for line in lines), out.stdout
