"""Same-process A/B of fit's batch prefetch (cnnlite.engine.data_adapter.Batcher.prefetch) on the chapter's MLPs:
one-epoch fits of Dense(16, relu|sigmoid) -> Dense(10, softmax), Adam, batch 1000, on MNIST, interleaved per round
over (1 thread), (2 threads, prefetch off), (2 threads, prefetch on), so machine load hits every setting alike.
Reports the min, lower quartile and median seconds per 60,000-sample epoch.

    CNNLITE_DATA_DIR=/work/shared/datasets python benchmarks/ab_batch_prefetch.py [--rounds 12] [--n-train 60000]

(MNIST when its files are found, else random data of the same shape; --n-train shortens the epochs, for a smoke test.)
"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import load_data  # noqa: E402


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=12)
    p.add_argument("--n-train", type=int, default=60000)
    args = p.parse_args()
    import cnnlite
    from cnnlite import layers, models
    from cnnlite.engine import data_adapter

    xtr, ytr, _, _, source = load_data("auto", args.n_train, 10, False)

    def build(activation):
        model = models.Sequential([layers.Dense(16, activation=activation, input_shape=(784,)),
                                   layers.Dense(10, activation="softmax")])
        model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
        model.fit(xtr[:5000], ytr[:5000], batch_size=1000, epochs=1, verbose=0)  # warm-up
        return model

    mlps = {a: build(a) for a in ("relu", "sigmoid")}
    settings = ((1, False), (2, False), (2, True))
    times = {}
    load_before = os.getloadavg()
    for _ in range(args.rounds):
        for threads, prefetch in settings:
            cnnlite.set_num_threads(threads)
            data_adapter.Batcher.prefetch = prefetch
            for name, model in mlps.items():
                t0 = time.perf_counter()
                model.fit(xtr, ytr, batch_size=1000, epochs=1, verbose=0)
                times.setdefault((name, threads, prefetch), []).append(time.perf_counter() - t0)
    print(f"data: {source}; {args.rounds} rounds; load average before {load_before[0]:.1f}, "
          f"after {os.getloadavg()[0]:.1f}")
    print(f"| model | threads | prefetch | min s/epoch ({len(xtr)} samples) | 25% | median |")
    print("|---|---|---|---|---|---|")
    for (name, threads, prefetch), v in sorted(times.items()):
        v = sorted(v)
        print(f"| mlp_{name} | {threads} | {'on' if prefetch else 'off'} | {v[0]:.4f} | {v[len(v) // 4]:.4f} | "
              f"{v[len(v) // 2]:.4f} |")


if __name__ == "__main__":
    main()
