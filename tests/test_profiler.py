"""cnnlite.profile and fit(profile=True): rows per layer, totals that add up to the wall time, no effect when off."""
import time

import numpy as np
import pytest

import cnnlite
from cnnlite import layers, profiler
from cnnlite.engine.plan import NULL_TIMER, ExecutionPlan

COLUMNS = ["Row", "Output shape", "Calls", "Fwd ms", "Fwd ms/call", "Bwd ms", "Bwd ms/call", "Total ms", "% wall",
           "Plan (fwd/dx/dW algorithms; fusions)"]


def _model(seed=0):
    np.random.seed(seed)
    model = cnnlite.Sequential([
        layers.Conv2D(4, (3, 3), activation="relu", input_shape=(8, 8, 1)), layers.MaxPooling2D(),
        layers.Dropout(0.25), layers.Flatten(), layers.Dense(10, activation="softmax")])
    model.compile("adam", "categorical_crossentropy", ["accuracy"])
    return model


def _data(n=64):
    rng = np.random.default_rng(1)
    return rng.random((n, 8, 8, 1), dtype=np.float32), np.eye(10, dtype=np.float32)[rng.integers(0, 10, n)]


def _layer_rows(phase, model):
    return [r for r in phase["rows"] if r["name"] in {l.name for l in model.layers}]


def test_fit_rows_for_every_layer_and_totals_add_up():
    model, (x, y) = _model(), _data()
    with cnnlite.profile() as prof:
        start = time.perf_counter()
        model.fit(x, y, batch_size=16, epochs=2, verbose=0)
        elapsed_ms = 1e3 * (time.perf_counter() - start)
    train = prof.as_dict()["train"]
    assert train["steps"] == 8 and train["samples"] == 128
    rows = _layer_rows(train, model)
    assert [r["name"] for r in rows] == [l.name for l in model.layers]
    assert [r["type"] for r in rows] == ["Conv2D", "MaxPooling2D", "Dropout", "Flatten", "Dense"]
    assert rows[0]["output_shape"] == "(None, 6, 6, 4)"
    for r in rows:
        assert r["calls"] == 8 and r["backward_calls"] == 8
        assert r["forward_ms"] > 0 and r["backward_ms"] > 0
        assert r["forward_ms_per_call"] == pytest.approx(r["forward_ms"] / 8)
    names = [r["name"] for r in train["rows"]]
    assert names[-4:] == ["loss", "gradients", "optimizer", "other"]
    by_name = {r["name"]: r for r in train["rows"]}
    assert by_name["loss"]["type"] == "fused softmax+xent"
    assert by_name["gradients"]["type"] == "sum of 1 shard partials"  # 16-row batches: one reduction shard
    assert by_name["gradients"]["calls"] == 8
    assert by_name["optimizer"]["calls"] == 8 and by_name["optimizer"]["forward_ms"] > 0
    total = sum(r["total_ms"] for r in train["rows"])
    assert total == pytest.approx(train["wall_ms"], rel=1e-9)
    measured = total - by_name["other"]["total_ms"]
    assert 0 < measured <= train["wall_ms"]
    assert by_name["other"]["total_ms"] >= 0
    assert sum(r["percent"] for r in train["rows"]) == pytest.approx(100.0)
    # The measured steps are inside fit, which also did setup and epoch hooks.
    assert train["wall_ms"] <= elapsed_ms
    assert "evaluate" not in prof.as_dict() and "predict" not in prof.as_dict()


def test_layer_times_match_an_independent_clock():
    """A layer that sleeps a known time shows that time in its row (the clock wraps the right call)."""
    model, (x, y) = _model(), _data(32)
    pool = model.layers[1]
    original = pool.forward

    def slow_forward(*args, **kwargs):
        time.sleep(0.01)
        return original(*args, **kwargs)

    pool.forward = slow_forward
    with cnnlite.profile() as prof:
        model.fit(x, y, batch_size=16, epochs=1, verbose=0)
    row = next(r for r in prof.as_dict()["train"]["rows"] if r["name"] == pool.name)
    assert row["forward_ms"] >= 2 * 10.0
    assert row["forward_ms"] < 2 * 10.0 + 200.0


def test_fit_profile_true_prints_and_stores(capsys):
    model, (x, y) = _model(), _data()
    history = model.fit(x, y, batch_size=32, epochs=1, verbose=2, validation_split=0.25, profile=True)
    out = capsys.readouterr().out
    assert isinstance(history.profile, cnnlite.Profile) and model.last_profile is history.profile
    assert not history.profile.active and not profiler.active_profiles()
    table = str(history.profile)
    assert table in out
    for column in COLUMNS:
        assert column in table
    for layer in model.layers:
        assert f"{layer.name} ({type(layer).__name__})" in table
    assert "loss (fused softmax+xent)" in table and "optimizer (Adam update)" in table and "other (" in table
    assert "Training steps" in table and "Evaluation" in table  # the validation pass
    data = history.profile.as_dict()
    assert data["train"]["steps"] == 2 and data["evaluate"]["samples"] == 16


def test_fit_profile_verbose_zero_is_silent_but_stored(capsys):
    model, (x, y) = _model(), _data()
    history = model.fit(x, y, batch_size=32, epochs=1, verbose=0, profile=True)
    assert capsys.readouterr().out == ""
    assert history.profile.as_dict()["train"]["steps"] == 2


def test_profile_false_adds_nothing(monkeypatch):
    model, (x, y) = _model(), _data()
    calls, timers = [], []
    monkeypatch.setattr(profiler.Profile, "__enter__", lambda self: calls.append("enter") or self)
    real_forward, real_backward = ExecutionPlan.forward, ExecutionPlan.backward

    def forward(self, x, training, timer=NULL_TIMER, to_loss=False):
        timers.append(timer)
        return real_forward(self, x, training, timer, to_loss)

    def backward(self, dout, tape, timer=NULL_TIMER):
        timers.append(timer)
        return real_backward(self, dout, tape, timer)

    monkeypatch.setattr(ExecutionPlan, "forward", forward)
    monkeypatch.setattr(ExecutionPlan, "backward", backward)
    history = model.fit(x, y, batch_size=16, epochs=1, verbose=0, profile=False)
    model.evaluate(x, y, verbose=0)
    model.predict(x, verbose=0)
    model.train_on_batch(x, y)
    model.predict_on_batch(x)
    assert calls == [] and model.last_profile is None and not hasattr(history, "profile")
    assert profiler.timer("train") is NULL_TIMER
    # one code path: the plan ran every step, each with the do-nothing timer
    assert len(timers) > 10 and all(t is NULL_TIMER for t in timers)


def test_rows_name_what_the_plan_runs():
    model, (x, y) = _model(), _data(32)
    history = model.fit(x, y, batch_size=16, epochs=1, verbose=0, profile=True)
    rows = {r["name"]: r for r in history.profile.as_dict()["train"]["rows"]}
    conv, pool, dense = (model.layers[i].name for i in (0, 1, 4))
    assert rows[conv]["plan"] == model.plan.steps[0].summary()
    assert rows[conv]["plan"].startswith(model.plan.steps[0].algorithms["forward"])
    assert "relu backward folded into the next max-pool" in rows[conv]["plan"]
    assert "applies the previous layer's relu backward" in rows[pool]["plan"]
    assert "softmax folded into the loss" in rows[dense]["plan"]
    assert rows[conv]["plan"] in str(history.profile)


def test_a_profiler_records_only_its_own_thread():
    import threading
    model_a, model_b, (x, y) = _model(seed=1), _model(seed=2), _data(32)
    with cnnlite.profile() as prof:
        worker = threading.Thread(target=model_b.fit, args=(x, y), kwargs=dict(batch_size=16, epochs=3, verbose=0))
        worker.start()
        model_a.fit(x, y, batch_size=16, epochs=1, verbose=0)
        worker.join()
    assert prof.as_dict()["train"]["steps"] == 2
    assert {r["name"] for r in prof.as_dict()["train"]["rows"]} >= {l.name for l in model_a.layers}
    assert not {l.name for l in model_b.layers} & {r["name"] for r in prof.as_dict()["train"]["rows"]}


def test_profiled_training_is_bitwise_the_unprofiled_one():
    x, y = _data()
    plain, timed = _model(seed=3), _model(seed=3)
    plain.fit(x, y, batch_size=16, epochs=1, verbose=0, shuffle=False)
    with cnnlite.profile():
        timed.fit(x, y, batch_size=16, epochs=1, verbose=0, shuffle=False)
    for a, b in zip(plain.get_weights(), timed.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_evaluate_predict_and_single_batches_are_profiled():
    model, (x, y) = _model(), _data()
    with cnnlite.profile() as prof:
        model.evaluate(x, y, batch_size=32, verbose=0)
        model.predict(x, batch_size=16, verbose=0)
        model.predict_on_batch(x[:8])
        model(x[:8])
        model.train_on_batch(x, y)
        model.test_on_batch(x, y)
    data = prof.as_dict()
    assert data["evaluate"]["steps"] == 3 and data["evaluate"]["samples"] == 128
    assert data["predict"]["steps"] == 6 and data["predict"]["samples"] == 80
    assert data["train"]["steps"] == 1
    for phase in ("evaluate", "predict"):
        rows = _layer_rows(data[phase], model)
        assert len(rows) == len(model.layers)
        assert all(r["backward_calls"] == 0 and r["backward_ms"] == 0 for r in rows)
        assert sum(r["total_ms"] for r in data[phase]["rows"]) == pytest.approx(data[phase]["wall_ms"])
    assert "optimizer" not in {r["name"] for r in data["evaluate"]["rows"]}
    assert "loss" not in {r["name"] for r in data["predict"]["rows"]}


def test_nested_profilers_both_record_and_reentry_is_counted():
    model, (x, y) = _model(), _data(32)
    outer = cnnlite.profile()
    with outer:
        model.fit(x, y, batch_size=16, epochs=1, verbose=0)
        with cnnlite.profile() as inner:
            model.fit(x, y, batch_size=16, epochs=1, verbose=0)
            with outer:  # re-entering an active profiler does not double-count
                model.train_on_batch(x, y)
            assert outer.active
        assert not inner.active and outer.active
    assert not outer.active and profiler.active_profiles() == ()
    assert outer.as_dict()["train"]["steps"] == 5 and inner.as_dict()["train"]["steps"] == 3
    with outer:  # reuse accumulates
        model.train_on_batch(x, y)
    assert outer.as_dict()["train"]["steps"] == 6
    outer.reset()
    assert outer.as_dict() == {} and "nothing was run" in outer.table()


def test_exception_inside_the_context_leaves_profiling_off():
    model, (x, y) = _model(), _data(32)

    class Boom(cnnlite.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        with cnnlite.profile() as prof:
            model.fit(x, y, batch_size=16, epochs=1, verbose=0, callbacks=[Boom()])
    assert not prof.active and profiler.active_profiles() == () and profiler.timer("train") is NULL_TIMER
    with pytest.raises(RuntimeError, match="boom"):
        model.fit(x, y, batch_size=16, epochs=1, verbose=0, callbacks=[Boom()], profile=True)
    assert profiler.active_profiles() == () and isinstance(model.last_profile, cnnlite.Profile)
    assert not model.last_profile.active
    # the callback raised before the first step's wall time was closed, so no step is reported; training after
    # the context is not profiled
    assert "train" not in prof.as_dict()
    before = model.last_profile.as_dict()
    model.fit(x, y, batch_size=16, epochs=1, verbose=0)
    assert "train" not in prof.as_dict() and model.last_profile.as_dict() == before


def test_a_stopped_or_interrupted_fit_counts_the_steps_it_ran():
    model, (x, y) = _model(), _data(64)

    class StopAfterTwo(cnnlite.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if batch == 1:
                self.model.stop_training = True

    class FailOnThird(cnnlite.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            if batch == 2:
                raise KeyboardInterrupt

    with cnnlite.profile() as prof:
        model.fit(x, y, batch_size=16, epochs=3, verbose=0, callbacks=[StopAfterTwo()])
    assert prof.as_dict()["train"]["steps"] == 2 and prof.as_dict()["train"]["samples"] == 32
    with pytest.raises(KeyboardInterrupt):
        with cnnlite.profile() as prof:
            model.fit(x, y, batch_size=16, epochs=1, verbose=0, callbacks=[FailOnThird()])
    train = prof.as_dict()["train"]
    assert train["steps"] == 2 and sum(r["total_ms"] for r in train["rows"]) == pytest.approx(train["wall_ms"])
    assert not prof.active and profiler.active_profiles() == ()


def test_fit_rejects_a_non_bool_profile():
    model, (x, y) = _model(), _data(16)
    with pytest.raises(ValueError, match="profile"):
        model.fit(x, y, verbose=0, profile="yes")


def test_profile_full_cnn_script_prints_the_table(tmp_path):
    import os
    import pathlib
    import subprocess
    import sys
    script = pathlib.Path(__file__).resolve().parent.parent / "benchmarks" / "profile_full_cnn.py"
    env = dict(os.environ)
    if env.get("PYTHONPATH"):  # a relative source-tree entry must survive cwd=tmp_path
        env["PYTHONPATH"] = os.pathsep.join(str(pathlib.Path(p).resolve()) for p in env["PYTHONPATH"].split(os.pathsep)
                                            if p)
    r = subprocess.run([sys.executable, str(script), "--random", "--batches", "2", "--batch-size", "4",
                        "--threads", "1"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    for column in COLUMNS:
        assert column in r.stdout
    for row in ("conv2d_2 (Conv2D)", "(None, 10, 10, 64)", "dense_1 (Dense)", "loss (fused softmax+xent)",
                "optimizer (Adam update)", "other (", "total (wall time of the steps)"):
        assert row in r.stdout
    assert "2 steps, 8 samples" in r.stdout
