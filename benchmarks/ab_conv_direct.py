"""Two builds of cnnlite side by side on the direct convolution of the MNIST chapter's first layers: the forward pass
(bias, fused ReLU) and the weight gradient (dk and dbias, dy masked by the ReLU's output) of the CNN-8's
Conv2D(8, 3x3, 'same') and the full network's conv1 Conv2D(16, 3x3, 'valid'), on (batch, 28, 28, 1) input.

    python benchmarks/ab_conv_direct.py --a /work/main --b . [--calls 41] [--batch 1000] [--threads 2]

Both builds' extension modules are loaded into one process (b's as cnnlite._kernels from its tree, a's from its
.so file under the same name) and their calls alternate (a b, then b a, ...), each timed: on a shared machine whose
speed swings over seconds, neighbouring calls see the same load, where separate processes did not (runs of
unchanged code differed by 30%). Checks the two give bitwise equal results, then prints per pass the medians of the
call times and the median of the per-pair ratios b/a. Both builds run at the CPU's ISA level unless CNNLITE_ISA says
otherwise.
"""
import argparse
import glob
import importlib.util
import os
import statistics
import sys
import time

import numpy as np


def load_kernels(tree):
    """The extension module built in place in `tree`, loaded from its file (a second copy beside the imported one)."""
    path = glob.glob(os.path.join(tree, "cnnlite", "_kernels*.so"))[0]
    spec = importlib.util.spec_from_file_location("cnnlite._kernels", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--a", required=True, help="the old build's tree (baseline)")
    p.add_argument("--b", required=True, help="the new build's tree")
    p.add_argument("--calls", type=int, default=41, help="timed calls of each pass per build")
    p.add_argument("--batch", type=int, default=1000)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    sys.path.insert(0, os.path.abspath(args.b))
    import cnnlite  # noqa: F401  (b's package: its config applies CNNLITE_ISA)
    from cnnlite import _kernels as kb
    ka = load_kernels(os.path.abspath(args.a))
    builds = {"a": ka, "b": kb}
    for k in builds.values():
        k.set_num_threads(args.threads)
        if os.environ.get("CNNLITE_ISA"):
            k.set_isa(os.environ["CNNLITE_ISA"])
    print(f"a = {os.path.abspath(args.a)} ({ka.get_isa()}), b = {os.path.abspath(args.b)} ({kb.get_isa()}), "
          f"batch {args.batch}, {args.threads} threads, {args.calls} alternating calls per build and pass")
    rng = np.random.default_rng(0)
    for name, cout, pads in (("cnn8", 8, (1, 1, 1, 1)), ("conv1", 16, (0, 0, 0, 0))):
        x = rng.random((args.batch, 28, 28, 1), dtype=np.float32)
        w = (rng.standard_normal((3, 3, 1, cout)) / 3).astype(np.float32)
        bias = (rng.standard_normal(cout) / 10).astype(np.float32)
        y = kb.conv2d_forward(x, w, bias, 1, 1, *pads, relu=True, algo="direct")
        dy = rng.standard_normal(y.shape).astype(np.float32)
        passes = {
            "forward": lambda k: k.conv2d_forward(x, w, bias, 1, 1, *pads, relu=True, algo="direct"),
            "weights": lambda k: k.conv2d_backward(dy, x, w, 1, 1, *pads, need_dx=False, y=y,
                                                   algo_weights="direct")[1:],
        }
        for what, fn in passes.items():
            ra, rb = fn(ka), fn(kb)
            same = all(np.asarray(u).tobytes() == np.asarray(v).tobytes()
                       for u, v in zip(ra if isinstance(ra, tuple) else (ra,), rb if isinstance(rb, tuple) else (rb,)))
            times = {"a": [], "b": []}
            for i in range(args.calls):
                for which in ("a", "b") if i % 2 == 0 else ("b", "a"):
                    t = time.perf_counter()
                    fn(builds[which])
                    times[which].append(time.perf_counter() - t)
            ma, mb = statistics.median(times["a"]), statistics.median(times["b"])
            pair = statistics.median(b / a for a, b in zip(times["a"], times["b"]))
            print(f"{name} {what:8s}  a {ma * 1e3:7.2f} ms  b {mb * 1e3:7.2f} ms  b/a {mb / ma:.2f}x  "
                  f"(median pair ratio {pair:.2f}x)  {'bitwise equal' if same else 'RESULTS DIFFER'}", flush=True)


if __name__ == "__main__":
    main()
