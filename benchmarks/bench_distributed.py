"""The full network's training epoch on this machine as 1 process x 1 thread, 1 process x 2 threads and 2 MPI
processes x 1 thread (cnnlite.distributed), run alternately; prints medians, ratios and the time per step spent
combining gradients (the exchange of shard partials and their sum) and gathering outputs.

    python benchmarks/bench_distributed.py --rounds 3 --epochs 2 --out benchmarks/results/DATE/distributed.json

Each run trains `--epochs` epochs of the full network on the first `--n` MNIST images at batch 1000 and reports its
last epoch (the first one warms up). Needs MNIST (CNNLITE_DATA_DIR) and the [distributed] extra.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

CONFIGS = {"1x1": (1, 1), "1x2": (1, 2), "2x1": (2, 1)}  # name -> (processes, threads per process)


def worker(args):
    import numpy as np

    import cnnlite.distributed as dist
    from cnnlite.callbacks import Callback
    from cnnlite.datasets import mnist
    from cnnlite.utils import np_utils
    import fingerprint

    dist.init()
    (x, y), _ = mnist.load_data()
    x = x[:args.n].reshape(-1, 28, 28, 1).astype("float32") / 255
    y = np_utils.to_categorical(y[:args.n], 10)
    np.random.seed(1)
    model = fingerprint.Sequential(fingerprint._full())
    model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])

    class EpochClock(Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.t0 = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.last = time.perf_counter() - self.t0

    clock = EpochClock()
    model.fit(x, y, batch_size=1000, epochs=args.epochs - 1, verbose=0)
    history = model.fit(x, y, batch_size=1000, epochs=1, verbose=0, callbacks=[clock], profile=True)
    train = history.profile.as_dict()["train"]
    rows = {r["name"]: r for r in train["rows"]}
    steps = train["steps"]
    result = {"epoch_s": clock.last, "steps": steps,
              "gradients_ms_per_step": rows["gradients"]["total_ms"] / steps,
              "gather_ms_per_step": rows.get("distributed", {"total_ms": 0.0})["total_ms"] / steps,
              "processes": dist.size(), "threads": __import__("cnnlite").get_num_threads()}
    if dist.is_primary():
        print("RESULT " + json.dumps(result), flush=True)


def run(name, args):
    procs, threads = CONFIGS[name]
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    here = Path(__file__).resolve().parent
    env["PYTHONPATH"] = os.pathsep.join([str(here)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    cmd = [sys.executable, __file__, "--worker", "--n", str(args.n), "--epochs", str(args.epochs)]
    if procs > 1:
        mpiexec = Path(sys.executable).with_name("mpiexec")
        cmd = [str(mpiexec) if mpiexec.exists() else "mpiexec", "-n", str(procs)] + cmd
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=3600)
    if out.returncode != 0:
        raise SystemExit(f"{name} failed:\n{out.stdout}\n{out.stderr}")
    line = [l for l in out.stdout.splitlines() if l.startswith("RESULT ")][-1]
    return json.loads(line[len("RESULT "):])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--n", type=int, default=60000)
    parser.add_argument("--out", default=None)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args)
    runs = {name: [] for name in CONFIGS}
    for r in range(args.rounds):
        for name in (CONFIGS if r % 2 == 0 else reversed(list(CONFIGS))):  # alternate the order
            runs[name].append(run(name, args))
            print(f"round {r + 1} {name}: epoch {runs[name][-1]['epoch_s']:.2f} s, gradients "
                  f"{runs[name][-1]['gradients_ms_per_step']:.1f} ms/step, gather "
                  f"{runs[name][-1]['gather_ms_per_step']:.2f} ms/step", flush=True)
    median = {name: statistics.median(r["epoch_s"] for r in rs) for name, rs in runs.items()}
    summary = {"median_epoch_s": median,
               "median_gradients_ms_per_step": {n: statistics.median(r["gradients_ms_per_step"] for r in rs)
                                                for n, rs in runs.items()},
               "median_gather_ms_per_step": {n: statistics.median(r["gather_ms_per_step"] for r in rs)
                                             for n, rs in runs.items()},
               "ratio_2x1_over_1x2": median["2x1"] / median["1x2"], "ratio_1x2_over_1x1": median["1x2"] / median["1x1"],
               "ratio_2x1_over_1x1": median["2x1"] / median["1x1"]}
    print(json.dumps(summary, indent=1))
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        with open(args.out, "w") as f:
            json.dump({"command": " ".join(sys.argv), "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                       "load_before": os.getloadavg(), "runs": runs, "summary": summary}, f, indent=1)


if __name__ == "__main__":
    main()
