"""Where a training step of the chapter's full CNN spends its time, per layer (cnnlite.profile).

Trains Conv2D(16,3x3,relu) -> Conv2D(32,3x3,relu) -> MaxPooling2D -> Conv2D(64,3x3,relu) -> MaxPooling2D ->
Dropout(.25) -> Flatten -> Dense(128,relu) -> Dropout(.25) -> Dense(10,softmax) (valid padding, Adam) for one
epoch of `--batches` batches of MNIST with fit(profile=True), and prints the table.

    CNNLITE_DATA_DIR=/work/shared/datasets python benchmarks/profile_full_cnn.py --threads 2 --batches 5
    python benchmarks/profile_full_cnn.py --random --batches 1 --batch-size 8     # no MNIST needed (smoke test)

The first batch includes one-off costs (workspace allocation, first-touch page faults); use --warmup to train on
some batches before the profiled run.
"""
import argparse
import time

import numpy as np


def full_cnn():
    from cnnlite import Sequential, layers
    return Sequential([
        layers.Conv2D(16, (3, 3), activation="relu", input_shape=(28, 28, 1)),
        layers.Conv2D(32, (3, 3), activation="relu"),
        layers.MaxPooling2D(pool_size=(2, 2)),
        layers.Conv2D(64, (3, 3), activation="relu"),
        layers.MaxPooling2D(pool_size=(2, 2)),
        layers.Dropout(0.25),
        layers.Flatten(),
        layers.Dense(128, activation="relu"),
        layers.Dropout(0.25),
        layers.Dense(10, activation="softmax"),
    ])


def load(n, random_data):
    """n MNIST training images scaled to [0, 1] (NHWC) and one-hot labels; same-shaped noise with --random."""
    if random_data:
        rng = np.random.default_rng(0)
        return rng.random((n, 28, 28, 1), dtype=np.float32), np.eye(10, dtype=np.float32)[rng.integers(0, 10, n)]
    from cnnlite.datasets import mnist
    (x, y), _ = mnist.load_data()
    if n > len(x):
        raise SystemExit(f"--batches x --batch-size = {n} exceeds the {len(x)} MNIST training images")
    return (x[:n].reshape(n, 28, 28, 1).astype(np.float32) / 255.0), np.eye(10, dtype=np.float32)[y[:n]]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=None, help="OpenMP threads (default: cnnlite's default)")
    parser.add_argument("--batches", type=int, default=5, help="profiled training batches (default 5)")
    parser.add_argument("--batch-size", type=int, default=1000, help="samples per batch (default 1000)")
    parser.add_argument("--warmup", type=int, default=0, help="unprofiled batches trained first (default 0)")
    parser.add_argument("--random", action="store_true", help="random data instead of MNIST")
    args = parser.parse_args(argv)
    for name in ("batches", "batch_size"):
        if getattr(args, name) <= 0:
            parser.error(f"--{name.replace('_', '-')} must be positive")
    if args.warmup < 0:
        parser.error("--warmup must be >= 0")

    import cnnlite
    if args.threads is not None:
        cnnlite.set_num_threads(args.threads)
    np.random.seed(0)
    x, y = load((args.batches + args.warmup) * args.batch_size, args.random)
    model = full_cnn()
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    split = args.warmup * args.batch_size
    if args.warmup:
        model.fit(x[:split], y[:split], batch_size=args.batch_size, epochs=1, verbose=0)
    print(f"cnnlite {cnnlite.__version__}, {cnnlite.get_num_threads()} thread(s), "
          f"{'random data' if args.random else 'MNIST'}: {args.batches} batches of {args.batch_size}"
          f" after {args.warmup} warm-up batches", flush=True)
    start = time.perf_counter()
    history = model.fit(x[split:], y[split:], batch_size=args.batch_size, epochs=1, verbose=0, profile=True)
    elapsed = time.perf_counter() - start
    print(history.profile.table())
    print(f"fit() took {elapsed * 1e3:.1f} ms in all")


if __name__ == "__main__":
    main()
