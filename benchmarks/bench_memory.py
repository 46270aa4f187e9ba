"""Peak resident memory of a training process: the chapter's full network (default) fitted on MNIST-shaped data with
validation, one fresh process per framework (`_worker.py --mode memory`).

Two peaks per run: ru_maxrss of the child as the kernel accounts it (os.wait4), and the child's own VmHWM; plus its
RSS after importing the framework and after loading the data, so the table separates the framework's import cost
from training's working set. Every framework loads the same float32 arrays (60000x28x28x1 + 10000x28x28x1 = 219 MiB).

    python benchmarks/bench_memory.py                    # full network, 1 epoch with validation, 2 threads, 3 repeats
    python benchmarks/bench_memory.py --quick            # tiny data, for the smoke test
"""
import argparse
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import FRAMEWORKS, MODEL_NAMES, default_peer_python, machine_info, median, parse_result  # noqa: E402
from bench_e2e import available, child_env  # noqa: E402

HERE = pathlib.Path(__file__).resolve().parent


def run_measured(python, args, threads, timeout):
    """Run _worker.py; return (RESULT dict or None, ru_maxrss MiB of that child, error text)."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen([python, str(HERE / "_worker.py")] + args, env=child_env(threads), stdout=out,
                                stderr=err, text=True)
        deadline = time.monotonic() + timeout
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                proc.kill()
                os.wait4(proc.pid, 0)
                return None, None, f"timed out after {timeout} s"
            time.sleep(0.05)
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here: keep Popen from waiting again
        out.seek(0)
        err.seek(0)
        res = parse_result(out.read())
        tail = "\n".join(err.read().strip().splitlines()[-5:])
    if proc.returncode != 0 or res is None:
        return None, None, f"exit {proc.returncode}: {tail}"
    return res, usage.ru_maxrss / 1024, tail


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split("\n", 1)[1])
    p.add_argument("--model", choices=MODEL_NAMES, default="full")
    p.add_argument("--frameworks", nargs="+", choices=FRAMEWORKS, default=FRAMEWORKS)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--batch", type=int, default=1000)
    p.add_argument("--n-train", type=int, default=60000)
    p.add_argument("--n-test", type=int, default=10000)
    p.add_argument("--data", choices=["auto", "mnist", "random"], default="auto")
    p.add_argument("--torch-layout", choices=["nchw", "nhwc"], default="nchw")
    p.add_argument("--peer-python", default=default_peer_python())
    p.add_argument("--cnnlite-python", default=sys.executable)
    p.add_argument("--timeout", type=float, default=1800)
    p.add_argument("--json", help="also write the raw results to this file")
    p.add_argument("--quick", action="store_true", help="2000 train / 1000 test samples, batch 500, 1 repeat")
    args = p.parse_args(argv)
    if args.quick:
        args.n_train, args.n_test, args.batch, args.repeats = 2000, 1000, 500, 1
    return args


def main(argv=None):
    args = parse_args(argv)
    pythons = {"cnnlite": args.cnnlite_python, "torch": args.peer_python, "keras": args.peer_python}
    frameworks = []
    for fw in args.frameworks:
        ok, why = available(pythons[fw], fw)
        if ok:
            frameworks.append(fw)
        else:
            print(f"# skipping {fw}: not importable with {pythons[fw]} ({why})")
    runs, failed = [], False
    for rep in range(args.repeats):
        order = frameworks[rep % len(frameworks):] + frameworks[:rep % len(frameworks)] if frameworks else []
        for fw in order:
            wargs = ["--framework", fw, "--model", args.model, "--threads", str(args.threads), "--mode", "memory",
                     "--epochs", str(args.epochs), "--batch", str(args.batch), "--n-train", str(args.n_train),
                     "--n-test", str(args.n_test), "--data", args.data, "--torch-layout", args.torch_layout]
            res, maxrss, err = run_measured(pythons[fw], wargs, args.threads, args.timeout)
            if res is None:
                print(f"# {fw} rep {rep}: FAILED {err}")
                failed = True
                continue
            res["wait4_maxrss_mb"] = maxrss
            runs.append(res)
            print(f"# {fw:8s} rep {rep}: peak {maxrss:.0f} MiB (after import {res['rss_after_import_mb']:.0f}, "
                  f"after data {res['rss_after_data_mb']:.0f}), epoch {res['epoch_s']}")
    print(f"\n{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}  model {args.model}, {args.epochs} epoch(s) with "
          f"validation, batch {args.batch}, {args.n_train} train / {args.n_test} test, {args.threads} thread(s), "
          f"data: {runs[0]['data'] if runs else '?'}\n")
    head = ["framework", "peak RSS MiB (wait4)", "peak VmHWM MiB", "after import MiB", "after data MiB",
            "peak − after import MiB"]
    print("| " + " | ".join(head) + " |\n|" + "---|" * len(head))
    peaks = {}
    for fw in frameworks:
        mine = [r for r in runs if r["framework"] == fw]
        if not mine:
            continue
        peak = median([r["wait4_maxrss_mb"] for r in mine])
        peaks[fw] = peak
        imp = median([r["rss_after_import_mb"] for r in mine])
        print(f"| {fw} | {peak:.0f} | {median([r['peak_rss_mb'] for r in mine]):.0f} | {imp:.0f} | "
              f"{median([r['rss_after_data_mb'] for r in mine]):.0f} | {peak - imp:.0f} |")
    if "cnnlite" in peaks:
        for fw in peaks:
            if fw != "cnnlite":
                print(f"\npeak ratio cnnlite/{fw}: {peaks['cnnlite'] / peaks[fw]:.2f}")
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps({"machine": machine_info(), "argv": sys.argv[1:],
                                                       "runs": runs}, indent=1))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
