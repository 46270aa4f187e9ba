"""Soak benchmark (issue 13; not a timed test): train the chapter's full network for several epochs with validation
and a ModelCheckpoint every epoch, and record after each epoch the resident set (VmRSS), the open file descriptors
and the threads of the process. After the first epoch (warm-up: workspaces, allocator arenas, OpenMP pool) the RSS
may grow by at most --max-growth-mib in total, and descriptors and threads not at all.

    CNNLITE_DATA_DIR=... python benchmarks/soak.py --epochs 5 --train 60000 --out soak.json

Exit status 1 when a bound is broken. --train N uses the first N MNIST training images (validation: the first
--val test images).
"""
import argparse
import gc
import json
import os
import platform
import sys
import tempfile
import time

import numpy as np

import cnnlite
from cnnlite.callbacks import Callback, ModelCheckpoint
from cnnlite.datasets import mnist
from cnnlite.layers import Conv2D, Dense, Dropout, Flatten, MaxPooling2D
from cnnlite.models import Sequential
from cnnlite.utils import np_utils

MiB = 1 << 20


def status(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return None


def sample(epoch, t0):
    gc.collect()
    return {"epoch": epoch, "time_s": round(time.perf_counter() - t0, 2), "rss_bytes": status("VmRSS") * 1024,
            "hwm_bytes": status("VmHWM") * 1024, "fds": len(os.listdir("/proc/self/fd")), "threads": status("Threads")}


class Recorder(Callback):
    def __init__(self, rows, t0):
        super().__init__()
        self.rows, self.t0 = rows, t0

    def on_epoch_end(self, epoch, logs=None):
        row = sample(epoch + 1, self.t0)
        row.update({k: float(v) for k, v in (logs or {}).items()})
        self.rows.append(row)
        print(f"epoch {row['epoch']}: {row['time_s']:7.1f} s  RSS {row['rss_bytes'] / MiB:8.1f} MiB  "
              f"fds {row['fds']}  threads {row['threads']}  val_accuracy {row.get('val_accuracy', float('nan')):.4f}",
              flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--train", type=int, default=60000)
    ap.add_argument("--val", type=int, default=10000)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--threads", type=int)
    ap.add_argument("--max-growth-mib", type=float, default=10.0)
    ap.add_argument("--out")
    args = ap.parse_args()
    if args.threads:
        cnnlite.set_num_threads(args.threads)
    (xtr, ytr), (xte, yte) = mnist.load_data()
    x = (xtr[:args.train].reshape(-1, 28, 28, 1) / 255.0).astype(np.float32)
    y = np_utils.to_categorical(ytr[:args.train], 10).astype(np.float32)
    xv = (xte[:args.val].reshape(-1, 28, 28, 1) / 255.0).astype(np.float32)
    yv = np_utils.to_categorical(yte[:args.val], 10).astype(np.float32)
    del xtr, ytr, xte, yte
    np.random.seed(0)
    model = Sequential([
        Conv2D(16, (3, 3), input_shape=(28, 28, 1), activation="relu"), Conv2D(32, (3, 3), activation="relu"),
        MaxPooling2D(pool_size=(2, 2)), Conv2D(64, (3, 3), activation="relu"), MaxPooling2D(pool_size=(2, 2)),
        Dropout(0.25), Flatten(), Dense(128, activation="relu"), Dropout(0.25), Dense(10, activation="softmax")])
    model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
    t0 = time.perf_counter()
    rows = [sample(0, t0)]
    with tempfile.TemporaryDirectory() as tmp:
        checkpoint = ModelCheckpoint(os.path.join(tmp, "epoch{epoch:02d}.keras"))
        model.fit(x, y, batch_size=args.batch_size, epochs=args.epochs, verbose=0, validation_data=(xv, yv),
                  callbacks=[checkpoint, Recorder(rows, t0)])
        saved = sorted(os.listdir(tmp))
    after_first = rows[1]
    last = rows[-1]
    growth = {"rss_bytes": last["rss_bytes"] - after_first["rss_bytes"],
              "rss_max_bytes": max(r["rss_bytes"] for r in rows[1:]) - after_first["rss_bytes"],
              "fds": last["fds"] - after_first["fds"], "threads": last["threads"] - after_first["threads"]}
    ok = (growth["rss_max_bytes"] <= args.max_growth_mib * MiB and max(r["fds"] for r in rows[1:]) <= after_first["fds"]
          and max(r["threads"] for r in rows[1:]) <= after_first["threads"])
    result = {"command": "python benchmarks/soak.py " + " ".join(sys.argv[1:]), "epochs": args.epochs,
              "train": len(x), "val": len(xv), "batch_size": args.batch_size, "threads": cnnlite.get_num_threads(),
              "checkpoints_written": saved, "rows": rows, "growth_after_first_epoch": growth,
              "bound_rss_mib": args.max_growth_mib, "ok": ok,
              "machine": {"python": platform.python_version(), "cpus": os.cpu_count()}}
    print(f"growth after epoch 1: RSS {growth['rss_bytes'] / MiB:+.2f} MiB (max {growth['rss_max_bytes'] / MiB:+.2f}),"
          f" fds {growth['fds']:+d}, threads {growth['threads']:+d}: {'OK' if ok else 'BOUND BROKEN'}")
    if args.out:
        with open(args.out, "w") as f:
            json.dump(result, f, indent=1)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
