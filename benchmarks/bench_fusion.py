"""Fused vs unfused ReLU and max-pool passes of the chapter's full network, timed in one process.

For each Conv2D/Dense layer with ReLU (batch 1000, 'valid' padding) it times, alternately in the same process:
  forward   unfused: conv2d_forward / dense_forward, then relu_forward   (main before the fusion)
            fused:   the same kernel with relu=True (ReLU in the GEMM/Winograd/direct store)
  backward  unfused: relu_backward, then conv2d_backward / dense_backward
            fused:   the backward kernel given y= (mask and bias sum in one pass over dy, per chunk)
and for the two MaxPooling2D layers the backward without and with window= (zero fill + scatter vs direct writes),
and the backward of each conv -> max-pool pair: unfused (scatter max-pool backward, relu_backward, convolution), with
the ReLU mask in the convolution (y=), and folded into the max-pool (maxpool2d_backward(..., window=, y=pooled
output), convolution without y) as MaxPooling2D does after Conv2D(relu).
Alternating the two variants of a row within one process makes the ratio robust to a shared machine's drift.

    python benchmarks/bench_fusion.py --threads 1 --clock cpu
    python benchmarks/bench_fusion.py --only pool-forward      # max-pool forward alone (runs on any cnnlite build)
    python benchmarks/bench_fusion.py --only pool-store --threads 2   # max-pool in the Winograd store, and a step
    python benchmarks/bench_fusion.py --only conv-dense --threads 2   # the CNN-8's conv -> Flatten -> Dense fusion

--only pool-store times, per conv -> max-pool pair, the forward (conv2d_forward(relu=True) then maxpool2d_forward vs
conv2d_maxpool_forward) and the backward (maxpool2d_backward(window=, y=pooled) then the Winograd input gradient and
the 12 weight-gradient shards vs conv2d_maxpool_backward_input and conv2d_maxpool_backward_weights_shards), then one
training step (train_on_batch) of the full network built with pool_fusion off and on, alternately.

--only conv-dense times the CNN-8's conv -> Flatten -> Dense: forward, conv2d_forward (direct) then dense_forward
against conv2d_forward_dense (the product run from the output in cache); backward below the loss, the Dense input
gradient (dense_backward, skinny) then the conv's 12 direct weight-gradient shards against
conv2d_backward_weights_shards_from_dense (dy formed inside the kernel); then one training step of the CNN-8 built
with conv_dense_fusion off and on, alternately.
"""
import argparse
import os
import statistics
import time

import numpy as np

CONVS = [("conv1 28x28x1 -> 16", 28, 1, 16), ("conv2 26x26x16 -> 32", 26, 16, 32), ("conv3 12x12x32 -> 64", 12, 32, 64)]
POOLS = [("pool1 24x24x32", 24, 32), ("pool2 10x10x64", 10, 64)]


def timed(fn, clock):
    start = clock()
    fn()
    return (clock() - start) * 1e3


def compare(name, variants, args, clock):
    """Runs the variants alternately; prints the statistic of each and the ratio of the last to the first."""
    for fn in variants.values():
        fn()  # warm-up: workspaces, first touch
    times = {label: [] for label in variants}
    for _ in range(args.repeats):
        for label, fn in variants.items():
            times[label].append(timed(fn, clock))
    stat = min if args.stat == "min" else statistics.median
    values = [stat(t) for t in times.values()]
    cells = "  ".join(f"{label} {v:8.2f}" for label, v in zip(variants, values))
    ratio = f"  ({values[-1] / values[0]:.2f}x)" if len(values) > 1 else ""
    print(f"{name:34s} {cells}{ratio}", flush=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=11)
    parser.add_argument("--clock", choices=["wall", "cpu"], default="wall",
                        help="cpu: this process's CPU time (robust to other processes taking the cores)")
    parser.add_argument("--stat", choices=["median", "min"], default="median")
    parser.add_argument("--only", choices=["all", "pool-forward", "pool-store", "conv-dense"], default="all")
    args = parser.parse_args(argv)
    for name in ("threads", "batch", "repeats"):
        if getattr(args, name) <= 0:
            parser.error(f"--{name} must be positive")

    import cnnlite
    from cnnlite import _kernels as K
    cnnlite.set_num_threads(args.threads)
    clock = time.process_time if args.clock == "cpu" else time.perf_counter
    n = args.batch
    rng = np.random.default_rng(0)
    load = os.getloadavg() if hasattr(os, "getloadavg") else ("?",) * 3
    print(f"cnnlite {cnnlite.__version__}, threads {args.threads}, batch {n}, {args.stat} of {args.repeats} "
          f"({args.clock} clock, ms per call); load average {', '.join(f'{v:.1f}' for v in load)}")

    if args.only == "pool-forward":
        for name, size, c in POOLS:
            x = np.maximum(rng.standard_normal((n, size, size, c)).astype(np.float32), 0)
            compare(name + " max-pool fwd", {"": lambda x=x: K.maxpool2d_forward(x, 2, 2, 2, 2, 0, 0, 0, 0)}, args,
                    clock)
        return

    if args.only == "pool-store":
        pool_store(K, n, rng, args, clock)
        return

    if args.only == "conv-dense":
        conv_dense(K, n, rng, args, clock)
        return

    for name, size, cin, cout in CONVS:
        x = rng.standard_normal((n, size, size, cin)).astype(np.float32)
        k = (rng.standard_normal((3, 3, cin, cout)) / np.sqrt(9 * cin)).astype(np.float32)
        b = (0.1 * rng.standard_normal(cout)).astype(np.float32)
        y = K.conv2d_forward(x, k, b, 1, 1, 0, 0, 0, 0, relu=True)
        dy = rng.standard_normal(y.shape).astype(np.float32)
        need_dx = cin > 1  # the first layer needs no input gradient
        compare(name + " fwd", {
            "unfused": lambda x=x, k=k, b=b: K.relu_forward(K.conv2d_forward(x, k, b, 1, 1, 0, 0, 0, 0)),
            "fused": lambda x=x, k=k, b=b: K.conv2d_forward(x, k, b, 1, 1, 0, 0, 0, 0, relu=True)}, args, clock)
        compare(name + " bwd", {
            "unfused": lambda x=x, k=k, y=y, dy=dy, d=need_dx:
                K.conv2d_backward(K.relu_backward(dy, y), x, k, 1, 1, 0, 0, 0, 0, need_dx=d),
            "fused": lambda x=x, k=k, y=y, dy=dy, d=need_dx:
                K.conv2d_backward(dy, x, k, 1, 1, 0, 0, 0, 0, need_dx=d, y=y)}, args, clock)

    x = rng.standard_normal((n, 1600)).astype(np.float32)
    w = (rng.standard_normal((1600, 128)) / 40).astype(np.float32)
    b = np.zeros(128, np.float32)
    y = K.dense_forward(x, w, b, relu=True)
    dy = rng.standard_normal(y.shape).astype(np.float32)
    compare("dense 1600 -> 128 fwd", {"unfused": lambda: K.relu_forward(K.dense_forward(x, w, b)),
                                      "fused": lambda: K.dense_forward(x, w, b, relu=True)}, args, clock)
    compare("dense 1600 -> 128 bwd", {"unfused": lambda: K.dense_backward(K.relu_backward(dy, y), x, w),
                                      "fused": lambda: K.dense_backward(dy, x, w, y=y)}, args, clock)

    window = (2, 2, 2, 2, 0, 0, 0, 0)
    for (name, size, cin, cout), (pool_name, _, _) in zip(CONVS[1:], POOLS):
        x = rng.standard_normal((n, size, size, cin)).astype(np.float32)
        k = (rng.standard_normal((3, 3, cin, cout)) / np.sqrt(9 * cin)).astype(np.float32)
        b = (0.1 * rng.standard_normal(cout)).astype(np.float32)
        y = K.conv2d_forward(x, k, b, 1, 1, 0, 0, 0, 0, relu=True)
        pooled, argmax = K.maxpool2d_forward(y, *window)
        dp = rng.standard_normal(pooled.shape).astype(np.float32)
        s = size - 2
        compare(f"{name.split()[0]} + {pool_name.split()[0]} bwd", {
            "unfused": lambda x=x, k=k, y=y, a=argmax, dp=dp, s=s: K.conv2d_backward(
                K.relu_backward(K.maxpool2d_backward(dp, a, s, s), y), x, k, 1, 1, 0, 0, 0, 0),
            "conv-mask": lambda x=x, k=k, y=y, a=argmax, dp=dp, s=s: K.conv2d_backward(
                K.maxpool2d_backward(dp, a, s, s, window=window), x, k, 1, 1, 0, 0, 0, 0, y=y),
            "pool-mask": lambda x=x, k=k, p=pooled, a=argmax, dp=dp, s=s: K.conv2d_backward(
                K.maxpool2d_backward(dp, a, s, s, window=window, y=p), x, k, 1, 1, 0, 0, 0, 0)}, args, clock)
    for name, size, c in POOLS:
        x = np.maximum(rng.standard_normal((n, size, size, c)).astype(np.float32), 0)
        y, argmax = K.maxpool2d_forward(x, *window)
        dy = rng.standard_normal(y.shape).astype(np.float32)
        compare(name + " max-pool bwd", {
            "scatter": lambda dy=dy, a=argmax, s=size: K.maxpool2d_backward(dy, a, s, s),
            "direct": lambda dy=dy, a=argmax, s=size: K.maxpool2d_backward(dy, a, s, s, window=window)}, args, clock)


def _bounds(n):
    """The engine's 12 reduction shards of a batch of n (fewer below 64 rows each)."""
    k = min(12, max(1, n // 64))
    return [s * n // k for s in range(k + 1)]


def _step_pair(x, y, setting, build, fused_in, args, clock, name):
    """One train_on_batch of the model `build()` gives, with the plan setting `setting` off and on, alternately;
    fused_in(step) says whether a plan step shows the fusion (checked: on, and only on, the fused model)."""
    from cnnlite import config
    nets = {}
    for label, flag in (("unfused", False), ("fused", True)):
        with config.override(**{setting: flag}):
            model = build()
            model.compile("adam", "categorical_crossentropy", ["accuracy"])
            assert any(fused_in(s) for s in model.plan.steps) == flag, f"{setting}={flag}: {model.plan}"

        def step(m=model, flag=flag):  # the plan follows the settings in force: each model keeps its own
            with config.override(**{setting: flag}):
                m.train_on_batch(x, y)
        nets[label] = step
    compare(name, nets, args, clock)
    return nets


def conv_dense(K, n, rng, args, clock):
    from cnnlite import layers, models
    bounds = _bounds(n)
    x = rng.random((n, 28, 28, 1), dtype=np.float32)
    k = (rng.standard_normal((3, 3, 1, 8)) / 3).astype(np.float32)
    b = np.zeros(8, np.float32)
    gate = K.conv2d_forward(x, k, b, 1, 1, 1, 1, 1, 1, relu=True, algo="direct")
    flat = gate.reshape(n, -1)
    w = (rng.standard_normal((6272, 10)) / 80).astype(np.float32)
    wb = np.zeros(10, np.float32)
    dz = (rng.standard_normal((n, 10)) / n).astype(np.float32)
    compare("cnn8 conv + dense fwd", {
        "unfused": lambda: K.dense_forward(K.conv2d_forward(x, k, b, 1, 1, 1, 1, 1, 1, relu=True, algo="direct")
                                           .reshape(n, -1), w, wb),
        "fused": lambda: K.conv2d_forward_dense(x, k, b, 1, 1, 1, 1, 1, 1, w, wb, relu=True)}, args, clock)

    def unfused():
        dy = K.dense_backward(dz, flat, w, need_dx=True, need_db=False, need_dw=False, algo="gemm skinny")[0]
        K.conv2d_backward_weights_shards(dy.reshape(gate.shape), x, 3, 3, 1, 1, 1, 1, 1, 1, bounds, y=gate,
                                         algo="direct")

    def fused():
        K.conv2d_backward_weights_shards_from_dense(dz, w, x, 3, 3, 8, 1, 1, 1, 1, 1, 1, bounds, y=gate)

    compare("cnn8 dense dx + conv dW bwd", {"unfused": unfused, "fused": fused}, args, clock)
    y = np.eye(10, dtype=np.float32)[rng.integers(0, 10, n)]
    _step_pair(x, y, "conv_dense_fusion", lambda: models.Sequential([
        layers.Input((28, 28, 1)), layers.Conv2D(8, 3, padding="same", activation="relu"), layers.Flatten(),
        layers.Dense(10, activation="softmax")]), lambda s: s.feeds_dense, args, clock, "cnn8 train step")


def pool_store(K, n, rng, args, clock):
    window = (2, 2, 2, 2, 0, 0, 0, 0)
    bounds = _bounds(n)
    for (name, size, cin, cout), (pool_name, _, _) in zip(CONVS[1:], POOLS):
        x = rng.standard_normal((n, size, size, cin)).astype(np.float32)
        k = (rng.standard_normal((3, 3, cin, cout)) / np.sqrt(9 * cin)).astype(np.float32)
        b = (0.1 * rng.standard_normal(cout)).astype(np.float32)
        pooled, argmax = K.conv2d_maxpool_forward(x, k, b, 1, 1, 0, 0, 0, 0, relu=True)
        dp = rng.standard_normal(pooled.shape).astype(np.float32)
        s = size - 2
        pair = f"{name.split()[0]} + {pool_name.split()[0]}"
        compare(pair + " fwd", {
            "unfused": lambda x=x, k=k, b=b: K.maxpool2d_forward(
                K.conv2d_forward(x, k, b, 1, 1, 0, 0, 0, 0, relu=True, algo="winograd"), *window),
            "fused": lambda x=x, k=k, b=b: K.conv2d_maxpool_forward(x, k, b, 1, 1, 0, 0, 0, 0, relu=True)},
            args, clock)

        def unfused_bwd(x=x, k=k, p=pooled, a=argmax, dp=dp, s=s):
            dz = K.maxpool2d_backward(dp, a, s, s, window=window, y=p)
            K.conv2d_backward_input(dz, k, s + 2, s + 2, 1, 1, 0, 0, 0, 0, algo="winograd")
            K.conv2d_backward_weights_shards(dz, x, 3, 3, 1, 1, 0, 0, 0, 0, bounds, algo="winograd")

        def fused_bwd(x=x, k=k, p=pooled, a=argmax, dp=dp, s=s):
            K.conv2d_maxpool_backward_input(dp, a, k, s + 2, s + 2, 1, 1, 0, 0, 0, 0, y=p)
            K.conv2d_maxpool_backward_weights_shards(dp, a, x, 3, 3, 1, 1, 0, 0, 0, 0, bounds, y=p)

        compare(pair + " bwd", {"unfused": unfused_bwd, "fused": fused_bwd}, args, clock)

    from cnnlite import layers, models
    x = rng.random((n, 28, 28, 1), dtype=np.float32)
    y = np.eye(10, dtype=np.float32)[rng.integers(0, 10, n)]
    _step_pair(x, y, "pool_fusion", lambda: models.Sequential([
        layers.Input((28, 28, 1)), layers.Conv2D(16, 3, activation="relu"),
        layers.Conv2D(32, 3, activation="relu"), layers.MaxPooling2D(2),
        layers.Conv2D(64, 3, activation="relu"), layers.MaxPooling2D(2), layers.Dropout(0.25),
        layers.Flatten(), layers.Dense(128, activation="relu"), layers.Dropout(0.5),
        layers.Dense(10, activation="softmax")]), lambda s: s.pool_in_store, args, clock, "full network train step")


if __name__ == "__main__":
    main()
