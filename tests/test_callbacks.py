"""Callbacks: unit tests driving the hooks directly, then the same callbacks inside a real `fit`."""
import math
import warnings

import numpy as np
import pytest

from cnnlite import callbacks
from cnnlite.callbacks import (
    Callback, CallbackList, EarlyStopping, History, LambdaCallback, ModelCheckpoint, TerminateOnNaN,
)


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
    (dict(filepath="m.h5"), ValueError, r"must end in '.keras'.*HDF5 '.h5' is not supported"),
    (dict(filepath="m.keras", save_weights_only=True), ValueError, "must end in '.weights.npz'"),
    (dict(filepath="m.weights.h5", save_weights_only=True), ValueError, "must end in '.weights.npz'"),
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
