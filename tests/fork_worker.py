"""Run as a script by test_fork.py (always under a timeout): train with every thread, then start a child process
with the given multiprocessing start method and check that it predicts, evaluates and trains with the parent's
bits. Prints one JSON line; exits non-zero on any mismatch.

    python fork_worker.py METHOD [--busy-thread]

--busy-thread: another thread of the parent runs kernels (predict in a loop, all threads) while the child starts.
"""
import hashlib
import json
import multiprocessing as mp
import sys
import threading
import time

import numpy as np

import cnnlite
from cnnlite.layers import Conv2D, Dense, Flatten, MaxPooling2D
from cnnlite.models import Sequential

CHILD_TIMEOUT = 60


def build(seed=7):
    np.random.seed(seed)
    model = Sequential([Conv2D(8, (3, 3), activation="relu", input_shape=(28, 28, 1)), MaxPooling2D((2, 2)),
                        Conv2D(16, (3, 3), activation="relu"), MaxPooling2D((2, 2)), Flatten(),
                        Dense(32, activation="relu"), Dense(10, activation="softmax")])
    model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
    return model


def data(n=256, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((n, 28, 28, 1), dtype=np.float32), np.eye(10, dtype=np.float32)[rng.integers(0, 10, n)]


def digest(arrays):
    h = hashlib.sha256()
    for a in arrays:
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()[:16]


def work(weights, inherited=None):
    """What parent and child both compute from the same weights: predictions, evaluation, one epoch of training."""
    x, y = data()
    model = build()
    model.set_weights(weights)
    out = {"predict": digest([model.predict(x, batch_size=64, verbose=0)]),
           "evaluate": [float(v) for v in model.evaluate(x, y, batch_size=64, verbose=0)]}
    history = model.fit(x, y, batch_size=32, epochs=1, shuffle=False, verbose=0)
    out["train_weights"] = digest(model.get_weights())
    out["train_loss"] = history.history["loss"]
    if inherited is not None:  # the parent's own model object, inherited through fork
        out["inherited_predict"] = digest([inherited.predict(x, batch_size=64, verbose=0)])
    return out


_INHERITED = None


def child(weights, queue):
    out = work(weights, _INHERITED)
    out.update(threads=cnnlite.get_num_threads(), forked_serial=cnnlite._kernels.forked_serial(),
               team=cnnlite._kernels._probe_team_size())
    queue.put(out)


def main():
    global _INHERITED
    method = sys.argv[1]
    busy = "--busy-thread" in sys.argv[2:]
    cnnlite.set_num_threads(max(2, cnnlite._kernels.num_procs()))  # every thread, and a pool even on one core
    full = cnnlite.get_num_threads()
    x, y = data()
    model = build()
    model.fit(x, y, batch_size=32, epochs=1, shuffle=False, verbose=0)  # the parent uses all its threads
    weights = model.get_weights()
    expected = work(weights)
    if method == "fork":
        _INHERITED = model
        expected["inherited_predict"] = digest([model.predict(x, batch_size=64, verbose=0)])

    stop = threading.Event()
    calls = [0]

    def busy_loop():
        other = build(seed=3)
        xb = data(512, seed=5)[0]
        while not stop.is_set():
            other.predict(xb, batch_size=512, verbose=0)
            calls[0] += 1

    busy_thread = None
    if busy:
        busy_thread = threading.Thread(target=busy_loop, daemon=True)
        busy_thread.start()
        while calls[0] < 2:  # it is looping over kernels by now
            time.sleep(0.01)
    ctx = mp.get_context(method)
    queue = ctx.Queue()
    proc = ctx.Process(target=child, args=(weights, queue))
    proc.start()
    try:
        got = queue.get(timeout=CHILD_TIMEOUT)
    except Exception:
        proc.kill()
        print(json.dumps({"error": f"child ({method}) gave no answer within {CHILD_TIMEOUT} s (hang?)"}))
        return 2
    proc.join(CHILD_TIMEOUT)
    stop.set()
    if busy_thread is not None:
        busy_thread.join()
    report = {"method": method, "busy_thread": busy, "parent_threads": full, "child": got, "expected": expected,
              "exitcode": proc.exitcode}
    same = all(got[k] == v for k, v in expected.items())
    report["ok"] = same and proc.exitcode == 0
    print(json.dumps(report))
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
