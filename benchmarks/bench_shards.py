"""What the reduction shards cost in one process: the chapter's models' training epoch with gradient_shards=1 (one
weight-gradient kernel call per layer and batch) against the default 12 (min(12, batch // 64) calls and their
ordered sum), alternating in one process, median of --rounds.

    python benchmarks/bench_shards.py --threads 2 --rounds 3 --out benchmarks/results/DATE/shards_cost.json
"""
import argparse
import json
import os
import statistics
import time

import numpy as np

import cnnlite
from cnnlite import config
from cnnlite.datasets import mnist
from cnnlite.models import Sequential

import fingerprint

MODELS = ("full_cnn", "cnn_8", "mlp_relu")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch-sizes", default="1000,128")
    parser.add_argument("--n", type=int, default=60000)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    cnnlite.set_num_threads(args.threads)
    (x, y), _ = mnist.load_data()
    x, y = x[:args.n].astype("float32") / 255, y[:args.n]
    results = {}
    for name in MODELS:
        build, build_args, kind, optimizer = fingerprint.MODELS[name]
        xx = x.reshape(-1, 784) if kind == "flat" else x.reshape(-1, 28, 28, 1)
        for batch in (int(b) for b in args.batch_sizes.split(",")):
            np.random.seed(1)
            model = Sequential(build(*build_args))
            model.compile(optimizer, "sparse_categorical_crossentropy")
            model.fit(xx[:5000], y[:5000], batch_size=batch, verbose=0)  # warm-up
            times = {1: [], config.DEFAULT_GRADIENT_SHARDS: []}
            for r in range(args.rounds):
                for shards in (sorted(times) if r % 2 == 0 else sorted(times, reverse=True)):
                    with config.override(gradient_shards=shards):
                        t0 = time.perf_counter()
                        model.fit(xx, y, batch_size=batch, epochs=1, verbose=0)
                        times[shards].append(time.perf_counter() - t0)
            med = {s: statistics.median(t) for s, t in times.items()}
            key = f"{name}@{batch}"
            results[key] = {"epoch_s": times, "median_s": med,
                            "ratio_default_over_1": med[config.DEFAULT_GRADIENT_SHARDS] / med[1]}
            print(f"{key:16s} 1 shard {med[1]:.3f} s   default {med[config.DEFAULT_GRADIENT_SHARDS]:.3f} s   "
                  f"ratio {results[key]['ratio_default_over_1']:.3f}", flush=True)
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"command": "python benchmarks/bench_shards.py " + " ".join(
                f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items() if k != "out"),
                "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "load_before": os.getloadavg(),
                "threads": args.threads, "results": results}, f, indent=1)


if __name__ == "__main__":
    main()
