"""Data-parallel training over MPI (cnnlite.distributed): N processes under mpiexec end with bitwise the weights,
History, predictions and evaluation of one process; only rank 0 prints and writes; a failing, killed or interrupted
rank ends the job instead of hanging it.

Each case runs tests/distributed_worker.py under `mpiexec -n N` (the MPICH wheel of the [test] extra brings it) and
alone, each bounded by a timeout so a hang fails the test rather than stalling CI. The trainings are marked slow
(the sanitizer step leaves them out; the test command runs them all).
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import needs

needs.importorskip("mpi4py")

WORKER = Path(__file__).with_name("distributed_worker.py")
TIMEOUT = 300


def _mpiexec():
    beside = Path(sys.executable).with_name("mpiexec")
    found = str(beside) if beside.exists() else shutil.which("mpiexec")
    if found is None:
        needs.missing("mpiexec is not installed (the [test] extra installs MPICH's wheel, which brings it)")
    return found


def _env(**extra):
    env = dict(os.environ)
    env.pop("OMP_NUM_THREADS", None)  # cnnlite.distributed.init() gives each rank cores / ranks threads
    root = Path(__file__).resolve().parent
    env["PYTHONPATH"] = os.pathsep.join([str(root), str(root.parent / "benchmarks")]
                                        + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    env.update({k: str(v) for k, v in extra.items()})
    return env


def _run(ranks, args, tmp_path, env=None, expect_ok=True):
    cmd = [sys.executable, str(WORKER)] + [str(a) for a in args]
    if ranks:
        cmd = [_mpiexec(), "-n", str(ranks)] + cmd
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT, env=env or _env(), cwd=tmp_path)
    if expect_ok:
        assert proc.returncode == 0, f"{cmd} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


def _results(folder, ranks):
    return [json.loads((Path(folder) / f"rank{r}.json").read_text()) for r in range(ranks)]


def _same(one, other, keys=("weights", "history", "predict", "evaluate")):
    return {k: one[k] == other[k] for k in keys}


# (model, optimizer, ranks, batch, policy): the chapter's networks and a layer mix beyond them (average pooling,
# tanh, sigmoid, strides), with every optimizer, and the full network under mixed_bfloat16; batch 300 has 4
# reduction shards (300 // 64), so 3 ranks hold 1, 1, 2.
CASES = [("full_cnn", "adam", 2, 300, None), ("cnn_8", "sgd", 3, 300, None),
         ("mlp_sigmoid", "rmsprop", 3, 300, None), ("variants", "adam", 3, 256, None),
         ("full_cnn", "adam", 3, 300, "mixed_bfloat16")]


@pytest.mark.slow
@pytest.mark.parametrize("model, optimizer, ranks, batch, policy", CASES,
                         ids=[f"{c[0]}-{c[1]}-n{c[2]}" + (f"-{c[4]}" if c[4] else "") for c in CASES])
def test_n_processes_train_bitwise_like_one_process(tmp_path, model, optimizer, ranks, batch, policy):
    args = [model, "--optimizer", optimizer, "--batch", batch, "--n", 1100, "--epochs", 2]
    if policy:
        args += ["--policy", policy]
    _run(0, args[:1] + [tmp_path / "one"] + args[1:], tmp_path)
    proc = _run(ranks, args[:1] + [tmp_path / "many"] + args[1:], tmp_path)
    one = _results(tmp_path / "one", 1)[0]
    for result in _results(tmp_path / "many", ranks):
        assert result["size"] == ranks
        assert _same(one, result) == dict.fromkeys(("weights", "history", "predict", "evaluate"), True), result["rank"]
    # 1100 rows in batches of `batch`: the last batch is small (1 or 2 shards), so some rank sat out a step.
    assert proc.stdout.count("Epoch 1/2") == 1 and proc.stdout.count("Epoch 2/2") == 1  # rank 0's progress only


@pytest.mark.slow
def test_train_on_batch_is_collective_and_bitwise_like_one_process(tmp_path):
    args = ["full_cnn", "--on-batch", "--batch", 200, "--n", 600]
    _run(0, args[:1] + [tmp_path / "one"] + args[1:], tmp_path)
    _run(2, args[:1] + [tmp_path / "two"] + args[1:], tmp_path)
    one = _results(tmp_path / "one", 1)[0]
    for result in _results(tmp_path / "two", 2):
        assert _same(one, result) == dict.fromkeys(("weights", "history", "predict", "evaluate"), True)


def test_a_batch_with_fewer_shards_than_ranks_warns_and_still_gives_the_one_process_bits(tmp_path):
    args = ["mlp_relu", "--batch", 100, "--n", 400]  # 100 rows: one shard, so the second rank sits out every step
    _run(0, args[:1] + [tmp_path / "one"] + args[1:], tmp_path)
    proc = _run(2, args[:1] + [tmp_path / "two"] + args[1:], tmp_path)
    assert "1 rank(s) sit out every such step" in proc.stderr and "batch_size >= 128" in proc.stderr
    one = _results(tmp_path / "one", 1)[0]
    for result in _results(tmp_path / "two", 2):
        assert _same(one, result) == dict.fromkeys(("weights", "history", "predict", "evaluate"), True)


@pytest.mark.slow
def test_only_rank_0_writes_the_checkpoint_and_resuming_on_another_count_gives_the_uninterrupted_run(tmp_path):
    common = ["--batch", 256, "--n", 1024]
    _run(0, ["full_cnn", tmp_path / "straight", "--epochs", 2] + common, tmp_path)
    ckpt = tmp_path / "ckpt.keras"
    proc = _run(2, ["full_cnn", tmp_path / "first", "--epochs", 1, "--save", ckpt] + common, tmp_path)
    assert proc.stdout.count("saving model to") == 1  # ModelCheckpoint spoke (and wrote) on rank 0 only
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("ckpt")) == ["ckpt.keras"]  # no temp left
    _run(3, ["full_cnn", tmp_path / "resumed", "--epochs", 2, "--initial-epoch", 1, "--resume", ckpt] + common,
         tmp_path)
    straight = _results(tmp_path / "straight", 1)[0]
    for result in _results(tmp_path / "resumed", 3):
        assert _same(straight, result, ("weights", "predict", "evaluate")) == {"weights": True, "predict": True,
                                                                             "evaluate": True}
        assert result["history"]["loss"] == straight["history"]["loss"][1:]


def test_an_exception_on_one_rank_ends_every_rank_with_the_error(tmp_path):
    start = time.monotonic()
    proc = _run(2, ["mlp_relu", tmp_path / "out", "--fail-on-rank", 1], tmp_path, expect_ok=False)
    assert proc.returncode != 0
    assert "ValueError: a failure on rank 1" in proc.stderr
    assert "rank 1 of 2 failed; ending all ranks" in proc.stderr
    assert not (tmp_path / "out").exists()  # rank 0 never finished
    assert time.monotonic() - start < 60


def test_a_killed_rank_ends_the_job(tmp_path):
    start = time.monotonic()
    proc = _run(3, ["mlp_relu", tmp_path / "out", "--kill-rank", 2], tmp_path, expect_ok=False)
    assert proc.returncode != 0
    assert not (tmp_path / "out").exists()
    assert time.monotonic() - start < 60


@pytest.mark.slow
def test_ctrl_c_ends_every_rank(tmp_path):
    cmd = [_mpiexec(), "-n", "2", sys.executable, str(WORKER), "full_cnn", str(tmp_path / "out"), "--epochs", "200"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=_env(),
                            cwd=tmp_path)
    try:
        deadline = time.monotonic() + TIMEOUT
        for line in proc.stdout:  # wait until the ranks train (their kernels running)
            if "Epoch 2/200" in line or time.monotonic() > deadline:
                break
        time.sleep(0.3)
        proc.send_signal(signal.SIGINT)
        rc = proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert rc != 0
    assert not (tmp_path / "out").exists()


def test_more_ranks_than_reduction_shards_is_refused_on_every_rank(tmp_path):
    proc = _run(3, ["mlp_relu", tmp_path / "out"], tmp_path, env=_env(CNNLITE_GRADIENT_SHARDS=2), expect_ok=False)
    assert proc.returncode != 0
    assert "3 processes but gradient_shards=2" in proc.stderr


def test_ranks_given_different_data_are_refused(tmp_path):
    proc = _run(2, ["mlp_relu", tmp_path / "out", "--perturb-rank", 1], tmp_path, expect_ok=False)
    assert proc.returncode != 0
    assert "every process must be given the same full arrays" in proc.stderr and "ranks [1]" in proc.stderr


def test_without_mpiexec_init_changes_nothing(tmp_path):
    code = ("import cnnlite.distributed as dist; w = dist.init(); "
            "print(w, dist.rank(), dist.size(), dist.is_primary())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=TIMEOUT, env=_env(),
                         cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["None", "0", "1", "True"]


@pytest.mark.slow
def test_the_distributed_example_trains_the_full_network_like_one_process(tmp_path):
    needs.importorskip("matplotlib")
    example = Path(__file__).resolve().parent.parent / "examples" / "07_distributed.py"
    env = _env(MPLBACKEND="Agg")
    runs = {}
    for ranks in (0, 2):
        cmd = [sys.executable, str(example), "--quick", "--out", f"out{ranks}"]
        cmd = ([_mpiexec(), "-n", str(ranks)] + cmd) if ranks else cmd
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT, env=env, cwd=tmp_path)
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
        runs[ranks] = proc.stdout
        assert proc.stdout.count("Test accuracy:") == 1 and proc.stdout.count("Epoch 1/1") == 1  # rank 0 only
        assert sorted(p.name for p in (tmp_path / f"out{ranks}").iterdir()) == [
            "07_distributed_history.png", "07_distributed_predictions.png"]
    lines = {r: [l for l in out.splitlines() if "weights SHA-256" in l][0] for r, out in runs.items()}
    assert "Processes: 2; weights SHA-256 on every rank (all agree)" in lines[2]
    assert lines[0].split()[-1] == lines[2].split()[-1]  # the one-process weights, bit for bit
