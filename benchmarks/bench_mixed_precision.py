"""The full network's epoch and accuracy under float32 and mixed_bfloat16 (cnnlite.mixed_precision).

    # epoch times: fresh processes alternating the policies, each a warm-up of 5 batches then one timed
    # 60,000-image epoch (batch 1000, Adam, train only)
    python benchmarks/bench_mixed_precision.py epochs --rounds 3 --threads 2 --json out.json
    # test accuracy after each of N epochs (batch 1000, validation on the 10,000 test images), one policy per process
    python benchmarks/bench_mixed_precision.py accuracy --policy mixed_bfloat16 --epochs 20 --json acc_bf16.json
    # per-pass kernel times, float32 against bfloat16 products, 1 thread, best of --repeats alternating calls
    python benchmarks/bench_mixed_precision.py kernels --repeats 7 --json kernels.json

Both modes record the load average before and after each run (the machine may be shared). Needs MNIST
(CNNLITE_DATA_DIR, as the tests).
"""
import argparse
import json
import os
import pathlib
import statistics
import subprocess
import sys
import time

HERE = pathlib.Path(__file__).resolve().parent


def _data():
    import numpy as np
    from cnnlite.datasets import mnist
    from cnnlite.utils import np_utils
    (x, y), (xt, yt) = mnist.load_data()
    prep = lambda a: a.reshape(len(a), 28, 28, 1).astype("float32") / 255  # noqa: E731
    return prep(x), np_utils.to_categorical(y, 10), prep(xt), np_utils.to_categorical(yt, 10)


def _model(policy, seed):
    import numpy as np
    import cnnlite
    from cnnlite.layers import Conv2D, Dense, Dropout, Flatten, MaxPooling2D
    from cnnlite.models import Sequential
    np.random.seed(seed)
    cnnlite.mixed_precision.set_global_policy(policy)
    model = Sequential([Conv2D(16, (3, 3), input_shape=(28, 28, 1), activation="relu"),
                        Conv2D(32, (3, 3), activation="relu"), MaxPooling2D(pool_size=(2, 2)),
                        Conv2D(64, (3, 3), activation="relu"), MaxPooling2D(pool_size=(2, 2)), Dropout(0.25),
                        Flatten(), Dense(128, activation="relu"), Dropout(0.25), Dense(10, activation="softmax")])
    model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
    return model


def worker(args):
    import cnnlite
    cnnlite.set_num_threads(args.threads)
    x, y, xt, yt = _data()
    model = _model(args.policy, args.seed)
    out = {"policy": args.policy, "threads": args.threads, "gemm_bf16_isa": cnnlite._kernels.gemm_bf16_isa(),
           "plan_precisions": [s.precision for s in model.plan.steps], "load_before": os.getloadavg()}
    if args.mode == "epoch":
        model.fit(x[:5000], y[:5000], batch_size=1000, epochs=1, verbose=0, shuffle=False)  # warm-up
        t0 = time.perf_counter()
        c0 = time.process_time()
        model.fit(x, y, batch_size=1000, epochs=1, verbose=0)
        out.update(epoch_s=time.perf_counter() - t0, cpu_s=time.process_time() - c0)
    else:
        from cnnlite.callbacks import LambdaCallback
        t0 = time.perf_counter()
        log = pathlib.Path(args.progress) if args.progress else None

        def epoch_end(epoch, logs):  # one line per epoch, so a run cut short still has its epochs
            if log is not None:
                with log.open("a") as f:
                    f.write(json.dumps({"policy": args.policy, "epoch": epoch + 1, "seconds": time.perf_counter() - t0,
                                        "load": os.getloadavg()[0], **{k: float(v) for k, v in logs.items()}}) + "\n")
        history = model.fit(x, y, batch_size=1000, epochs=args.epochs, verbose=0, validation_data=(xt, yt),
                            callbacks=[LambdaCallback(on_epoch_end=epoch_end)])
        out.update(seconds=time.perf_counter() - t0, val_accuracy=history.history["val_accuracy"],
                   val_loss=history.history["val_loss"], accuracy=history.history["accuracy"])
    out["load_after"] = os.getloadavg()
    print(json.dumps(out))


def kernels(repeats, threads):
    """Best-of-`repeats` times (ms) of each pass of the full network's Winograd convolutions (batch 200) and of its
    Dense(128) GEMMs (batch 1000), float32 against bfloat16 products, the two alternating."""
    import numpy as np
    import cnnlite
    from cnnlite import _kernels as K
    cnnlite.set_num_threads(threads)
    rng = np.random.default_rng(0)
    cases = {}
    n = 200
    for name, (h, cin, cout) in {"conv2": (26, 16, 32), "conv3": (12, 32, 64)}.items():
        x = rng.standard_normal((n, h, h, cin)).astype(np.float32)
        w = (rng.standard_normal((3, 3, cin, cout)) * 0.1).astype(np.float32)
        dy = rng.standard_normal((n, h - 2, h - 2, cout)).astype(np.float32)
        cases[f"{name} forward"] = lambda p, x=x, w=w: K.conv2d_forward(x, w, None, 1, 1, 0, 0, 0, 0, relu=True,
                                                                         algo="winograd", precision=p)
        cases[f"{name} input grad"] = lambda p, dy=dy, w=w, h=h: K.conv2d_backward_input(
            dy, w, h, h, 1, 1, 0, 0, 0, 0, algo="winograd", precision=p)
        cases[f"{name} weight grad"] = lambda p, dy=dy, x=x: K.conv2d_backward_weights(
            dy, x, 3, 3, 1, 1, 0, 0, 0, 0, algo="winograd", precision=p)
    xd = rng.standard_normal((1000, 1600)).astype(np.float32)
    wd = (rng.standard_normal((1600, 128)) * 0.05).astype(np.float32)
    dyd = rng.standard_normal((1000, 128)).astype(np.float32)
    dense = {"float32": (K.dense_forward, K.dense_backward), "bfloat16": (K.dense_bf16_forward, K.dense_bf16_backward)}
    cases["dense forward"] = lambda p: dense[p][0](xd, wd, None)
    cases["dense input grad"] = lambda p: dense[p][1](dyd, xd, wd, need_dw=False, need_db=False)
    cases["dense weight grad (84-row shard)"] = lambda p: dense[p][1](dyd[:84], xd[:84], wd, need_dx=False)
    out = {}
    for name, f in cases.items():
        best = {"float32": float("inf"), "bfloat16": float("inf")}
        for _ in range(repeats):
            for p in best:
                t0 = time.perf_counter()
                f(p)
                best[p] = min(best[p], (time.perf_counter() - t0) * 1e3)
        out[name] = {"float32_ms": best["float32"], "bfloat16_ms": best["bfloat16"],
                     "speedup": best["float32"] / best["bfloat16"]}
        print(f"{name:32s} float32 {best['float32']:7.2f} ms  bfloat16 {best['bfloat16']:7.2f} ms  "
              f"{out[name]['speedup']:.2f}x", flush=True)
    return {"threads": threads, "repeats": repeats, "gemm_bf16_isa": K.gemm_bf16_isa(), "passes": out}


def run_worker(policy, threads, mode, epochs=1, seed=1, progress=None):
    cmd = [sys.executable, __file__, "_worker", "--policy", policy, "--threads", str(threads), "--mode", mode,
           "--epochs", str(epochs), "--seed", str(seed)] + (["--progress", progress] if progress else [])
    done = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    e = sub.add_parser("epochs")
    e.add_argument("--rounds", type=int, default=3)
    e.add_argument("--threads", type=int, default=2)
    e.add_argument("--json")
    a = sub.add_parser("accuracy")
    a.add_argument("--policy", default="mixed_bfloat16")
    a.add_argument("--epochs", type=int, default=20)
    a.add_argument("--threads", type=int, default=2)
    a.add_argument("--seed", type=int, default=1)
    a.add_argument("--json")
    a.add_argument("--progress", help="append one JSON line per epoch to this file")
    k = sub.add_parser("kernels")
    k.add_argument("--repeats", type=int, default=7)
    k.add_argument("--threads", type=int, default=1)
    k.add_argument("--json")
    w = sub.add_parser("_worker")
    w.add_argument("--policy", required=True)
    w.add_argument("--threads", type=int, required=True)
    w.add_argument("--mode", choices=("epoch", "accuracy"), required=True)
    w.add_argument("--epochs", type=int, default=1)
    w.add_argument("--seed", type=int, default=1)
    w.add_argument("--progress")
    args = parser.parse_args()
    if args.command == "_worker":
        return worker(args)
    if args.command == "kernels":
        load = os.getloadavg()
        result = kernels(args.repeats, args.threads)
        result.update(command=" ".join(sys.argv), load_before=load, load_after=os.getloadavg())
    elif args.command == "epochs":
        runs = {"float32": [], "mixed_bfloat16": []}
        for r in range(args.rounds):
            order = ("float32", "mixed_bfloat16") if r % 2 == 0 else ("mixed_bfloat16", "float32")
            for policy in order:
                res = run_worker(policy, args.threads, "epoch")
                runs[policy].append(res)
                print(f"round {r} {policy:15s} {res['epoch_s']:.2f} s/epoch (cpu {res['cpu_s']:.1f} s, load "
                      f"{res['load_before'][0]:.1f} -> {res['load_after'][0]:.1f})", flush=True)
        med = {p: statistics.median(x["epoch_s"] for x in v) for p, v in runs.items()}
        result = {"command": " ".join(sys.argv), "threads": args.threads, "rounds": args.rounds, "runs": runs,
                  "median_epoch_s": med, "speedup": med["float32"] / med["mixed_bfloat16"]}
        print(f"median s/epoch: float32 {med['float32']:.2f}, mixed_bfloat16 {med['mixed_bfloat16']:.2f}: "
              f"{result['speedup']:.2f}x")
    else:
        result = run_worker(args.policy, args.threads, "accuracy", args.epochs, args.seed, args.progress)
        result["command"] = " ".join(sys.argv)
        print(f"{args.policy}: test accuracy per epoch {['%.4f' % v for v in result['val_accuracy']]}, "
              f"{result['seconds']:.0f} s")
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
