"""Compare ExecutionPlan.bytes_per_batch with the measured peak RSS growth of one training epoch (and one predict)
of the chapter's full network, for a few batch sizes; each size in a fresh process.

    python benchmarks/memory_estimate.py [--batches 64,256,1000,4000] [--out results.json]
"""
import argparse
import json
import subprocess
import sys

CHILD = r"""
import json, resource, sys
import numpy as np
sys.path.insert(0, sys.argv[3])
from test_concurrency import _full_cnn
b, mode = int(sys.argv[1]), sys.argv[2]
def rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"): return int(line.split()[1]) * 1024
def hwm():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"): return int(line.split()[1]) * 1024
rng = np.random.default_rng(0)
n = 2 * b
x = rng.random((n, 28, 28, 1), dtype=np.float32); y = np.eye(10, dtype=np.float32)[rng.integers(0, 10, n)]
model = _full_cnn(1)
model.predict(x[:2], verbose=0)  # plan, weights, extension warm
base = rss()
assert hwm() <= base + (1 << 20) or True
training = mode == "train"
estimate = model._current_plan().bytes_per_batch(b, training)
with open("/proc/self/clear_refs", "w") as f:  # reset VmHWM to the current RSS (Linux >= 4.0)
    f.write("5")
base = rss()
if training:
    model.fit(x, y, batch_size=b, epochs=1, verbose=0, shuffle=False)
else:
    model.predict(x, batch_size=b, verbose=0)
peak = hwm()
print(json.dumps({"batch_size": b, "mode": mode, "estimate": estimate, "rss_before": base, "peak": peak,
                  "growth": peak - base, "data_bytes": x.nbytes + y.nbytes}))
"""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--batches", default="64,256,1000,4000")
    ap.add_argument("--out")
    args = ap.parse_args()
    import pathlib
    tests = str(pathlib.Path(__file__).resolve().parent.parent / "tests")
    rows = []
    for mode in ("train", "predict"):
        for b in [int(v) for v in args.batches.split(",")]:
            out = subprocess.run([sys.executable, "-c", CHILD, str(b), mode, tests], capture_output=True, text=True,
                                 check=True)
            row = json.loads(out.stdout.strip().splitlines()[-1])
            row["estimate_over_growth"] = round(row["estimate"] / max(1, row["growth"]), 2)
            rows.append(row)
            print(f"{mode:8s} batch {b:6d}: estimate {row['estimate'] / 2**20:8.1f} MiB, measured peak RSS growth "
                  f"{row['growth'] / 2**20:8.1f} MiB, ratio {row['estimate_over_growth']}", flush=True)
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
