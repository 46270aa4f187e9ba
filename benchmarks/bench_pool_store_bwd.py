"""A/B of two builds: the backward passes of the full network's conv -> max-pool pairs with the pool in the store.

    python benchmarks/bench_pool_store_bwd.py --a /work/main --b . --threads 2 --repeats 9

Times, per pair (conv2 26x26x16 -> 32 + pool1, conv3 12x12x32 -> 64 + pool2, batch 1000 by default), the input
gradient (conv2d_maxpool_backward_input) and the 12 weight-gradient shards (conv2d_maxpool_backward_weights_shards),
each given the pooled output as the ReLU gate, as MaxPooling2D's backward after Conv2D(relu) calls them. Each build
runs in its own worker process (PYTHONPATH set to that checkout's in-place tree) on the same seeded data; the parent
asks them for one call at a time, alternating a, b, b, a, ... so a shared machine's drift hits both alike. Prints the
median of each and the ratio b/a; the workers also check that both builds return the same bits.
"""
import argparse
import hashlib
import os
import statistics
import subprocess
import sys

WORKER = r"""
import hashlib, sys, time
import numpy as np
import cnnlite
from cnnlite import _kernels as K
cnnlite.set_num_threads(int(sys.argv[1]))
n = int(sys.argv[2])
rng = np.random.default_rng(7)
shards = min(12, max(1, n // 64))
bounds = [s * n // shards for s in range(shards + 1)]
ops = {}
for name, size, cin, cout in (("conv2", 26, 16, 32), ("conv3", 12, 32, 64)):
    x = rng.standard_normal((n, size, size, cin)).astype(np.float32)
    k = (rng.standard_normal((3, 3, cin, cout)) / np.sqrt(9 * cin)).astype(np.float32)
    b = (0.1 * rng.standard_normal(cout)).astype(np.float32)
    pooled, argmax = K.conv2d_maxpool_forward(x, k, b, 1, 1, 0, 0, 0, 0, relu=True)
    dp = rng.standard_normal(pooled.shape).astype(np.float32)
    s = size - 2
    ops[name + " dx"] = lambda dp=dp, a=argmax, k=k, s=s, p=pooled: K.conv2d_maxpool_backward_input(
        dp, a, k, s + 2, s + 2, 1, 1, 0, 0, 0, 0, y=p)
    ops[name + " dW"] = lambda dp=dp, a=argmax, x=x, p=pooled: K.conv2d_maxpool_backward_weights_shards(
        dp, a, x, 3, 3, 1, 1, 0, 0, 0, 0, bounds, y=p)
def digest(r):
    h = hashlib.sha256()
    for part in (r if isinstance(r, tuple) else (r,)):
        if part is not None:
            h.update(np.ascontiguousarray(part).tobytes())
    return h.hexdigest()[:16]
for line in sys.stdin:
    name = line.strip()
    if name == "digest":
        print(" ".join(digest(op()) for op in ops.values()), flush=True)
        continue
    start = time.perf_counter()
    ops[name]()
    print((time.perf_counter() - start) * 1e3, flush=True)
"""

OPS = ("conv2 dx", "conv2 dW", "conv3 dx", "conv3 dW")


class Worker:
    def __init__(self, tree, threads, batch):
        env = dict(os.environ, PYTHONPATH=os.path.abspath(tree))
        self.proc = subprocess.Popen([sys.executable, "-c", WORKER, str(threads), str(batch)], env=env,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                     cwd=os.path.abspath(tree))

    def ask(self, line):
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        return self.proc.stdout.readline().strip()

    def close(self):
        self.proc.stdin.close()
        self.proc.wait()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--a", required=True, help="reference checkout with an in-place build")
    parser.add_argument("--b", required=True, help="candidate checkout with an in-place build")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=9)
    args = parser.parse_args()
    a, b = Worker(args.a, args.threads, args.batch), Worker(args.b, args.threads, args.batch)
    same = a.ask("digest") == b.ask("digest")
    print(f"a={os.path.abspath(args.a)}  b={os.path.abspath(args.b)}  threads={args.threads}  batch={args.batch}  "
          f"repeats={args.repeats}  outputs bitwise equal: {same}")
    for op in OPS:
        a.ask(op), b.ask(op)  # warm-up: workspaces, first touch
        times = {"a": [], "b": []}
        for r in range(args.repeats):
            for key, w in (("a", a), ("b", b)) if r % 2 == 0 else (("b", b), ("a", a)):
                times[key].append(float(w.ask(op)))
        ma, mb = statistics.median(times["a"]), statistics.median(times["b"])
        print(f"{op:10s} a {ma:8.2f} ms  b {mb:8.2f} ms  b/a {mb / ma:.3f}", flush=True)
    a.close(), b.close()
    if not same:
        sys.exit("the two builds' outputs differ")


if __name__ == "__main__":
    main()
