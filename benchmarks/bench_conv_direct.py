"""GEMM vs the direct convolution (cpp/conv2d_direct.cpp) over input-channel counts: where the automatic choice
should switch. Each shape is timed with both algorithms forced, one after the other in the same process.

    python benchmarks/bench_conv_direct.py [--threads N] [--batch 250] [--repeats 9] [--clock wall|cpu]
                                           [--cin 1 2 3 4 6 8] [--cout 8 16 32] [--size 28] [--padding valid|same]

Rows: 3x3 stride-1 convolution of a (batch, size, size, cin) input to cout channels; forward with the fused ReLU,
and the backward pass without the input gradient (weight + bias gradient through the fused ReLU, as a first layer
runs it). Medians of --repeats runs in ms.
"""
import argparse
import os
import time


def _parse():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=None, help="cnnlite threads (default: all)")
    p.add_argument("--batch", type=int, default=250)
    p.add_argument("--repeats", type=int, default=9)
    p.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                   help="wall time, or this process's CPU time (all threads; steadier on a shared machine)")
    p.add_argument("--cin", type=int, nargs="+", default=[1, 2, 3, 4, 6, 8])
    p.add_argument("--cout", type=int, nargs="+", default=[8, 16, 32])
    p.add_argument("--size", type=int, default=28)
    p.add_argument("--padding", choices=("valid", "same"), default="valid")
    return p.parse_args()


def main():
    args = _parse()
    import numpy as np
    import cnnlite
    from cnnlite import _kernels as K

    if args.threads is not None:
        cnnlite.set_num_threads(args.threads)
    clock = time.perf_counter if args.clock == "wall" else time.process_time

    def median_ms(fn):
        fn()
        times = []
        for _ in range(args.repeats):
            t0 = clock()
            fn()
            times.append(clock() - t0)
        return sorted(times)[len(times) // 2] * 1e3

    rng = np.random.default_rng(0)
    pad = 1 if args.padding == "same" else 0
    pads = (1, 1, pad, pad, pad, pad)
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    print(f"cnnlite {cnnlite.__version__}, threads {cnnlite.get_num_threads()}, batch {args.batch}, "
          f"{args.size}x{args.size} input, 3x3 {args.padding}, median of {args.repeats} ({args.clock} clock); "
          f"load average {load}")
    print(f"{'cin':>4}{'cout':>6}{'gemm fwd':>10}{'direct fwd':>12}{'gemm dW':>10}{'direct dW':>11}  auto")
    for cin in args.cin:
        for cout in args.cout:
            x = rng.random((args.batch, args.size, args.size, cin), dtype=np.float32)
            k = (rng.standard_normal((3, 3, cin, cout)) / 3).astype(np.float32)
            b = np.zeros(cout, np.float32)
            y = K.conv2d_forward(x, k, b, *pads, relu=True)
            dy = rng.standard_normal(y.shape).astype(np.float32)
            row = {}
            for algo in ("gemm", "direct"):
                row[algo, "fwd"] = median_ms(lambda: K.conv2d_forward(x, k, b, *pads, relu=True, algo=algo))
                row[algo, "dw"] = median_ms(lambda: K.conv2d_backward_weights(dy, x, 3, 3, *pads, y=y, algo=algo))
            auto = K.conv2d_algo(x.shape, k.shape, *pads)
            print(f"{cin:>4}{cout:>6}{row['gemm', 'fwd']:10.2f}{row['direct', 'fwd']:12.2f}{row['gemm', 'dw']:10.2f}"
                  f"{row['direct', 'dw']:11.2f}  {auto}", flush=True)


if __name__ == "__main__":
    main()
