"""The skinny gradient GEMMs ('gemm skinny') against the general GEMM ('gemm'), in one process, alternating.

    CNNLITE_DATA_DIR=... python benchmarks/bench_skinny.py --threads 2 --rounds 7 --out results.json

Kernels: a Dense layer's input gradient (dense_backward, dx only) and per-shard weight gradients
(dense_backward_weights_shards, 12 shards) at the CNN-8's Dense 6272 -> 10 and the MLP's Dense 784 -> 16, batch
1000, each call alternating between the two algorithms. Models: CNN-8 and the two MLPs (batch 1000, Adam), two
copies of each, built and trained under config.override(dense_algo='auto') and (dense_algo='gemm'), one epoch on the 60000 MNIST
training images each, alternating. Medians of wall and CPU (process) time; on a shared machine quote the ratios.
"""
import argparse
import json
import os
import statistics
import sys
import time

import numpy as np

import cnnlite
from cnnlite import _kernels as K
from cnnlite import config, layers
from cnnlite.datasets import mnist


def timed(fn):
    w, c = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - w, time.process_time() - c


def alternate(fns, rounds):
    out = {k: {"wall": [], "cpu": []} for k in fns}
    for r in range(rounds):
        for key in (list(fns) if r % 2 == 0 else list(fns)[::-1]):
            w, c = timed(fns[key])
            out[key]["wall"].append(w)
            out[key]["cpu"].append(c)
    return out


def model(which):
    if which == "cnn8":
        return cnnlite.Sequential([layers.Conv2D(8, (3, 3), padding="same", activation="relu",
                                                 input_shape=(28, 28, 1)), layers.Flatten(),
                                   layers.Dense(10, activation="softmax")])
    return cnnlite.Sequential([layers.Flatten(input_shape=(28, 28, 1)), layers.Dense(16, activation=which[4:]),
                               layers.Dense(10, activation="softmax")])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--kernel-rounds", type=int, default=41)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    cnnlite.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    results = {"command": " ".join(sys.argv), "threads": args.threads, "kernels": {}, "models": {}}
    for n_in, units in ((6272, 10), (784, 16)):
        x = rng.random((1000, n_in), dtype=np.float32)
        w = (rng.standard_normal((n_in, units)) * 0.01).astype(np.float32)
        dy = rng.standard_normal((1000, units)).astype(np.float32)
        bounds = [s * 1000 // 12 for s in range(13)]
        for name, call in (("dx", lambda a: K.dense_backward(dy, x, w, need_db=False, need_dw=False, algo=a)),
                           ("dW shards", lambda a: K.dense_backward_weights_shards(dy, x, bounds, algo=a))):
            res = alternate({a: (lambda a=a: call(a)) for a in ("gemm", "gemm skinny")}, args.kernel_rounds)
            key = f"dense {n_in}->{units} {name}"
            results["kernels"][key] = res
            med = {a: (statistics.median(v["wall"]) * 1e3, statistics.median(v["cpu"]) * 1e3) for a, v in res.items()}
            print(f"{key:28s} gemm {med['gemm'][0]:.2f} ms ({med['gemm'][1]:.2f} CPU)  gemm skinny "
                  f"{med['gemm skinny'][0]:.2f} ms ({med['gemm skinny'][1]:.2f} CPU)  ratio "
                  f"{med['gemm skinny'][0] / med['gemm'][0]:.3f}", flush=True)
    (x, y), _ = mnist.load_data()
    x = x.reshape(-1, 28, 28, 1).astype(np.float32) / 255.0
    y = np.eye(10, dtype=np.float32)[y]
    for which in ("cnn8", "mlp_relu", "mlp_sigmoid"):
        models = {}
        for algo in ("gemm", "auto"):
            with config.override(dense_algo=algo):
                m = model(which)
                m.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
                m.fit(x[:5000], y[:5000], batch_size=1000, epochs=1, verbose=0)  # warm-up
            models[algo] = m
        def epoch(algo):
            with config.override(dense_algo=algo):  # the plan follows the settings of the fit call
                models[algo].fit(x, y, batch_size=1000, epochs=1, verbose=0)
                return models[algo].plan

        for algo in models:
            plan = epoch(algo)
            assert any(s.algorithms.get("weight_grad") == "gemm skinny" for s in plan.steps) == (algo == "auto")
        res = alternate({a: (lambda a=a: epoch(a)) for a in models}, args.rounds)
        results["models"][which] = res
        med = {a: (statistics.median(v["wall"]), statistics.median(v["cpu"])) for a, v in res.items()}
        print(f"{which:12s} epoch gemm {med['gemm'][0]:.3f} s ({med['gemm'][1]:.3f} CPU)  auto (skinny) "
              f"{med['auto'][0]:.3f} s ({med['auto'][1]:.3f} CPU)  ratio {med['auto'][0] / med['gemm'][0]:.3f} "
              f"(CPU {med['auto'][1] / med['gemm'][1]:.3f})", flush=True)
    results["loadavg"] = os.getloadavg()
    if args.out:
        with open(args.out, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
