"""The benchmark scripts run with tiny settings and print their tables and ratios. cnnlite's side needs the Keras-like
API (skipped until it imports). The test with real peers (from the peer interpreter, see BENCHMARKS.md) is a
benchmark run, opt-in: CNNLITE_BENCH_PEERS=1 runs it against PyTorch, CNNLITE_BENCH_PEERS=keras (or torch,keras)
against those, and a requested peer the peer interpreter cannot import fails it. On the shared 2-core machine every
suite run would otherwise start several peer processes; .ci/run runs it with Keras in its Keras step. Scripts run by
path from a temporary directory, so the installed cnnlite is the one measured."""
import importlib.util
import json
import os
import pathlib
import subprocess
import sys

import pytest

BENCH = pathlib.Path(__file__).resolve().parent.parent / "benchmarks"
import _common  # benchmarks/ is on the test path (pyproject.toml)
import bench_e2e


def _cnnlite_api_importable():
    try:
        return importlib.util.find_spec("cnnlite.models") is not None
    except ImportError:
        return False


needs_api = pytest.mark.skipif(not _cnnlite_api_importable(), reason="cnnlite.models not available yet")


def _env():
    env = dict(os.environ)
    if env.get("PYTHONPATH"):  # a relative source-tree entry must survive cwd=tmp_path
        env["PYTHONPATH"] = os.pathsep.join(str(pathlib.Path(p).resolve()) for p in env["PYTHONPATH"].split(os.pathsep)
                                            if p)
    return env


def _run(script, args, tmp_path, timeout=240):
    r = subprocess.run([sys.executable, str(BENCH / script)] + args, cwd=tmp_path, env=_env(), capture_output=True,
                       text=True, timeout=timeout)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return r.stdout


def _peers_requested():
    """The peers CNNLITE_BENCH_PEERS names: '1' is PyTorch alone (TensorFlow's import costs ~10 s), else a comma list
    (torch, keras); unset or '0': none (the benchmark test is skipped)."""
    value = os.environ.get("CNNLITE_BENCH_PEERS", "").strip()
    if value in ("", "0"):
        return []
    return ["torch"] if value == "1" else [fw.strip() for fw in value.split(",") if fw.strip()]


def _peers_available(requested):
    """The requested peers, each importable by the peer interpreter (a requested peer that is not fails the test)."""
    peer = _common.default_peer_python()
    for fw in requested:
        known = sorted(set(bench_e2e.IMPORT_CHECK) - {"cnnlite"})
        assert fw in known, f"CNNLITE_BENCH_PEERS names {fw!r}; the peers are {known}"
        ok, why = bench_e2e.available(peer, fw)
        assert ok, f"CNNLITE_BENCH_PEERS asks for {fw}, which {peer} cannot import: {why} (see BENCHMARKS.md)"
    return requested


def test_load_data_shapes_and_ranges():
    xtr, ytr, xte, yte, source = _common.load_data("random", 50, 20, image=True)
    assert xtr.shape == (50, 28, 28, 1) and xte.shape == (20, 28, 28, 1)
    assert ytr.shape == (50, 10) and (ytr.sum(1) == 1).all()
    assert xtr.dtype == ytr.dtype == "float32" and 0 <= xtr.min() and xtr.max() <= 1
    assert source == "random"
    xtr, *_ = _common.load_data("auto", 30, 10, image=False)
    assert xtr.shape == (30, 784) and xtr.flags.c_contiguous


def test_markdown_reports_medians_ratios_and_speedup():
    def run(fw, threads, train, val):
        return {"framework": fw, "model": "full", "threads": threads, "train_epoch_s": train, "val_epoch_s": val}
    report = {"frameworks": ["cnnlite", "torch"], "gemm": {1: {"numpy_gflops_median": 100.0}},
              "runs": [run("cnnlite", 1, [2.0, 4.0, 3.0], [5.0]), run("torch", 1, [6.0], [10.0]),
                       run("cnnlite", 2, [1.5], [2.5]), run("torch", 2, [4.0], [6.0]),
                       {"framework": "torch", "model": "full", "threads": 2, "error": "boom"}]}
    text = bench_e2e.markdown(report)
    assert "| full | 1 | 3.000 | 6.000 | 0.50 |" in text  # median of 2, 4, 3; ratio 3/6
    assert "| full | 1 | 5.000 | 10.000 | 0.50 |" in text
    assert "| full | 2.00 | 1.50 |" in text  # speed-up 3.0/1.5 and 6.0/4.0
    assert "| 1 | 100.0 | — |" in text


def test_training_flops_count_every_pass_of_every_layer_with_weights():
    # by hand, per sample: the MLP 784*16 + 16*10 multiply-adds forward
    assert _common.training_flops("mlp_relu") == 2 * (3 * (784 * 16 + 160) - 784 * 16)
    assert _common.training_flops("cnn8") == 2 * (3 * (28 * 28 * 8 * 9 + 6272 * 10) - 28 * 28 * 8 * 9)
    conv = [26 * 26 * 16 * 9 * 1, 24 * 24 * 32 * 9 * 16, 10 * 10 * 64 * 9 * 32]
    dense = [1600 * 128, 128 * 10]
    assert _common.training_flops("full") == 2 * (3 * (sum(conv) + sum(dense)) - conv[0])
    assert round(60000 * _common.training_flops("full") / 1e12, 2) == 1.72  # the figure BENCHMARKS.md quotes
    # Winograd F(2x2, 3x3) on conv2 and conv3 only (conv1 has one input channel and runs direct)
    wino = [conv[0], conv[1] / 2.25, conv[2] / 2.25]
    assert _common.training_flops("full", winograd=True) == pytest.approx(2 * (3 * (sum(wino) + sum(dense)) - conv[0]))
    assert _common.training_flops("cnn8", winograd=True) == _common.training_flops("cnn8")


def test_markdown_reports_effective_rate_and_distance_to_the_floor():
    flops = 60000 * _common.training_flops("full")
    floor = 60000 * _common.training_flops("full", winograd=True) / 200e9
    report = {"frameworks": ["cnnlite"], "gemm": {2: {"numpy_gflops_median": 200.0}},
              "runs": [{"framework": "cnnlite", "model": "full", "threads": 2, "train_epoch_s": [8.0]}]}
    text = bench_e2e.markdown(report)
    assert (f"| full | 2 | {flops / 1e12:.4f} | 8.000 | {flops / 8e9:.1f} | 200.0 | {floor:.3f} | "
            f"{8.0 / floor:.2f} |") in text
    report["gemm"] = {"2 (earlier.json)": {"numpy_gflops_median": 200.0}}  # a peak from an included file
    assert f"| {floor:.3f} |" in bench_e2e.markdown(report)


def test_gemm_peak_reports_gflops(tmp_path):
    res = _common.parse_result(_run("gemm_peak.py", ["--size", "128", "--min-time", "0.05"], tmp_path))
    assert res["size"] == 128 and res["numpy_gflops_median"] > 0


@needs_api
def test_bench_e2e_quick_prints_cnnlite_times_and_ratios_to_saved_peers(tmp_path):
    saved = tmp_path / "peers.json"
    saved.write_text(json.dumps({"date": "earlier", "frameworks": ["torch"], "runs": [
        {"framework": "torch", "model": "mlp_relu", "threads": 1, "train_epoch_s": [1e6], "val_epoch_s": [1e6]}]}))
    out = _run("bench_e2e.py", ["--quick", "--threads", "1", "--models", "mlp_relu", "cnn8", "--no-gemm",
                                "--frameworks", "cnnlite", "--include", str(saved)], tmp_path)
    assert "| cnn8 | 1 |" in out
    row = next(line for line in out.splitlines() if line.startswith("| mlp_relu | 1 |"))
    cnnlite_s, torch_s, ratio = row.strip("| ").split(" | ")[2:5]
    assert float(torch_s) == 1e6 and 0 < float(cnnlite_s) < 60 and float(ratio) == 0.0  # 2 decimals of ~1e-7


@needs_api
def test_bench_memory_quick_prints_peaks(tmp_path):
    out = _run("bench_memory.py", ["--quick", "--model", "mlp_relu", "--frameworks", "cnnlite"], tmp_path)
    assert "| cnnlite |" in out


@pytest.mark.slow
@needs_api
@pytest.mark.skipif(not _peers_requested(), reason="a benchmark run against peer frameworks, opt-in (not a missing "
                    "package): CNNLITE_BENCH_PEERS=1 (PyTorch) or =keras; .ci/run's Keras step runs it with Keras")
def test_benchmarks_quick_with_peers_print_ratios(tmp_path):
    peers = _peers_available(_peers_requested())
    out = _run("bench_e2e.py", ["--quick", "--threads", "1", "--models", "mlp_relu", "--no-gemm", "--no-validation",
                                "--frameworks", "cnnlite"] + peers, tmp_path)
    for peer in peers:
        assert f"cnnlite/{peer}" in out
    out = _run("bench_memory.py", ["--quick", "--model", "mlp_relu", "--frameworks", "cnnlite", peers[0]], tmp_path)
    assert f"peak ratio cnnlite/{peers[0]}" in out


@needs_api
def test_hdf5_load_bound_benchmark_runs(tmp_path):
    out = _run("bench_hdf5_load.py", ["--quick"], tmp_path)
    assert out.count("bounded") == 3 and "small" in out, out


@needs_api
def test_ab_conv_direct_compares_a_build_with_itself(tmp_path):
    import cnnlite
    root = str(pathlib.Path(cnnlite.__file__).resolve().parent.parent)   # the installed build (or the in-place tree)
    out = _run("ab_conv_direct.py", ["--a", root, "--b", root, "--calls", "2", "--batch", "8"], tmp_path)
    rows = [line for line in out.splitlines() if "b/a" in line]
    assert [r.split()[0] + " " + r.split()[1] for r in rows] == ["cnn8 forward", "cnn8 weights", "conv1 forward",
                                                                  "conv1 weights"]
    assert all(r.endswith("bitwise equal") for r in rows)


def test_pool_store_backward_ab_runs(tmp_path):
    import cnnlite
    tree = str(pathlib.Path(cnnlite.__file__).resolve().parent.parent)  # wherever this cnnlite imports from
    out = _run("bench_pool_store_bwd.py", ["--a", tree, "--b", tree, "--batch", "8", "--repeats", "1",
                                           "--threads", "1"], tmp_path)
    assert "outputs bitwise equal: True" in out and out.count("b/a") == 4, out
