"""README's results table, regenerated: each chapter example run in full (its own epochs and batch size, all 60,000
training images, the 10,000 test images as validation data), one fresh process each, plus the peak memory of
training the full network (benchmarks/bench_memory.py, cnnlite only). Writes the raw results as JSON with the
command that produced them.

    CNNLITE_DATA_DIR=/work/shared/datasets python benchmarks/chapter_results.py --threads 2
        -> benchmarks/results/<UTC date>/chapter.json (and memory.json)
    python benchmarks/chapter_results.py --quick --no-memory --out /tmp/x   # the examples' --quick subset (smoke test)

For each example: the `Test loss`, `Test accuracy` and `Computation time` lines it prints (the chapter's own
measure: fit + evaluate), the wall time of the whole process and its peak RSS (ru_maxrss from wait4), and the load
average before and after (figures taken on a loaded machine say so).
"""
import argparse
import datetime
import json
import os
import pathlib
import re
import subprocess
import sys
import tempfile
import time

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
from _common import machine_info  # noqa: E402

EXAMPLES = {  # README's rows, in its order
    "mlp_sigmoid": "02_mlp_sigmoid.py",
    "mlp_relu": "03_mlp_relu.py",
    "cnn8": "05_cnn_8_filters.py",
    "full": "06_full_cnn.py",
}
FLOAT = r"[-+]?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?"


def child_env(threads):
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MPLBACKEND="Agg")
    if env.get("PYTHONPATH"):
        env["PYTHONPATH"] = os.pathsep.join(str(pathlib.Path(p).resolve()) for p in env["PYTHONPATH"].split(os.pathsep)
                                            if p)
    return env


def parse_output(stdout):
    """{'test_loss', 'test_accuracy', 'computation_time_s'} from the chapter's three closing lines, or None."""
    loss = re.search(rf"^Test loss: ({FLOAT})$", stdout, re.M)
    acc = re.search(rf"^Test accuracy: ({FLOAT})$", stdout, re.M)
    secs = re.search(r"^Computation time:(\d+\.\d+) sec$", stdout, re.M)
    if not (loss and acc and secs):
        return None
    return {"test_loss": float(loss.group(1)), "test_accuracy": float(acc.group(1)),
            "computation_time_s": float(secs.group(1))}


def run_example(script, args, figures):
    cmd = [sys.executable, str(ROOT / "examples" / script), "--out", str(figures)] + (["--quick"] if args.quick else [])
    load_before = os.getloadavg()
    t0 = time.perf_counter()
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(cmd, env=child_env(args.threads), stdout=out, stderr=err, text=True, cwd=ROOT)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - t0
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    result = parse_output(stdout) if proc.returncode == 0 else None
    if result is None:
        raise RuntimeError(f"{script} failed (exit {proc.returncode}):\n{stdout[-2000:]}\n{stderr[-2000:]}")
    epochs = re.findall(r"^Epoch \d+/(\d+)$", stdout, re.M)
    result.update(script=f"examples/{script}",
                  command=" ".join(["python", f"examples/{script}", "--out", "out"] + cmd[4:]),
                  epochs=int(epochs[-1]) if epochs else None, process_wall_s=round(wall, 3),
                  peak_rss_mib=round(usage.ru_maxrss / 1024, 1), loadavg_before=load_before,
                  loadavg_after=os.getloadavg())
    return result


def _relative(path):
    try:
        return str(pathlib.Path(path).resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


def git_head():
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "?"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split("\n", 1)[1])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--models", nargs="+", choices=list(EXAMPLES), default=list(EXAMPLES))
    p.add_argument("--quick", action="store_true", help="the examples' --quick subset (1000/200 images, 1 epoch)")
    p.add_argument("--no-memory", action="store_true", help="skip the peak-memory run of bench_memory.py")
    p.add_argument("--out", help="results folder (default benchmarks/results/<UTC date>)")
    args = p.parse_args(argv)
    out = pathlib.Path(args.out) if args.out else HERE / "results" / datetime.datetime.utcnow().strftime("%Y-%m-%d")
    out.mkdir(parents=True, exist_ok=True)
    command = "python benchmarks/chapter_results.py " + " ".join(argv if argv is not None else sys.argv[1:])
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    head = git_head()                  # the code that runs (taken before: HEAD may move during a long run)
    rows = {}
    with tempfile.TemporaryDirectory() as figures:
        for name in args.models:
            rows[name] = run_example(EXAMPLES[name], args, figures)
            r = rows[name]
            print(f"{name:12s} test accuracy {r['test_accuracy']:.4f}  loss {r['test_loss']:.4f}  computation time "
                  f"{r['computation_time_s']:.2f} s  peak RSS {r['peak_rss_mib']:.0f} MiB  load {r['loadavg_before'][0]:.2f}",
                  flush=True)
    result = {"command": command, "started": started, "git": head, "threads": args.threads,
              "quick": args.quick, "data_dir": os.environ.get("CNNLITE_DATA_DIR"), "machine": machine_info(),
              "examples": rows}
    (out / "chapter.json").write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {_relative(out / 'chapter.json')}")
    if not args.no_memory:
        mem = out / "memory.json"
        cmd = [sys.executable, str(HERE / "bench_memory.py"), "--frameworks", "cnnlite", "--threads", str(args.threads),
               "--repeats", "1", "--json", str(mem)] + (["--quick"] if args.quick else [])
        print("+ " + " ".join(["python", "benchmarks/bench_memory.py"] + cmd[2:]), flush=True)
        subprocess.run(cmd, check=True, cwd=ROOT)
        data = json.loads(mem.read_text())
        data["command"] = " ".join(["python", "benchmarks/bench_memory.py"] + cmd[2:-2 - args.quick] +
                                   [_relative(mem)] + (["--quick"] if args.quick else []))
        data["argv"] = data["command"].split()[2:]
        mem.write_text(json.dumps(data, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
