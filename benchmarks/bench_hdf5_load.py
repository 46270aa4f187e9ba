"""What the time bound on HDF5 reads costs (cnnlite/saving/h5_bounded.py): the median time of a load of a file
cnnlite wrote, read in-process (CNNLITE_HDF5_TIMEOUT=0) and bounded (the default: a forked child reads the file
first), for a small CNN (the mutation tests' shape) and an MNIST CNN (conv 32, conv 64, dense 128: 225,034 parameters,
Adam state saved too).

    python benchmarks/bench_hdf5_load.py [--repeats 40] [--quick]

Prints one line per model and file kind; `.keras` is bounded too (its weights store is HDF5).
"""
import argparse
import os
import statistics
import tempfile
import time

import numpy as np

from cnnlite import models
from cnnlite.layers import Conv2D, Dense, Dropout, Flatten, MaxPooling2D
from cnnlite.models import Sequential


def _trained(layers, shape, classes, seed=0):
    rng = np.random.default_rng(seed)
    model = Sequential(layers)
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    x = rng.standard_normal((32,) + shape).astype(np.float32)
    y = np.eye(classes, dtype=np.float32)[rng.integers(0, classes, 32)]
    model.fit(x, y, batch_size=16, epochs=1, verbose=0)
    return model


def _models(quick):
    small = _trained([Conv2D(2, (3, 3), activation="relu", input_shape=(6, 6, 1)), MaxPooling2D((2, 2)),
                      Dropout(0.25, seed=3), Flatten(), Dense(3, activation="softmax")], (6, 6, 1), 3)
    yield "small", small
    if not quick:
        yield "mnist-cnn", _trained([Conv2D(32, (3, 3), activation="relu", input_shape=(28, 28, 1)),
                                     MaxPooling2D((2, 2)), Conv2D(64, (3, 3), activation="relu"),
                                     MaxPooling2D((2, 2)), Flatten(), Dense(128, activation="relu"),
                                     Dense(10, activation="softmax")], (28, 28, 1), 10)


def _median_ms(load, repeats):
    load()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        load()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=40)
    parser.add_argument("--quick", action="store_true", help="the small model only, 3 repeats")
    args = parser.parse_args()
    repeats = 3 if args.quick else args.repeats
    saved = os.environ.get("CNNLITE_HDF5_TIMEOUT")
    with tempfile.TemporaryDirectory() as tmp:
        for name, model in _models(args.quick):
            for suffix in (".h5", ".weights.h5", ".keras"):
                path = os.path.join(tmp, name + suffix)
                if suffix == ".weights.h5":
                    model.save_weights(path)
                    load = lambda: model.load_weights(path)  # noqa: E731
                else:
                    model.save(path)
                    load = lambda: models.load_model(path)  # noqa: E731
                figures = {}
                for mode, value in (("in-process", "0"), ("bounded", "")):
                    os.environ["CNNLITE_HDF5_TIMEOUT"] = value
                    figures[mode] = _median_ms(load, repeats)
                print(f"{name:10s} {suffix:12s} {os.path.getsize(path):9d} B   in-process {figures['in-process']:6.1f} ms"
                      f"   bounded {figures['bounded']:6.1f} ms   added {figures['bounded'] - figures['in-process']:6.1f} ms")
    if saved is None:
        os.environ.pop("CNNLITE_HDF5_TIMEOUT", None)
    else:
        os.environ["CNNLITE_HDF5_TIMEOUT"] = saved


if __name__ == "__main__":
    main()
