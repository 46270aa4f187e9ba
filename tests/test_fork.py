"""Fork safety (issue 13): a child started with 'fork', 'forkserver' or 'spawn' after the parent trained with every
thread predicts, evaluates and trains with the parent's bits, also when another thread of the parent was inside a
kernel at the fork. libgomp's thread pool does not survive fork: a forked child runs its kernels on one thread
(cnnlite._kernels.forked_serial()); 'forkserver' and 'spawn' children keep the full count.

Each case runs in a subprocess under a timeout, so a hang fails the test instead of stalling the suite."""
import json
import multiprocessing as mp
import os
import pathlib
import subprocess
import sys

import pytest

import cnnlite

WORKER = pathlib.Path(__file__).with_name("fork_worker.py")
TIMEOUT = 150


@pytest.mark.parametrize("busy", [False, True], ids=["idle", "thread-in-kernel"])
@pytest.mark.parametrize("method", ["fork", "forkserver", "spawn"])
def test_child_process_predicts_evaluates_and_trains_with_the_parents_bits(method, busy, tmp_path):
    if method not in mp.get_all_start_methods():
        pytest.skip(f"start method {method!r} not available here")
    args = [sys.executable, str(WORKER), method] + (["--busy-thread"] if busy else [])
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in [str(pathlib.Path(cnnlite.__file__).parent.parent),
                                                    env.get("PYTHONPATH")] if p)
    try:
        out = subprocess.run(args, capture_output=True, text=True, timeout=TIMEOUT, env=env, cwd=tmp_path)
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"{method} child (busy={busy}) hung: no result within {TIMEOUT} s\n{e.stderr}")
    assert out.stdout.strip(), out.stderr
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert "error" not in report, report["error"] + "\n" + out.stderr
    child, expected = report["child"], report["expected"]
    for key, value in expected.items():
        assert child[key] == value, (key, report)
    assert report["exitcode"] == 0 and report["ok"], report
    if method == "fork" and cnnlite.has_openmp():
        # The parent ran parallel kernels: the child runs serially, and says so everywhere.
        assert child["forked_serial"] and child["threads"] == 1 and child["team"] == 1, child
    else:
        assert not child["forked_serial"] and child["threads"] == report["parent_threads"], child
        assert child["team"] == report["parent_threads"], child


def test_parent_keeps_its_threads_after_forking():
    if not cnnlite.has_openmp():
        pytest.skip("no OpenMP")
    ctx = mp.get_context("fork")
    before = cnnlite.get_num_threads()
    proc = ctx.Process(target=os._exit, args=(0,))
    proc.start()
    proc.join(30)
    assert proc.exitcode == 0
    assert not cnnlite._kernels.forked_serial()
    assert cnnlite.get_num_threads() == before
