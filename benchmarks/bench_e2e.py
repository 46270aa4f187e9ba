"""End-to-end training speed: seconds per epoch of the chapter's four models (batch 1000, Adam), train only and with
validation on the 10k test set, for cnnlite, PyTorch (CPU) and Keras on TensorFlow, and the ratio cnnlite/peer.

Each run is its own subprocess (`_worker.py`), so every framework gets its own thread settings and memory; the
frameworks alternate within each repetition (the order rotates from one repetition to the next) so slow drifts of a
shared machine hit all of them alike. Reported: the median over all timed epochs of all repetitions. The warm-up
(first, partial epoch + a validation batch) is never timed. The same run records the GEMM peak (NumPy float32
matmul 2048^2, GFLOP/s) at each thread count.

    python benchmarks/bench_e2e.py --threads 1 2 --repeats 3           # everything importable
    python benchmarks/bench_e2e.py --models full --frameworks cnnlite keras --threads 2
    python benchmarks/bench_e2e.py --quick                             # seconds: tiny data, for the smoke test

PyTorch and Keras run under --peer-python (default $CNNLITE_PEER_PYTHON or /work/peers/venv/bin/python, see
BENCHMARKS.md); cnnlite under --cnnlite-python (default: this interpreter). A framework that does not import is
skipped with a note.
"""
import argparse
import json
import os
import pathlib
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import (FRAMEWORKS, MODEL_NAMES, default_peer_python, fmt_ratio, fmt_seconds,  # noqa: E402
                     machine_info, median, parse_result, training_flops)

HERE = pathlib.Path(__file__).resolve().parent
IMPORT_CHECK = {
    "cnnlite": "from cnnlite.models import Sequential; from cnnlite import layers",
    "torch": "import torch",
    "keras": "import os; os.environ['KERAS_BACKEND']='tensorflow'; os.environ['TF_CPP_MIN_LOG_LEVEL']='3'; "
             "import tensorflow, keras",
}


def child_env(threads):
    """The environment of a benchmark child: thread counts pinned for every runtime, PYTHONPATH made absolute (so a
    child started elsewhere still sees the same source tree), TensorFlow quiet."""
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = str(threads)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if env.get("PYTHONPATH"):
        env["PYTHONPATH"] = os.pathsep.join(str(pathlib.Path(p).resolve()) for p in env["PYTHONPATH"].split(os.pathsep)
                                            if p)
    return env


def available(python, framework):
    try:
        r = subprocess.run([python, "-c", IMPORT_CHECK[framework]], env=child_env(1), capture_output=True,
                           text=True, timeout=300)
    except (OSError, subprocess.SubprocessError) as exc:
        return False, str(exc)
    return r.returncode == 0, (r.stderr.strip().splitlines() or [""])[-1]


def run_child(python, script, args, threads, timeout):
    """Run a child; return (parsed RESULT or None, its peak RSS in MiB from wait4, stderr tail)."""
    proc = subprocess.Popen([python, str(script)] + args, env=child_env(threads), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        return None, None, f"timed out after {timeout} s"
    # communicate() has reaped the child; its rusage is folded into RUSAGE_CHILDREN, not retrievable per child here,
    # so the child reports its own peak (VmHWM) in the RESULT line.
    res = parse_result(out)
    tail = "\n".join(err.strip().splitlines()[-5:])
    if proc.returncode != 0 or res is None:
        return None, None, f"exit {proc.returncode}: {tail}"
    return res, res.get("peak_rss_mb"), tail


def gemm_peak(python, threads, size, min_time):
    res, _, err = run_child(python, HERE / "gemm_peak.py", ["--size", str(size), "--min-time", str(min_time)],
                            threads, timeout=300)
    return res if res is not None else {"error": err}


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split("\n", 1)[1])
    p.add_argument("--models", nargs="+", choices=MODEL_NAMES, default=MODEL_NAMES)
    p.add_argument("--frameworks", nargs="+", choices=FRAMEWORKS, default=FRAMEWORKS)
    p.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    p.add_argument("--repeats", type=int, default=3, help="fresh processes per framework, model and thread count")
    p.add_argument("--epochs", type=int, default=1, help="timed epochs per process and mode")
    p.add_argument("--no-validation", action="store_true", help="time train-only epochs only")
    p.add_argument("--batch", type=int, default=1000)
    p.add_argument("--n-train", type=int, default=60000)
    p.add_argument("--n-test", type=int, default=10000)
    p.add_argument("--warmup-samples", type=int, default=10000)
    p.add_argument("--data", choices=["auto", "mnist", "random"], default="auto")
    p.add_argument("--torch-layout", choices=["nchw", "nhwc"], default="nchw",
                   help="PyTorch memory format for the CNNs (nchw measured faster here, see BENCHMARKS.md)")
    p.add_argument("--peer-python", default=default_peer_python())
    p.add_argument("--cnnlite-python", default=sys.executable)
    p.add_argument("--gemm-size", type=int, default=2048)
    p.add_argument("--no-gemm", action="store_true")
    p.add_argument("--timeout", type=float, default=1800, help="seconds per child process")
    p.add_argument("--json", help="also write all raw results to this file")
    p.add_argument("--include", nargs="+", default=[], metavar="JSON",
                   help="add the runs saved by earlier --json runs to the tables (e.g. peers measured before; "
                        "ratios across runs are only as comparable as the machine's load was)")
    p.add_argument("--no-run", action="store_true", help="measure nothing: print the tables of --include files")
    p.add_argument("--quick", action="store_true",
                   help="tiny settings (2000 train / 1000 test samples, batch 500, 1 repeat, small GEMM)")
    args = p.parse_args(argv)
    if args.quick:
        args.n_train, args.n_test, args.batch, args.warmup_samples = 2000, 1000, 500, 500
        args.repeats, args.epochs, args.gemm_size = 1, 1, 256
    return args


def collect(args, log=print):
    pythons = {"cnnlite": args.cnnlite_python, "torch": args.peer_python, "keras": args.peer_python}
    frameworks, skipped = [], {}
    for fw in ([] if args.no_run else args.frameworks):
        ok, why = available(pythons[fw], fw)
        if ok:
            frameworks.append(fw)
        else:
            skipped[fw] = why
            log(f"# skipping {fw}: not importable with {pythons[fw]} ({why})")
    report = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "machine": machine_info(),
              "argv": sys.argv[1:], "pythons": pythons, "skipped": skipped, "gemm": {}, "runs": []}
    for threads in ([] if args.no_run else args.threads):
        if not args.no_gemm:
            report["gemm"][threads] = g = gemm_peak(args.cnnlite_python, threads, args.gemm_size,
                                                    0.2 if args.quick else 1.0)
            log(f"# GEMM {args.gemm_size}^2 float32, {threads} thread(s): numpy "
                f"{g.get('numpy_gflops_median', float('nan')):.1f} GFLOP/s"
                + (f", cnnlite {g['cnnlite_gflops_median']:.1f} GFLOP/s" if "cnnlite_gflops_median" in g else ""))
        for model in args.models:
            for rep in range(args.repeats):
                order = frameworks[rep % len(frameworks):] + frameworks[:rep % len(frameworks)] if frameworks else []
                for fw in order:
                    wargs = ["--framework", fw, "--model", model, "--threads", str(threads),
                             "--epochs", str(args.epochs), "--batch", str(args.batch), "--n-train", str(args.n_train),
                             "--n-test", str(args.n_test), "--warmup-samples", str(args.warmup_samples),
                             "--data", args.data, "--torch-layout", args.torch_layout]
                    if args.no_validation:
                        wargs.append("--no-validation")
                    res, _, err = run_child(pythons[fw], HERE / "_worker.py", wargs, threads, args.timeout)
                    if res is None:
                        log(f"# {fw} {model} {threads}t rep {rep}: FAILED {err}")
                        report["runs"].append({"framework": fw, "model": model, "threads": threads, "error": err})
                        continue
                    log(f"# {fw:8s} {model:12s} {threads}t rep {rep}: train {res['train_epoch_s']} "
                        f"val {res.get('val_epoch_s')} (cpu {res['train_epoch_cpu_s']})")
                    report["runs"].append(res)
                    if args.json:  # keep what is done if a long run is stopped
                        pathlib.Path(args.json).write_text(json.dumps(report, indent=1))
    for path in args.include:
        earlier = json.loads(pathlib.Path(path).read_text())
        report["runs"] += earlier["runs"]
        report.setdefault("included", []).append({"path": path, "date": earlier.get("date")})
        for t, g in earlier.get("gemm", {}).items():
            report["gemm"].setdefault(f"{t} ({pathlib.Path(path).name})", g)
        frameworks = [fw for fw in FRAMEWORKS if fw in frameworks or fw in earlier.get("frameworks", [])]
    report["frameworks"] = frameworks
    return report


def summarize(report):
    """{(model, threads): {framework: {"train": median s, "val": ..., "train_cpu": ..., "val_cpu": ...}}}"""
    cells = {}
    for r in report["runs"]:
        if "error" in r:
            continue
        cell = cells.setdefault((r["model"], r["threads"]), {}).setdefault(
            r["framework"], {"train": [], "val": [], "train_cpu": [], "val_cpu": []})
        # per 60,000 training samples: a run timed on a subset is scaled (train-only epochs only; a validation
        # epoch's test pass does not scale with the training set, so subset runs drop it)
        scale = 60000 / r.get("n_train", 60000)
        for key in cell:
            field = key.replace("_cpu", "") + "_epoch" + ("_cpu" if key.endswith("_cpu") else "") + "_s"
            if scale != 1 and key.startswith("val"):
                continue
            cell[key] += [t * scale for t in r.get(field, [])]
    return {k: {fw: {m: median(v) for m, v in d.items()} for fw, d in fws.items()} for k, fws in cells.items()}


def markdown(report):
    summary = summarize(report)
    fws = report["frameworks"]
    peers = [f for f in fws if f != "cnnlite"]
    lines = []
    for mode, title in (("train", "train only"), ("val", "with validation on the test set"),
                        ("train_cpu", "train only, CPU seconds (user + system, all threads) of the process")):
        if not any(summary[k][fw][mode] == summary[k][fw][mode] for k in summary for fw in summary[k]):
            continue
        head = ["model", "threads"] + [f"{fw} s/epoch" for fw in fws]
        if "cnnlite" in fws:
            head += [f"cnnlite/{p}" for p in peers]
        lines += [f"\nSeconds per 60,000-sample epoch, {title} (median):\n", "| " + " | ".join(head) + " |",
                  "|" + "---|" * len(head)]
        for (model, threads), cell in sorted(summary.items(), key=lambda kv: (MODEL_NAMES.index(kv[0][0]),
                                                                              kv[0][1])):
            row = [model, str(threads)] + [fmt_seconds(cell.get(fw, {}).get(mode)) for fw in fws]
            if "cnnlite" in fws:
                mine = cell.get("cnnlite", {}).get(mode)
                for p in peers:
                    theirs = cell.get(p, {}).get(mode)
                    row.append(fmt_ratio(mine / theirs) if mine and theirs else "—")
            lines.append("| " + " | ".join(row) + " |")
    threads = sorted({t for (_, t) in summary})
    if len(threads) >= 2:
        t1, t2 = threads[0], threads[1]
        lines += [f"\nSpeed-up {t1} -> {t2} threads (train-only epoch time ratio):\n",
                  "| model | " + " | ".join(fws) + " |", "|---|" + "---|" * len(fws)]
        for model in MODEL_NAMES:
            a, b = summary.get((model, t1)), summary.get((model, t2))
            if not a or not b:
                continue
            row = [model] + [fmt_ratio(a[fw]["train"] / b[fw]["train"]) if fw in a and fw in b else "—" for fw in fws]
            lines.append("| " + " | ".join(row) + " |")
    lines += effective_rate(summary, report["gemm"])
    if report["gemm"]:
        lines += ["\nGEMM peak in the same run (2-D float32 matmul, GFLOP/s, median):\n",
                  "| threads | numpy | cnnlite |", "|---|---|---|"]
        for t, g in report["gemm"].items():
            lines.append(f"| {t} | {g.get('numpy_gflops_median', float('nan')):.1f} | "
                         + (f"{g['cnnlite_gflops_median']:.1f} |" if "cnnlite_gflops_median" in g else "— |"))
    return "\n".join(lines)


def effective_rate(summary, gemm):
    """Lines of a table: cnnlite's effective GFLOP/s per model (its direct-arithmetic training FLOPs per epoch over
    the train-only epoch time), and its distance to the floor: the epoch at the same run's NumPy GEMM peak doing only
    the products of the algorithms cnnlite runs (Winograd F(2x2, 3x3) for the 3x3 convolutions with several input
    channels; see _common.training_flops)."""
    rows = []
    for (model, threads), cell in sorted(summary.items(), key=lambda kv: (MODEL_NAMES.index(kv[0][0]), kv[0][1])):
        epoch = cell.get("cnnlite", {}).get("train")
        if not epoch:
            continue
        flops = 60000 * training_flops(model)
        same = [g for t, g in gemm.items() if str(t).split()[0] == str(threads)]  # included runs: "2 (file.json)"
        peak = same[0].get("numpy_gflops_median") if same else None
        floor = 60000 * training_flops(model, winograd=True) / (peak * 1e9) if peak else None
        rows.append(f"| {model} | {threads} | {flops / 1e12:.4f} | {fmt_seconds(epoch)} | {flops / epoch / 1e9:.1f} | "
                    + (f"{peak:.1f} | {fmt_seconds(floor)} | {fmt_ratio(epoch / floor)} |" if floor else "— | — | — |"))
    if not rows:
        return []
    return ["\ncnnlite's effective rate (direct-arithmetic training TFLOP per epoch / train-only epoch) and its distance "
            "to the floor (the epoch's Winograd-reduced products at the same run's NumPy GEMM peak):\n",
            "| model | threads | TFLOP/epoch | cnnlite s/epoch | effective GFLOP/s | GEMM peak GFLOP/s | floor s | "
            "epoch/floor |", "|---|---|---|---|---|---|---|---|"] + rows


def main(argv=None):
    args = parse_args(argv)
    report = collect(args)
    m = report["machine"]
    print(f"\n{report['date']}  {m.get('cpu')}  {m.get('cpus')} CPUs  data: "
          f"{next((r['data'] for r in report['runs'] if 'data' in r), '?')}  batch {args.batch}, "
          f"{args.n_train} train / {args.n_test} test samples, {args.repeats} repeat(s) x {args.epochs} epoch(s)")
    for inc in report.get("included", []):
        print(f"(includes runs from {inc['path']}, measured {inc['date']})")
    print(markdown(report))
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps(report, indent=1))
    return 0 if all("error" not in r for r in report["runs"]) else 1


if __name__ == "__main__":
    sys.exit(main())
