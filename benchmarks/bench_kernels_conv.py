"""Times the dense and conv2d kernels on the chapter network's shapes and compares with numpy's matmul peak.

    python benchmarks/bench_kernels_conv.py [--threads N] [--batch 1000] [--repeats 7] [--padding valid|same]
                                            [--algo auto|gemm|winograd|direct ...]

--padding valid (default): the chapter's network, conv1 28x28x1 -> 26x26x16, conv2 -> 24x24x32, 2x2 pool, conv3
12x12x32 -> 10x10x64, pool, flatten 5x5x64 = 1600 -> dense 128 -> dense 10. --padding same: the end-to-end benchmark's
variant (28x28 -> 28x28, 14x14 -> 14x14, flatten 7x7x64 = 3136).

--algo: the convolution algorithm passed (algo=) to every pass ('auto': the automatic choice; several: each
convolution is timed once per algorithm, in the same run, so they compare under the same machine load); the row names
the path each pass took, or says the algorithm does not apply.

GFLOP/s use direct-convolution arithmetic, 2·N·OH·OW·K·Cout (K = kh·kw·cin) per forward pass; a backward pass
counts the same for dW plus the same again for dX when dX is computed. The peak is numpy's float32 2048x2048 matmul
(OpenBLAS) measured in the same run with the same thread count; for a fair peer run unset OPENBLAS_CORETYPE and
OPENBLAS_L2_SIZE (env -u ...).
"""
import argparse
import os
import sys
import time


def _parse():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=None, help="threads for cnnlite and numpy (default: all)")
    p.add_argument("--batch", type=int, default=1000)
    p.add_argument("--repeats", type=int, default=7, help="timed runs per kernel; the median is reported")
    p.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                   help="wall time, or this process's CPU time (all threads): steadier on a shared machine, and with "
                        "--threads 1 the single-core speed")
    p.add_argument("--padding", choices=("valid", "same"), default="valid", help="padding of the three convolutions")
    p.add_argument("--algo", nargs="+", choices=("auto", "gemm", "winograd", "direct"), default=["auto"],
                   help="convolution algorithm(s) to force (default: the automatic choice)")
    return p.parse_args()


ARGS = _parse()
if ARGS.threads is not None:  # before numpy loads OpenBLAS
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(ARGS.threads)

import numpy as np  # noqa: E402

import cnnlite  # noqa: E402
from cnnlite import _kernels as K  # noqa: E402


def median_seconds(fn, repeats):
    clock = time.process_time if ARGS.clock == "cpu" else time.perf_counter
    fn()  # warm-up: workspaces, caches, thread pool
    times = []
    for _ in range(repeats):
        start = clock()
        fn()
        times.append(clock() - start)
    return float(np.median(times))


def main():
    if ARGS.threads is not None:
        cnnlite.set_num_threads(ARGS.threads)
    rng = np.random.default_rng(0)
    n = ARGS.batch

    a = rng.standard_normal((2048, 2048)).astype(np.float32)
    b = rng.standard_normal((2048, 2048)).astype(np.float32)
    peak = 2 * 2048 ** 3 / median_seconds(lambda: a @ b, ARGS.repeats) / 1e9
    ours = 2 * 2048 ** 3 / median_seconds(lambda: K.gemm(a, b), ARGS.repeats) / 1e9
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"
    print(f"cnnlite {cnnlite.__version__}, micro-kernel {K.cpu_isa()}, threads {cnnlite.get_num_threads()}, "
          f"batch {n}, median of {ARGS.repeats} ({ARGS.clock} clock); load average {load} on {os.cpu_count()} CPUs")
    print(f"numpy float32 2048x2048 matmul: {peak:7.1f} GFLOP/s (100%); cnnlite gemm same shape: {ours:7.1f} GFLOP/s "
          f"({100 * ours / peak:.0f}%)")
    core = os.environ.get("OPENBLAS_CORETYPE")
    if core:
        print(f"note: OPENBLAS_CORETYPE={core} is set; numpy's peak may be understated")
    print(f"{'kernel':<44}{'ms':>9}{'GFLOP/s':>10}{'% peak':>8}  path")

    def row(name, fn, flops, path=""):
        sec = median_seconds(fn, ARGS.repeats)
        gf = flops / sec / 1e9
        print(f"{name:<44}{sec * 1e3:9.2f}{gf:10.1f}{100 * gf / peak:7.0f}%  {path}".rstrip())

    same = ARGS.padding == "same"
    pad = 1 if same else 0  # 3x3 kernels, stride 1: TF 'same' pads one pixel on every side
    side1, side3 = (28, 14) if same else (26, 12)
    convs = [  # name, (h, w, cin), (kh, kw, cout), first layer (no dX needed)
        ((28, 28, 1), (3, 3, 16), True),
        ((side1, side1, 16), (3, 3, 32), False),
        ((side3, side3, 32), (3, 3, 64), False),
    ]
    for (h, w, cin), (kh, kw, cout), first in convs:
        x = rng.standard_normal((n, h, w, cin)).astype(np.float32)
        k = (rng.standard_normal((kh, kw, cin, cout)) * 0.1).astype(np.float32)
        bias = np.zeros(cout, np.float32)
        y = K.conv2d_forward(x, k, bias, 1, 1, pad, pad, pad, pad)
        name = f"conv {h}x{w}x{cin} -> {y.shape[1]}x{y.shape[2]}x{cout}"
        dy = rng.standard_normal(y.shape).astype(np.float32)
        flops = 2 * n * y.shape[1] * y.shape[2] * kh * kw * cin * cout
        geometry = (x.shape, k.shape, 1, 1, pad, pad, pad, pad)
        for algo in ARGS.algo:
            forced = None if algo == "auto" else algo  # passed explicitly to every pass; None: the automatic choice

            def path(**which):
                if forced is None:
                    return K.conv2d_algo(*geometry, **which)
                return forced if K.conv2d_algo_applies(forced, *geometry, **which) else None

            fwd_path = path()
            dx_path = None if first else path(backward_input=True)
            dw_path = path(backward_weights=True)
            if fwd_path is None:
                print(f"{name + ' fwd':<44}  {algo} does not apply")
            else:
                row(name + " fwd", lambda: K.conv2d_forward(x, k, bias, 1, 1, pad, pad, pad, pad, algo=fwd_path),
                    flops, fwd_path)
            bwd_name = name + (" bwd (dW,db)" if first else " bwd (dX,dW,db)")
            if dw_path is None or (not first and dx_path is None):
                print(f"{bwd_name:<44}  {algo} does not apply")
            else:
                row(bwd_name,
                    lambda: K.conv2d_backward(dy, x, k, 1, 1, pad, pad, pad, pad, need_dx=not first,
                                              algo_input=dx_path, algo_weights=dw_path),
                    flops * (1 if first else 2), ("" if first else f"dX {dx_path}, ") + f"dW {dw_path}")

    flat = 7 * 7 * 64 if same else 5 * 5 * 64
    for n_in, n_out in [(flat, 128), (128, 10)]:
        x = rng.standard_normal((n, n_in)).astype(np.float32)
        w = (rng.standard_normal((n_in, n_out)) * 0.05).astype(np.float32)
        bias = np.zeros(n_out, np.float32)
        dy = rng.standard_normal((n, n_out)).astype(np.float32)
        flops = 2 * n * n_in * n_out
        row(f"dense {n_in} -> {n_out} fwd", lambda: K.dense_forward(x, w, bias), flops)
        row(f"dense {n_in} -> {n_out} bwd (dX,dW,db)", lambda: K.dense_backward(dy, x, w), 2 * flops)
    return 0


if __name__ == "__main__":
    sys.exit(main())
