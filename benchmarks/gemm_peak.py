"""GEMM peak of this machine right now: NumPy float32 matmul (its BLAS) on square matrices, GFLOP/s, and cnnlite's own
`_kernels.gemm` on the same shape when it is built. Run with the thread count fixed by the caller's environment
(bench_e2e.py starts one process per count with OMP/OPENBLAS/MKL_NUM_THREADS set), or by hand:

    OPENBLAS_NUM_THREADS=1 python benchmarks/gemm_peak.py --size 2048
"""
import argparse
import json
import os
import sys
import time


def gflops(fn, n, min_time=0.5, min_reps=3):
    """Median and best GFLOP/s of fn() (an n x n x n matmul) over repetitions lasting at least min_time seconds."""
    fn()  # warm-up: page in, pack buffers
    rates, spent = [], 0.0
    while len(rates) < min_reps or spent < min_time:
        t0 = time.perf_counter()
        fn()
        dt = time.perf_counter() - t0
        spent += dt
        rates.append(2.0 * n ** 3 / dt / 1e9)
    rates.sort()
    return rates[len(rates) // 2], rates[-1]


def blas_info():
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return None
    return [{k: d.get(k) for k in ("internal_api", "version", "num_threads", "architecture")}
            for d in threadpool_info() if d.get("user_api") == "blas"]


def measure(n, min_time):
    import numpy as np
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    c = np.empty((n, n), dtype=np.float32)
    med, best = gflops(lambda: np.matmul(a, b, out=c), n, min_time)
    out = {"size": n, "numpy_gflops_median": med, "numpy_gflops_best": best, "numpy": np.__version__,
           "blas": blas_info(), "threads_env": os.environ.get("OMP_NUM_THREADS")}
    try:
        from cnnlite import _kernels
        if hasattr(_kernels, "gemm"):
            med, best = gflops(lambda: _kernels.gemm(a, b), n, min_time)
            out.update(cnnlite_gflops_median=med, cnnlite_gflops_best=best,
                       cnnlite_isa=_kernels.cpu_isa() if hasattr(_kernels, "cpu_isa") else None,
                       cnnlite_threads=_kernels.get_num_threads())
    except ImportError:
        pass
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description="NumPy (and cnnlite) float32 GEMM GFLOP/s")
    p.add_argument("--size", type=int, default=2048)
    p.add_argument("--min-time", type=float, default=1.0)
    args = p.parse_args(argv)
    print("RESULT " + json.dumps(measure(args.size, args.min_time)), flush=True)


if __name__ == "__main__":
    sys.exit(main())
