"""Determinism: the same seed gives bitwise-identical weights after training, with 1 or 2 threads and in separate
processes (fresh interpreters: nothing shared but the seed)."""
import json
import subprocess
import sys
import textwrap

import pytest

import cnnlite

SCRIPT = textwrap.dedent("""
    import hashlib, json, sys
    import numpy as np
    import cnnlite
    from cnnlite.layers import Conv2D, Dense, Dropout, Flatten, MaxPooling2D
    from cnnlite.models import Sequential

    threads, seed = int(sys.argv[1]), int(sys.argv[2])
    cnnlite.set_num_threads(threads)
    cnnlite.utils.set_random_seed(seed)
    rng = np.random.default_rng(0)                      # the data is the same in every run
    x = rng.random((600, 12, 12, 1), dtype=np.float32)
    y = np.eye(4, dtype=np.float32)[rng.integers(0, 4, 600)]
    model = Sequential([Conv2D(8, 3, activation="relu", input_shape=(12, 12, 1)), MaxPooling2D(2),
                        Conv2D(16, 3, activation="relu", padding="same"), Dropout(0.25), Flatten(),
                        Dense(32, activation="relu"), Dropout(0.5), Dense(4, activation="softmax")])
    model.compile("adam", "categorical_crossentropy", ["accuracy"])
    history = model.fit(x, y, batch_size=50, epochs=2, validation_split=0.1, verbose=0)
    digest = hashlib.sha256(b"".join(w.tobytes() for w in model.get_weights())).hexdigest()
    print(json.dumps({"threads": cnnlite.get_num_threads(), "weights": digest, "history": history.history}))
""")


def _train(tmp_path, threads, seed=42):
    script = tmp_path / "train.py"
    script.write_text(SCRIPT)
    # cwd outside the source tree: the installed package is imported (CI), as in every subprocess test
    out = subprocess.run([sys.executable, str(script), str(threads), str(seed)], cwd=tmp_path, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_same_seed_gives_bitwise_identical_weights_across_processes(tmp_path):
    first, second = _train(tmp_path, 1), _train(tmp_path, 1)
    assert first["weights"] == second["weights"]
    assert first["history"] == second["history"]
    assert _train(tmp_path, 1, seed=43)["weights"] != first["weights"]     # the seed matters


@pytest.mark.skipif(not cnnlite.has_openmp(), reason="needs OpenMP for 2 threads")
def test_one_and_two_threads_give_bitwise_identical_weights(tmp_path):
    one, two = _train(tmp_path, 1), _train(tmp_path, 2)
    assert (one["threads"], two["threads"]) == (1, 2)
    assert one["weights"] == two["weights"]
    assert one["history"] == two["history"]
