"""Callbacks: unit tests driving the hooks directly, then the same callbacks inside a real `fit`."""
import math

import numpy as np
import pytest

from cnnlite import callbacks, optimizers, saving
from cnnlite.callbacks import (
    Callback, CallbackList, EarlyStopping, History, LambdaCallback, ModelCheckpoint, TerminateOnNaN,
)
from cnnlite.layers import Dense
from cnnlite.models import Sequential


class StandInModel:
    """The part of a model the callbacks use: weights and the stop flag."""

    def __init__(self):
        self.weights = [np.zeros(3, np.float32)]
        self.stop_training = False
        self.history = None

    def get_weights(self):
        return [w.copy() for w in self.weights]

    def set_weights(self, weights):
        self.weights = [np.array(w, np.float32) for w in weights]


def run_epochs(callback, values, key="val_loss", model=None):
    """Play `fit`'s epoch hooks with `logs[key] = values[epoch]`; the weights are filled with the epoch index."""
    model = model or StandInModel()
    cbs = CallbackList([callback], model=model, epochs=len(values), steps=1, verbose=0)
    cbs.on_train_begin()
    ran = 0
    for epoch, value in enumerate(values):
        cbs.on_epoch_begin(epoch)
        model.weights = [np.full(3, epoch, np.float32)]
        cbs.on_epoch_end(epoch, {key: value})
        ran += 1
        if model.stop_training:
            break
    cbs.on_train_end()
    return ran, model


# --- Callback base and CallbackList --------------------------------------------------------------------------

def test_base_callback_has_every_keras_hook_and_batch_aliases():
    calls = []

    class Aliased(Callback):
        def on_batch_begin(self, batch, logs=None):
            calls.append(("begin", batch, logs))

        def on_batch_end(self, batch, logs=None):
            calls.append(("end", batch, logs))

    cb = Aliased()
    for name in callbacks.HOOK_NAMES:
        assert callable(getattr(cb, name))
    cb.on_train_batch_begin(3, logs={"a": 1})
    cb.on_train_batch_end(3, logs={"loss": 0.5})
    cb.on_test_batch_end(0, logs={})  # test/predict batches do not reach the train aliases
    assert calls == [("begin", 3, {"a": 1}), ("end", 3, {"loss": 0.5})]
    assert cb.model is None and cb.params is None
    model = StandInModel()
    cb.set_model(model)
    cb.set_params({"epochs": 2})
    assert cb.model is model and cb.params == {"epochs": 2}


def test_callback_list_dispatches_in_order_and_sets_model_params_history():
    seen = []

    class Tag(Callback):
        def __init__(self, tag):
            super().__init__()
            self.tag = tag

        def on_epoch_end(self, epoch, logs=None):
            seen.append((self.tag, epoch, dict(logs)))
            logs[self.tag] = epoch  # later callbacks (and History) see what earlier ones add

    a, b = Tag("a"), Tag("b")
    model = StandInModel()
    cbs = CallbackList([a, b], add_history=True, model=model, epochs=1, steps=2, verbose=0)
    assert isinstance(cbs.callbacks[-1], History) and len(cbs) == 3
    assert model.history is cbs.callbacks[-1]
    assert all(c.model is model and c.params == {"epochs": 1, "steps": 2, "verbose": 0} for c in cbs)
    cbs.on_train_begin()
    cbs.on_epoch_end(0, {"loss": 1.0})
    assert seen == [("a", 0, {"loss": 1.0}), ("b", 0, {"loss": 1.0, "a": 0})]
    assert model.history.history == {"loss": [1.0], "a": [0], "b": [0]}


def test_callback_list_keeps_a_given_history_and_accepts_a_single_callback():
    history = History()
    cbs = CallbackList([history], add_history=True)
    assert cbs.callbacks == [history]
    single = TerminateOnNaN()
    assert CallbackList(single).callbacks == [single]
    assert CallbackList(None).callbacks == []


def test_callback_list_batch_logs_are_python_floats():
    got = {}
    cbs = CallbackList([LambdaCallback(on_train_batch_end=lambda batch, logs: got.update(logs))])
    cbs.on_train_batch_end(0, {"loss": np.float32(0.25), "acc": np.float64(0.5)})
    assert got == {"loss": 0.25, "acc": 0.5}
    assert all(type(v) is float for v in got.values())


def test_callback_list_rejects_non_callbacks():
    with pytest.raises(TypeError, match=r"callbacks\[1\] must be a cnnlite.callbacks.Callback"):
        CallbackList([History(), "early_stopping"])
    with pytest.raises(TypeError, match="callbacks must be a list"):
        CallbackList("history")
    with pytest.raises(TypeError, match="callback must be a cnnlite.callbacks.Callback"):
        CallbackList().append(lambda: None)


# --- History -------------------------------------------------------------------------------------------------

def test_history_records_every_epoch_and_resets_epochs_on_train_begin():
    history = History()
    model = StandInModel()
    cbs = CallbackList([history], model=model, epochs=2, steps=1, verbose=0)
    cbs.on_train_begin()
    cbs.on_epoch_end(0, {"loss": 2.0, "val_loss": 3.0})
    cbs.on_epoch_end(1, {"loss": 1.0, "val_loss": 2.5})
    assert history.history == {"loss": [2.0, 1.0], "val_loss": [3.0, 2.5]}
    assert history.epoch == [0, 1]
    assert history.params == {"epochs": 2, "steps": 1, "verbose": 0}
    assert history.model is model and model.history is history
    cbs.on_train_begin()
    assert history.epoch == []


# --- EarlyStopping -------------------------------------------------------------------------------------------

def test_early_stopping_stops_after_patience_and_restores_best_weights():
    es = EarlyStopping(monitor="val_loss", patience=2, restore_best_weights=True)
    ran, model = run_epochs(es, [1.0, 0.5, 0.6, 0.7, 0.4, 0.3])
    assert ran == 4 and es.stopped_epoch == 3 and es.best_epoch == 1 and es.best == 0.5
    np.testing.assert_array_equal(model.weights[0], np.full(3, 1.0))


def test_early_stopping_verbose_messages(capsys):
    run_epochs(EarlyStopping(patience=1, verbose=1, restore_best_weights=True), [1.0, 2.0, 3.0])
    assert capsys.readouterr().out.splitlines() == [
        "Epoch 2: early stopping", "Restoring model weights from the end of the best epoch: 1."]
    run_epochs(EarlyStopping(patience=1), [1.0, 2.0, 3.0])
    assert capsys.readouterr().out == ""


def test_early_stopping_patience_zero_stops_at_first_non_improvement():
    es = EarlyStopping(monitor="loss")
    ran, model = run_epochs(es, [3.0, 2.0, 2.0, 1.0], key="loss")
    assert ran == 3 and es.stopped_epoch == 2
    np.testing.assert_array_equal(model.weights[0], np.full(3, 2.0))  # restore_best_weights=False: the last


def test_early_stopping_without_stop_still_restores_best_weights():
    es = EarlyStopping(patience=5, restore_best_weights=True)
    ran, model = run_epochs(es, [1.0, 0.2, 0.3, 0.4])
    assert ran == 4 and es.stopped_epoch == 0
    np.testing.assert_array_equal(model.weights[0], np.full(3, 1.0))


@pytest.mark.parametrize("monitor", ["val_accuracy", "accuracy", "val_acc", "acc", "sparse_categorical_accuracy"])
def test_early_stopping_auto_mode_maximises_accuracies(monitor):
    es = EarlyStopping(monitor=monitor, patience=1)
    assert es.direction == "max"
    ran, _ = run_epochs(es, [0.5, 0.6, 0.55, 0.58, 0.9], key=monitor)
    assert ran == 3


@pytest.mark.parametrize("monitor", ["loss", "val_loss", "mse", "val_mean_squared_error"])
def test_early_stopping_auto_mode_minimises_losses(monitor):
    assert EarlyStopping(monitor=monitor).direction == "min"


def test_early_stopping_explicit_mode_overrides_the_name():
    es = EarlyStopping(monitor="val_loss", mode="max", patience=0)
    ran, _ = run_epochs(es, [1.0, 2.0, 1.5])
    assert ran == 3 and es.stopped_epoch == 2


def test_early_stopping_min_delta_ignores_small_improvements():
    es = EarlyStopping(monitor="val_loss", min_delta=0.1, patience=2)
    ran, _ = run_epochs(es, [1.0, 0.95, 0.92, 0.5])
    assert ran == 3 and es.best == 1.0
    assert EarlyStopping(min_delta=-0.1).min_delta == 0.1  # Keras takes the absolute value


def test_early_stopping_baseline_stops_when_never_beaten_and_restores_best_of_them():
    es = EarlyStopping(monitor="val_accuracy", baseline=0.8, patience=2, restore_best_weights=True)
    # Improvements below the baseline update the best value but do not restart the patience count.
    ran, model = run_epochs(es, [0.5, 0.7, 0.6, 0.9, 0.95], key="val_accuracy")
    assert ran == 3 and es.stopped_epoch == 2 and es.best_epoch == 1
    np.testing.assert_array_equal(model.weights[0], np.full(3, 1.0))
    es = EarlyStopping(monitor="val_accuracy", baseline=0.6, patience=1)
    ran, _ = run_epochs(es, [0.7, 0.8, 0.9, 0.9], key="val_accuracy")
    assert ran == 4


def test_early_stopping_start_from_epoch_ignores_warm_up():
    es = EarlyStopping(monitor="val_loss", patience=0, start_from_epoch=3)
    ran, _ = run_epochs(es, [1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    assert ran == 5 and es.stopped_epoch == 4


def test_early_stopping_is_reusable_across_fits():
    es = EarlyStopping(monitor="val_loss", patience=0)
    assert run_epochs(es, [1.0, 2.0])[0] == 2
    assert run_epochs(es, [5.0, 4.0, 3.0])[0] == 3  # best and wait were reset by on_train_begin


def test_early_stopping_warns_when_monitor_missing():
    es = EarlyStopping(monitor="val_loss", patience=0)
    with pytest.warns(UserWarning, match="`val_loss` which is not available. Available metrics are: loss"):
        ran, _ = run_epochs(es, [1.0, 2.0, 3.0], key="loss")
    assert ran == 3


def test_early_stopping_nan_is_never_an_improvement():
    es = EarlyStopping(monitor="val_loss", patience=2)
    ran, _ = run_epochs(es, [1.0, math.nan, math.nan, 0.5])
    assert ran == 3


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(mode="maximum"), ValueError, r"mode must be one of \('auto', 'min', 'max'\), got 'maximum'"),
    (dict(monitor="val_auc"), ValueError, "cannot infer whether it should be maximised or minimised"),
    (dict(monitor=""), TypeError, "monitor must be a non-empty metric name"),
    (dict(patience=-1), ValueError, "patience must be a non-negative integer, got -1"),
    (dict(patience=1.5), ValueError, "patience must be a non-negative integer"),
    (dict(start_from_epoch=-2), ValueError, "start_from_epoch must be a non-negative integer"),
    (dict(min_delta="0.1"), TypeError, "min_delta must be a number"),
    (dict(baseline="high"), TypeError, "baseline must be a number or None"),
])
def test_early_stopping_rejects_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        EarlyStopping(**kwargs)


def test_unknown_monitor_with_explicit_mode_is_accepted():
    assert EarlyStopping(monitor="val_auc", mode="max").direction == "max"


# --- ModelCheckpoint arguments -------------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, error, match", [
    (dict(filepath="m.npz"), ValueError, r"must end in '.keras' \(Keras 3\) or '.h5' \(legacy Keras HDF5\)"),
    (dict(filepath="m.weights.h5"), ValueError, r"'.weights.h5' needs save_weights_only=True"),
    (dict(filepath="m.keras", save_weights_only=True), ValueError, "must end in '.weights.h5' .* or '.weights.npz'"),
    (dict(filepath="m.h5", save_weights_only=True), ValueError, "must end in '.weights.h5' .* or '.weights.npz'"),
    (dict(filepath="m.keras", save_freq="batch"), ValueError, "unrecognized save_freq 'batch'"),
    (dict(filepath="m.keras", save_freq=0), ValueError, "unrecognized save_freq 0"),
    (dict(filepath="m.keras", mode="best"), ValueError, "mode must be one of"),
    (dict(filepath=3), TypeError, "filepath must be a str or os.PathLike"),
    (dict(filepath="m.keras", initial_value_threshold="x"), TypeError, "initial_value_threshold"),
])
def test_model_checkpoint_rejects_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        ModelCheckpoint(**kwargs)


def test_model_checkpoint_template_missing_key_names_the_template(tmp_path):
    ckpt = ModelCheckpoint(str(tmp_path / "{epoch:02d}-{val_acc:.2f}.keras"))
    ckpt.set_model(StandInModel())
    with pytest.raises(KeyError, match=r"Failed to format this callback filepath.*no value for val_acc \(available: epoch, loss\)"):
        ckpt.on_epoch_end(0, {"loss": 1.0})


# --- TerminateOnNaN ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("loss, stops", [(math.nan, True), (math.inf, True), (-math.inf, True),
                                         (np.float32("nan"), True), (1.5, False), (None, False)])
def test_terminate_on_nan_sets_stop_training(loss, stops, capsys):
    model = StandInModel()
    cbs = CallbackList([TerminateOnNaN()], model=model)
    cbs.on_train_batch_end(4, {} if loss is None else {"loss": loss})
    assert model.stop_training is stops
    assert ("Batch 4: Invalid loss, terminating training" in capsys.readouterr().out) is stops


def test_terminate_on_nan_raise_error():
    cb = TerminateOnNaN(raise_error=True)
    cb.set_model(StandInModel())
    with pytest.raises(RuntimeError, match="NaN or Inf loss encountered at batch 2"):
        cb.on_train_batch_end(2, {"loss": float("nan")})


# --- LambdaCallback ------------------------------------------------------------------------------------------

def test_lambda_callback_calls_each_hook_with_keras_arguments():
    calls = []
    cb = LambdaCallback(
        on_train_begin=lambda logs: calls.append(("train_begin", logs)),
        on_epoch_begin=lambda epoch, logs: calls.append(("epoch_begin", epoch)),
        on_train_batch_begin=lambda batch, logs: calls.append(("batch_begin", batch)),
        on_train_batch_end=lambda batch, logs: calls.append(("batch_end", batch, logs["loss"])),
        on_epoch_end=lambda epoch, logs: calls.append(("epoch_end", epoch, logs["loss"])),
        on_train_end=lambda logs: calls.append(("train_end", logs)),
        on_test_begin=lambda logs: calls.append(("test_begin",)),
        on_predict_batch_end=lambda batch, logs: calls.append(("predict_batch_end", batch)),
    )
    cbs = CallbackList([cb])
    cbs.on_train_begin()
    cbs.on_epoch_begin(0)
    cbs.on_train_batch_begin(0)
    cbs.on_train_batch_end(0, {"loss": 0.5})
    cbs.on_test_begin()
    cbs.on_epoch_end(0, {"loss": 0.5})
    cbs.on_train_end()
    cbs.on_predict_batch_end(7)
    assert calls == [("train_begin", {}), ("epoch_begin", 0), ("batch_begin", 0), ("batch_end", 0, 0.5),
                     ("test_begin",), ("epoch_end", 0, 0.5), ("train_end", {}), ("predict_batch_end", 7)]


def test_lambda_callback_batch_alias_reached_from_train_batch_hook():
    calls = []
    cbs = CallbackList([LambdaCallback(on_batch_end=lambda batch, logs: calls.append(batch))])
    cbs.on_train_batch_end(0)
    cbs.on_train_batch_end(1)
    assert calls == [0, 1]


def test_lambda_callback_rejects_unknown_hooks_and_non_callables():
    with pytest.raises(ValueError, match="unknown hook 'on_epoch_finish'"):
        LambdaCallback(on_epoch_finish=print)
    with pytest.raises(TypeError, match="on_epoch_end must be callable, got int"):
        LambdaCallback(on_epoch_end=3)


# --- inside a real fit ---------------------------------------------------------------------------------------

def tiny_data(n=16, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 6)).astype(np.float32)
    labels = (x[:, 0] + x[:, 1] > 0).astype(np.int64)
    return x, np.eye(2, dtype=np.float32)[labels]


def tiny_model(optimizer="adam"):
    model = Sequential([Dense(8, activation="relu", input_shape=(6,)), Dense(2, activation="softmax")])
    model.compile(optimizer=optimizer, loss="categorical_crossentropy", metrics=["accuracy"])
    return model


def inject(name, values):
    """A callback that writes values[epoch] into the epoch logs, for the callbacks after it to monitor."""
    return LambdaCallback(on_epoch_end=lambda epoch, logs: logs.__setitem__(name, values[epoch]))


class Snapshots(Callback):
    def __init__(self):
        super().__init__()
        self.weights = []

    def on_epoch_end(self, epoch, logs=None):
        self.weights.append(self.model.get_weights())


def assert_weights_equal(a, b):
    assert len(a) == len(b)
    for wa, wb in zip(a, b):
        np.testing.assert_array_equal(wa, wb)


class Recorder(Callback):
    """Records every hook fit/evaluate/predict call, with its batch or epoch index."""

    def __init__(self):
        super().__init__()
        self.calls = []

    def set_model(self, model):
        super().set_model(model)
        self.calls.append(("set_model",))

    def set_params(self, params):
        super().set_params(params)
        self.calls.append(("set_params",))


def _recording_hook(name):
    if name in callbacks._RUN_HOOKS:
        def hook(self, logs=None):
            self.calls.append((name,))
    else:
        def hook(self, index, logs=None):
            self.calls.append((name, index))
    return hook


for _name in callbacks.HOOK_NAMES:
    if _name not in ("on_batch_begin", "on_batch_end"):  # aliases: reached only through the base class
        setattr(Recorder, _name, _recording_hook(_name))


def test_hook_order_for_a_two_epoch_fit_with_validation():
    x, y = tiny_data(12)
    recorder = Recorder()
    model = tiny_model()
    model.fit(x[:8], y[:8], batch_size=4, epochs=2, validation_data=(x[8:], y[8:]), verbose=0,
              callbacks=[recorder])
    epoch = lambda e: [  # noqa: E731
        ("on_epoch_begin", e),
        ("on_train_batch_begin", 0), ("on_train_batch_end", 0),
        ("on_train_batch_begin", 1), ("on_train_batch_end", 1),
        ("on_test_begin",), ("on_test_batch_begin", 0), ("on_test_batch_end", 0), ("on_test_end",),
        ("on_epoch_end", e),
    ]
    assert recorder.calls == ([("set_model",), ("set_params",), ("on_train_begin",)] + epoch(0) + epoch(1)
                              + [("on_train_end",)])
    assert recorder.model is model
    assert recorder.params == {"epochs": 2, "steps": 2, "verbose": 0}


def test_evaluate_and_predict_hooks():
    x, y = tiny_data(8)
    model = tiny_model()
    recorder = Recorder()
    model.evaluate(x, y, batch_size=4, verbose=0, callbacks=[recorder])
    calls = [c for c in recorder.calls if c[0].startswith("on_")]
    assert calls == [("on_test_begin",), ("on_test_batch_begin", 0), ("on_test_batch_end", 0),
                     ("on_test_batch_begin", 1), ("on_test_batch_end", 1), ("on_test_end",)]
    recorder = Recorder()
    model.predict(x, batch_size=8, verbose=0, callbacks=[recorder])
    calls = [c for c in recorder.calls if c[0].startswith("on_")]
    assert calls == [("on_predict_begin",), ("on_predict_batch_begin", 0), ("on_predict_batch_end", 0),
                     ("on_predict_end",)]


def test_batch_alias_hooks_run_for_training_batches_only():
    x, y = tiny_data(12)
    seen = []
    alias = LambdaCallback(on_batch_begin=lambda b, logs: seen.append(("begin", b)),
                           on_batch_end=lambda b, logs: seen.append(("end", b, sorted(logs))))
    tiny_model().fit(x[:8], y[:8], batch_size=4, epochs=1, validation_data=(x[8:], y[8:]), verbose=0,
                     callbacks=[alias])
    keys = ["acc", "accuracy", "loss"]  # cnnlite logs both spellings of accuracy
    assert seen == [("begin", 0), ("end", 0, keys), ("begin", 1), ("end", 1, keys)]


def test_lambda_callback_hooks_in_order_inside_fit():
    x, y = tiny_data(8)
    calls = []
    cb = LambdaCallback(
        on_train_begin=lambda logs: calls.append("train_begin"),
        on_epoch_begin=lambda epoch, logs: calls.append(f"epoch_begin {epoch}"),
        on_train_batch_begin=lambda batch, logs: calls.append(f"batch_begin {batch}"),
        on_train_batch_end=lambda batch, logs: calls.append(f"batch_end {batch} {math.isfinite(logs['loss'])}"),
        on_epoch_end=lambda epoch, logs: calls.append(f"epoch_end {epoch} {sorted(logs)}"),
        on_train_end=lambda logs: calls.append("train_end"),
    )
    tiny_model().fit(x, y, batch_size=4, epochs=2, verbose=0, callbacks=[cb])
    batches = ["batch_begin 0", "batch_end 0 True", "batch_begin 1", "batch_end 1 True"]
    keys = "['acc', 'accuracy', 'loss']"
    assert calls == (["train_begin", "epoch_begin 0"] + batches + [f"epoch_end 0 {keys}", "epoch_begin 1"]
                     + batches + [f"epoch_end 1 {keys}", "train_end"])


def test_history_from_fit_matches_epoch_logs():
    x, y = tiny_data(16)
    seen = []
    model = tiny_model()
    history = model.fit(x[:12], y[:12], batch_size=4, epochs=3, validation_data=(x[12:], y[12:]), verbose=0,
                        callbacks=[LambdaCallback(on_epoch_end=lambda e, logs: seen.append(dict(logs)))])
    assert isinstance(history, History) and model.history is history
    assert history.epoch == [0, 1, 2]
    assert set(history.history) == {"loss", "accuracy", "acc", "val_loss", "val_accuracy", "val_acc"}
    for key, values in history.history.items():
        assert values == [logs[key] for logs in seen]
        assert all(isinstance(v, float) for v in values)
    assert history.params == {"epochs": 3, "steps": 3, "verbose": 0}
    assert history.model is model


def test_early_stopping_in_fit_stops_at_the_right_epoch_and_restores_best_weights():
    x, y = tiny_data(8)
    snapshots = Snapshots()
    stopper = EarlyStopping(monitor="score", mode="min", patience=2, restore_best_weights=True)
    model = tiny_model()
    history = model.fit(x, y, batch_size=4, epochs=10, verbose=0,
                        callbacks=[inject("score", [3.0, 1.0, 2.0, 2.5, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1]), snapshots,
                                   stopper])
    assert len(history.history["loss"]) == 4 and history.history["score"] == [3.0, 1.0, 2.0, 2.5]
    assert stopper.stopped_epoch == 3 and stopper.best_epoch == 1
    assert_weights_equal(model.get_weights(), snapshots.weights[1])
    with pytest.raises(AssertionError):
        assert_weights_equal(model.get_weights(), snapshots.weights[3])


def test_early_stopping_on_a_flat_loss():
    x, y = tiny_data(8)
    model = tiny_model(optimizer=optimizers.SGD(learning_rate=0.0))
    history = model.fit(x, y, batch_size=4, epochs=10, verbose=0,
                        callbacks=[EarlyStopping(monitor="loss", patience=3, min_delta=1e-4)])
    assert len(history.history["loss"]) == 4


def test_early_stopping_on_real_val_accuracy_uses_max_mode():
    x, y = tiny_data(16)
    stopper = EarlyStopping(monitor="val_accuracy", patience=1)
    history = tiny_model().fit(x[:8], y[:8], batch_size=4, epochs=30, validation_data=(x[8:], y[8:]), verbose=0,
                               callbacks=[stopper])
    values = history.history["val_accuracy"]
    best = -math.inf
    for epoch, value in enumerate(values[:-1]):  # every epoch but the last either improved or was the first miss
        if value > best:
            best = value
        elif epoch > 0:
            pytest.fail(f"should have stopped at epoch {epoch}: {values}")
    assert len(values) == 30 or values[-1] <= best


def test_model_checkpoint_names_files_from_the_template(tmp_path):
    x, y = tiny_data(12)
    model = tiny_model()
    template = tmp_path / "ckpt" / "run" / "{epoch:02d}-{val_loss:.2f}.keras"
    history = model.fit(x[:8], y[:8], batch_size=4, epochs=3, validation_data=(x[8:], y[8:]), verbose=0,
                        callbacks=[ModelCheckpoint(template)])
    expected = sorted(f"{e + 1:02d}-{v:.2f}.keras" for e, v in enumerate(history.history["val_loss"]))
    assert sorted(p.name for p in (tmp_path / "ckpt" / "run").iterdir()) == expected
    last = saving.load_model(tmp_path / "ckpt" / "run" / expected[-1])
    np.testing.assert_array_equal(last.predict(x, verbose=0), model.predict(x, verbose=0))


def test_model_checkpoint_save_best_only_keeps_only_improvements(tmp_path):
    x, y = tiny_data(8)
    snapshots = Snapshots()
    scores = [3.0, 1.0, 2.0, 0.5, 0.7]
    model = tiny_model()
    model.fit(x, y, batch_size=4, epochs=5, verbose=0,
              callbacks=[inject("score", scores), snapshots,
                         ModelCheckpoint(tmp_path / "e{epoch}.keras", monitor="score", mode="min",
                                         save_best_only=True),
                         ModelCheckpoint(tmp_path / "best.keras", monitor="score", mode="min", save_best_only=True)])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.keras", "e1.keras", "e2.keras", "e4.keras"]
    assert_weights_equal(saving.load_model(tmp_path / "best.keras").get_weights(), snapshots.weights[3])
    assert_weights_equal(saving.load_model(tmp_path / "e2.keras").get_weights(), snapshots.weights[1])


def test_model_checkpoint_verbose_messages(tmp_path, capsys):
    x, y = tiny_data(8)
    path = tmp_path / "best.keras"
    tiny_model().fit(x, y, batch_size=8, epochs=3, verbose=0,
                     callbacks=[inject("score", [3.0, 1.0, 2.0]),
                                ModelCheckpoint(path, monitor="score", mode="min", save_best_only=True, verbose=1)])
    lines = [line for line in capsys.readouterr().out.splitlines() if line]
    assert lines == [f"Epoch 1: score improved from inf to 3.00000, saving model to {path}",
                     f"Epoch 2: score improved from 3.00000 to 1.00000, saving model to {path}",
                     "Epoch 3: score did not improve from 1.00000"]


def test_model_checkpoint_initial_value_threshold_and_max_mode(tmp_path):
    x, y = tiny_data(8)
    tiny_model().fit(x, y, batch_size=4, epochs=4, verbose=0,
                     callbacks=[inject("val_accuracy", [0.5, 0.7, 0.9, 0.8]),
                                ModelCheckpoint(tmp_path / "{epoch}.keras", monitor="val_accuracy",
                                                save_best_only=True, initial_value_threshold=0.6)])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["2.keras", "3.keras"]


def test_model_checkpoint_save_weights_only_writes_loadable_weights(tmp_path):
    x, y = tiny_data(8)
    snapshots = Snapshots()
    model = tiny_model()
    model.fit(x, y, batch_size=4, epochs=2, verbose=0,
              callbacks=[snapshots, ModelCheckpoint(tmp_path / "w{epoch}.weights.npz", save_weights_only=True)])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w1.weights.npz", "w2.weights.npz"]
    for epoch in (0, 1):
        fresh = tiny_model()
        fresh.load_weights(tmp_path / f"w{epoch + 1}.weights.npz")
        assert_weights_equal(fresh.get_weights(), snapshots.weights[epoch])
    with pytest.raises(ValueError, match="it holds only weights"):
        saving.load_model(tmp_path / "w1.weights.npz")


def test_model_checkpoint_every_n_batches(tmp_path):
    x, y = tiny_data(16)
    tiny_model().fit(x, y, batch_size=4, epochs=2, verbose=0,
                     callbacks=[ModelCheckpoint(tmp_path / "{epoch}-{batch}.keras", save_freq=2)])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["1-2.keras", "1-4.keras", "2-2.keras", "2-4.keras"]


def test_model_checkpoint_missing_monitor_warns_and_saves(tmp_path):
    x, y = tiny_data(8)
    with pytest.warns(UserWarning, match="Can save best model only with val_loss available"):
        tiny_model().fit(x, y, batch_size=8, epochs=1, verbose=0,
                         callbacks=[ModelCheckpoint(tmp_path / "m.keras", save_best_only=True)])
    assert (tmp_path / "m.keras").exists()


def test_model_checkpoint_refuses_a_directory_path(tmp_path):
    (tmp_path / "m.keras").mkdir()
    x, y = tiny_data(8)
    with pytest.raises(IsADirectoryError, match="is an existing directory"):
        tiny_model().fit(x, y, batch_size=8, epochs=1, verbose=0, callbacks=[ModelCheckpoint(tmp_path / "m.keras")])


def test_terminate_on_nan_input_stops_after_the_first_batch():
    x, y = tiny_data(16)
    x[1, 2] = np.nan
    batches = []
    history = tiny_model().fit(x, y, batch_size=4, epochs=3, verbose=0, shuffle=False,
                               callbacks=[LambdaCallback(on_train_batch_end=lambda b, logs: batches.append(b)),
                                          TerminateOnNaN()])
    assert batches == [0]
    assert len(history.history["loss"]) == 1 and math.isnan(history.history["loss"][0])


def test_terminate_on_nan_with_a_huge_learning_rate():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((64, 6)).astype(np.float32)
    y = rng.standard_normal((64, 1)).astype(np.float32)
    model = Sequential([Dense(16, input_shape=(6,)), Dense(1)])
    model.compile(optimizer=optimizers.SGD(learning_rate=1e20), loss="mse")
    losses = []
    model.fit(x, y, batch_size=4, epochs=5, verbose=0,
              callbacks=[LambdaCallback(on_train_batch_end=lambda b, logs: losses.append(logs["loss"])),
                         TerminateOnNaN()])
    assert 1 < len(losses) < 16 * 5
    assert all(math.isfinite(v) for v in losses[:-1]) and not math.isfinite(losses[-1])
