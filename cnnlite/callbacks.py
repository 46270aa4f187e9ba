"""Training callbacks with Keras's hook names and semantics.

`Model.fit` wraps the user's callbacks in a `CallbackList` (which always adds a `History`) and calls, in order:
`set_model`, `set_params`, `on_train_begin`, then per epoch `on_epoch_begin`, per batch
`on_train_batch_begin`/`on_train_batch_end` (which forward to the `on_batch_begin`/`on_batch_end` aliases),
validation through the `on_test_*` hooks, `on_epoch_end`, and finally `on_train_end`.
`evaluate` and `predict` use the `on_test_*` and `on_predict_*` hooks.

Deviations from Keras, chosen for clearer errors:
- an unknown `mode` raises ValueError (Keras warns and falls back to 'auto'); with mode='auto' a monitor whose
  direction cannot be told from its name raises at construction (Keras 3 raises at the first epoch end);
- LambdaCallback rejects keywords that are not hook names (Keras stores them silently);
- ModelCheckpoint paths must end in `.keras` or `.h5` (whole model, Keras 3 / legacy Keras HDF5) or `.weights.h5`
  / `.weights.npz` (weights only, Keras 3 / cnnlite; see `cnnlite.saving`).
"""
import math
import numbers
import os
import sys
import warnings

import numpy as np

from cnnlite import distributed, plot
from cnnlite._validation import check_nonneg_int, is_int

__all__ = [
    "Callback",
    "CallbackList",
    "History",
    "EarlyStopping",
    "ModelCheckpoint",
    "TerminateOnNaN",
    "LambdaCallback",
    "LivePlot",
]

# Every hook a Callback has, with its positional arguments (the batch hooks take `logs` as a keyword, as in Keras).
_EPOCH_HOOKS = ("on_epoch_begin", "on_epoch_end")
_BATCH_HOOKS = (
    "on_batch_begin", "on_batch_end",
    "on_train_batch_begin", "on_train_batch_end",
    "on_test_batch_begin", "on_test_batch_end",
    "on_predict_batch_begin", "on_predict_batch_end",
)
_RUN_HOOKS = (
    "on_train_begin", "on_train_end",
    "on_test_begin", "on_test_end",
    "on_predict_begin", "on_predict_end",
)
HOOK_NAMES = _EPOCH_HOOKS + _BATCH_HOOKS + _RUN_HOOKS


def _say(message):
    """A callback's message, printed by rank 0 only when several processes train together (cnnlite.distributed)."""
    if distributed.is_primary():
        print(message)


class Callback:
    """Base class: override the hooks you need. `self.model` and `self.params` are set by the training loop."""

    def __init__(self):
        self.params = None
        self._model = None

    def set_params(self, params):
        self.params = params

    def set_model(self, model):
        self._model = model

    @property
    def model(self):
        return self._model

    def on_batch_begin(self, batch, logs=None):
        """Alias for `on_train_batch_begin` kept for backwards compatibility (called by it)."""

    def on_batch_end(self, batch, logs=None):
        """Alias for `on_train_batch_end` kept for backwards compatibility (called by it)."""

    def on_epoch_begin(self, epoch, logs=None):
        """Called at the start of an epoch (training only). `epoch` is 0-based."""

    def on_epoch_end(self, epoch, logs=None):
        """Called at the end of an epoch with the epoch's metrics, validation ones prefixed `val_`."""

    def on_train_batch_begin(self, batch, logs=None):
        self.on_batch_begin(batch, logs=logs)

    def on_train_batch_end(self, batch, logs=None):
        """`logs` holds the running means of the loss and metrics over the epoch so far."""
        self.on_batch_end(batch, logs=logs)

    def on_test_batch_begin(self, batch, logs=None):
        """Called before each batch of `evaluate` and of validation inside `fit`."""

    def on_test_batch_end(self, batch, logs=None):
        """Called after each batch of `evaluate` and of validation inside `fit`."""

    def on_predict_batch_begin(self, batch, logs=None):
        """Called before each batch of `predict`."""

    def on_predict_batch_end(self, batch, logs=None):
        """Called after each batch of `predict`."""

    def on_train_begin(self, logs=None):
        """Called once at the start of `fit`."""

    def on_train_end(self, logs=None):
        """Called once at the end of `fit` (also after an early stop)."""

    def on_test_begin(self, logs=None):
        """Called at the start of `evaluate` and of validation inside `fit`."""

    def on_test_end(self, logs=None):
        """Called at the end of `evaluate` and of validation inside `fit`."""

    def on_predict_begin(self, logs=None):
        """Called at the start of `predict`."""

    def on_predict_end(self, logs=None):
        """Called at the end of `predict`."""


def _pythonify_logs(logs):
    """Copy of `logs` with NumPy scalars turned into Python floats (batch logs, as Keras does)."""
    result = {}
    for key, value in logs.items():
        try:
            value = float(value)
        except (TypeError, ValueError):
            pass
        result[key] = value
    return result


class CallbackList(Callback):
    """Calls every hook on each callback in order; what `fit`, `evaluate` and `predict` talk to.

    `add_history=True` appends a `History` unless one is already in the list, and `set_model` stores it as
    `model.history`. Extra keyword arguments become the params given to every callback.
    """

    def __init__(self, callbacks=None, add_history=False, model=None, **params):
        super().__init__()
        self.callbacks = []
        if isinstance(callbacks, Callback):
            callbacks = [callbacks]
        elif callbacks is None:
            callbacks = []
        elif not isinstance(callbacks, (list, tuple)):
            raise TypeError(
                "callbacks must be a list of cnnlite.callbacks.Callback instances, "
                f"got {type(callbacks).__name__}"
            )
        for i, callback in enumerate(callbacks):
            self._check(callback, f"callbacks[{i}]")
            self.callbacks.append(callback)
        self._history = next((c for c in self.callbacks if isinstance(c, History)), None)
        if self._history is None and add_history:
            self._history = History()
            self.callbacks.append(self._history)
        if model is not None:
            self.set_model(model)
        if params:
            self.set_params(params)

    @staticmethod
    def _check(callback, what):
        if not isinstance(callback, Callback):
            raise TypeError(
                f"{what} must be a cnnlite.callbacks.Callback instance, got {type(callback).__name__}"
            )

    def append(self, callback):
        self._check(callback, "callback")
        self.callbacks.append(callback)

    def __iter__(self):
        return iter(self.callbacks)

    def __len__(self):
        return len(self.callbacks)

    def set_params(self, params):
        self.params = params
        for callback in self.callbacks:
            callback.set_params(params)

    def set_model(self, model):
        super().set_model(model)
        if self._history is not None:
            model.history = self._history
        for callback in self.callbacks:
            callback.set_model(model)

    def _call_batch(self, hook, batch, logs):
        logs = _pythonify_logs(logs or {})
        for callback in self.callbacks:
            getattr(callback, hook)(batch, logs=logs)

    def _call(self, hook, *args):
        for callback in self.callbacks:
            getattr(callback, hook)(*args)

    def on_batch_begin(self, batch, logs=None):
        self._call_batch("on_batch_begin", batch, logs)

    def on_batch_end(self, batch, logs=None):
        self._call_batch("on_batch_end", batch, logs)

    def on_train_batch_begin(self, batch, logs=None):
        self._call_batch("on_train_batch_begin", batch, logs)

    def on_train_batch_end(self, batch, logs=None):
        self._call_batch("on_train_batch_end", batch, logs)

    def on_test_batch_begin(self, batch, logs=None):
        self._call_batch("on_test_batch_begin", batch, logs)

    def on_test_batch_end(self, batch, logs=None):
        self._call_batch("on_test_batch_end", batch, logs)

    def on_predict_batch_begin(self, batch, logs=None):
        self._call_batch("on_predict_batch_begin", batch, logs)

    def on_predict_batch_end(self, batch, logs=None):
        self._call_batch("on_predict_batch_end", batch, logs)

    # Epoch and run hooks pass the loop's own dict, so a callback may add entries that later ones (History) see.
    def on_epoch_begin(self, epoch, logs=None):
        self._call("on_epoch_begin", epoch, {} if logs is None else logs)

    def on_epoch_end(self, epoch, logs=None):
        self._call("on_epoch_end", epoch, {} if logs is None else logs)

    def on_train_begin(self, logs=None):
        self._call("on_train_begin", {} if logs is None else logs)

    def on_train_end(self, logs=None):
        self._call("on_train_end", {} if logs is None else logs)

    def on_test_begin(self, logs=None):
        self._call("on_test_begin", {} if logs is None else logs)

    def on_test_end(self, logs=None):
        self._call("on_test_end", {} if logs is None else logs)

    def on_predict_begin(self, logs=None):
        self._call("on_predict_begin", {} if logs is None else logs)

    def on_predict_end(self, logs=None):
        self._call("on_predict_end", {} if logs is None else logs)


class History(Callback):
    """Records the epoch logs: `history` maps each metric name to its list of per-epoch values; `epoch` the
    0-based epoch indices. `fit` always adds one and returns it (also available as `model.history`)."""

    def __init__(self):
        super().__init__()
        self.history = {}
        self.epoch = []

    def on_train_begin(self, logs=None):
        self.epoch = []

    def on_epoch_end(self, epoch, logs=None):
        self.epoch.append(epoch)
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(value)
        if self.model is not None:
            self.model.history = self


# --- callbacks that watch a metric ---------------------------------------------------------------------------

_MODES = ("auto", "min", "max")
_MIN_NAMES = {"loss", "mse", "mae", "mape", "msle", "mean_squared_error", "mean_absolute_error",
              "mean_absolute_percentage_error", "mean_squared_logarithmic_error"}


def _infer_direction(monitor, mode, owner):
    """'min' or 'max' for `monitor` under `mode`; 'auto' maximises accuracies and minimises losses/errors."""
    if not isinstance(monitor, str) or not monitor:
        raise TypeError(f"{owner}: monitor must be a non-empty metric name string, got {monitor!r}")
    if mode not in _MODES:
        raise ValueError(f"{owner}: mode must be one of {_MODES}, got {mode!r}")
    if mode != "auto":
        return mode
    name = monitor[4:] if monitor.startswith("val_") else monitor
    if name in ("acc", "accuracy") or name.endswith("_acc") or name.endswith("accuracy"):
        return "max"
    if name in _MIN_NAMES or name.endswith("loss") or name.endswith("crossentropy") or name.endswith("error"):
        return "min"
    raise ValueError(
        f"{owner} received monitor={monitor!r}, but cannot infer whether it should be maximised or minimised. "
        "Pass mode='max' to keep the highest value, or mode='min' to keep the lowest."
    )


def _as_scalar(value):
    """The monitored value as a float, or None when it is not a scalar number."""
    if isinstance(value, np.ndarray):
        if value.ndim != 0:
            return None
        value = value.item()
    if isinstance(value, numbers.Real):
        return float(value)
    return None


class EarlyStopping(Callback):
    """Stop training when `monitor` has not improved by more than `min_delta` for `patience` epochs.

    With `baseline`, training also stops when the value does not beat the baseline within `patience` epochs.
    With `restore_best_weights`, the weights of the best epoch are put back at the end of training (even if
    training was not stopped early). Epochs before `start_from_epoch` are ignored (warm-up).
    `stopped_epoch` is the 0-based epoch at which training was stopped (0 if it was not), `best_epoch` the best one.
    """

    def __init__(self, monitor="val_loss", min_delta=0, patience=0, verbose=0, mode="auto", baseline=None,
                 restore_best_weights=False, start_from_epoch=0):
        super().__init__()
        self.direction = _infer_direction(monitor, mode, "EarlyStopping")
        if not isinstance(min_delta, numbers.Real) or math.isnan(min_delta):
            raise TypeError(f"EarlyStopping: min_delta must be a number, got {min_delta!r}")
        _check_count(patience, "patience", "EarlyStopping")
        _check_count(start_from_epoch, "start_from_epoch", "EarlyStopping")
        if baseline is not None and not isinstance(baseline, numbers.Real):
            raise TypeError(f"EarlyStopping: baseline must be a number or None, got {baseline!r}")
        self.monitor = monitor
        self.mode = mode
        self.min_delta = abs(float(min_delta))
        self.patience = patience
        self.verbose = verbose
        self.baseline = baseline
        self.restore_best_weights = bool(restore_best_weights)
        self.start_from_epoch = start_from_epoch
        self._reset()

    def _reset(self):
        self.wait = 0
        self.stopped_epoch = 0
        self.best_epoch = 0
        self.best_weights = None
        self.best = math.inf if self.direction == "min" else -math.inf

    def _is_improvement(self, value, reference):
        if self.direction == "min":
            return value + self.min_delta < reference
        return value - self.min_delta > reference

    def on_train_begin(self, logs=None):
        self._reset()  # the same instance may be reused across fits

    def get_monitor_value(self, logs):
        logs = logs or {}
        value = logs.get(self.monitor)
        if value is None:
            warnings.warn(
                f"Early stopping conditioned on metric `{self.monitor}` which is not available. "
                f"Available metrics are: {','.join(logs.keys())}",
                stacklevel=2,
            )
        return value

    def on_epoch_end(self, epoch, logs=None):
        current = self.get_monitor_value(logs)
        if current is None or epoch < self.start_from_epoch:
            return
        current = float(current)
        if self.restore_best_weights and self.best_weights is None:
            self.best_weights = self.model.get_weights()
            self.best_epoch = epoch
        self.wait += 1
        if self._is_improvement(current, self.best):
            self.best = current
            self.best_epoch = epoch
            if self.restore_best_weights:
                self.best_weights = self.model.get_weights()
            # Patience restarts only when the value also beats the baseline.
            if self.baseline is None or self._is_improvement(current, self.baseline):
                self.wait = 0
            return
        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        if self.stopped_epoch > 0 and self.verbose > 0:
            _say(f"Epoch {self.stopped_epoch + 1}: early stopping")
        if self.restore_best_weights and self.best_weights is not None:
            if self.verbose > 0:
                _say(f"Restoring model weights from the end of the best epoch: {self.best_epoch + 1}.")
            self.model.set_weights(self.best_weights)


def _check_count(value, name, owner):
    check_nonneg_int(value, name, owner, plain=True)


class ModelCheckpoint(Callback):
    """Save the model (`.keras`, `.h5`) or its weights (`.weights.h5`, `.weights.npz`) every epoch or every
    `save_freq` batches.

    `filepath` may hold `str.format` fields filled from `epoch` (1-based, as Keras) and the logs, e.g.
    `'ckpt/{epoch:02d}-{val_loss:.2f}.keras'`; missing parent folders are created. With `save_best_only` a file is
    written only when `monitor` improves on the best value so far (or on `initial_value_threshold`). Every write is
    atomic (see `cnnlite.saving`), so an interrupted run leaves the previous checkpoint intact.
    """

    def __init__(self, filepath, monitor="val_loss", verbose=0, save_best_only=False, save_weights_only=False,
                 mode="auto", save_freq="epoch", initial_value_threshold=None):
        super().__init__()
        if not isinstance(filepath, (str, os.PathLike)):
            raise TypeError(f"ModelCheckpoint: filepath must be a str or os.PathLike, got {type(filepath).__name__}")
        self.filepath = os.fspath(filepath)
        self.direction = _infer_direction(monitor, mode, "ModelCheckpoint")
        if save_freq != "epoch" and (not is_int(save_freq) or save_freq < 1):
            raise ValueError(
                f"ModelCheckpoint: unrecognized save_freq {save_freq!r}; expected 'epoch' or a positive integer "
                "number of batches"
            )
        if save_weights_only:
            if not self.filepath.endswith((".weights.h5", ".weights.npz")):
                raise ValueError(
                    "ModelCheckpoint: with save_weights_only=True the filepath must end in '.weights.h5' (Keras 3 "
                    f"weights) or '.weights.npz' (cnnlite weights). Received: filepath={self.filepath}"
                )
        elif self.filepath.endswith(".weights.h5") or not self.filepath.endswith((".keras", ".h5")):
            raise ValueError(
                "ModelCheckpoint: the filepath must end in '.keras' (Keras 3) or '.h5' (legacy Keras HDF5); "
                f"'.weights.h5' needs save_weights_only=True. Received: filepath={self.filepath}"
            )
        if initial_value_threshold is not None and not isinstance(initial_value_threshold, numbers.Real):
            raise TypeError(
                f"ModelCheckpoint: initial_value_threshold must be a number or None, got {initial_value_threshold!r}"
            )
        self.monitor = monitor
        self.mode = mode
        self.verbose = verbose
        self.save_best_only = bool(save_best_only)
        self.save_weights_only = bool(save_weights_only)
        self.save_freq = save_freq
        if initial_value_threshold is not None:
            self.best = float(initial_value_threshold)
        else:
            self.best = math.inf if self.direction == "min" else -math.inf
        self._current_epoch = 0
        self._batches_since_save = 0

    def _is_improvement(self, value):
        return value < self.best if self.direction == "min" else value > self.best

    def on_epoch_begin(self, epoch, logs=None):
        self._current_epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self.save_freq == "epoch":
            return
        self._batches_since_save += 1
        if self._batches_since_save >= self.save_freq:
            self._batches_since_save = 0
            self._save(self._current_epoch, batch, logs)

    def on_epoch_end(self, epoch, logs=None):
        if self.save_freq == "epoch":
            self._save(epoch, None, logs)

    def _file_path(self, epoch, batch, logs):
        fields = dict(logs)
        fields["epoch"] = epoch + 1
        if batch is not None and "batch" not in logs:
            fields["batch"] = batch + 1
        try:
            return self.filepath.format(**fields)
        except KeyError as e:
            raise KeyError(
                f'Failed to format this callback filepath: "{self.filepath}". Reason: no value for {e.args[0]} '
                f"(available: epoch, {', '.join(logs)})"
            ) from None

    def _should_save(self, epoch, logs, filepath):
        if not self.save_best_only:
            if self.verbose > 0:
                _say(f"\nEpoch {epoch + 1}: saving model to {filepath}")
            return True
        current = logs.get(self.monitor)
        if current is None:
            warnings.warn(f"Can save best model only with {self.monitor} available, saving anyway.", stacklevel=3)
            return True
        current = _as_scalar(current)
        if current is None:
            warnings.warn(
                f"Can save best model only when `{self.monitor}` is a scalar; falling back to save_best_only=False.",
                stacklevel=3,
            )
            return True
        if self._is_improvement(current):
            if self.verbose > 0:
                _say(f"\nEpoch {epoch + 1}: {self.monitor} improved from {self.best:.5f} to {current:.5f}, "
                      f"saving model to {filepath}")
            self.best = current
            return True
        if self.verbose > 0:
            _say(f"\nEpoch {epoch + 1}: {self.monitor} did not improve from {self.best:.5f}")
        return False

    def _save(self, epoch, batch, logs):
        logs = logs or {}
        filepath = self._file_path(epoch, batch, logs)
        if not self._should_save(epoch, logs, filepath):
            return
        if os.path.isdir(filepath):
            raise IsADirectoryError(
                f"ModelCheckpoint: filepath {filepath!r} is an existing directory; give a file path"
            )
        folder = os.path.dirname(filepath)
        if folder:
            os.makedirs(folder, exist_ok=True)
        if self.save_weights_only:
            self.model.save_weights(filepath)
        else:
            self.model.save(filepath)


class TerminateOnNaN(Callback):
    """Stop training (`model.stop_training = True`) as soon as a batch loss is NaN or infinite.

    With `raise_error=True` a RuntimeError is raised instead, skipping the other callbacks' `on_train_end`.
    """

    def __init__(self, raise_error=False):
        super().__init__()
        self.raise_error = bool(raise_error)

    def on_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is None:
            return
        loss = _as_scalar(loss)
        if loss is not None and not math.isfinite(loss):
            if self.raise_error:
                raise RuntimeError(f"NaN or Inf loss encountered at batch {batch}. Loss value: {loss}.")
            _say(f"Batch {batch}: Invalid loss, terminating training")
            self.model.stop_training = True


class LambdaCallback(Callback):
    """A callback built from plain functions, e.g. `LambdaCallback(on_epoch_end=lambda epoch, logs: ...)`.

    Epoch hooks get `(epoch, logs)`, run hooks `(logs)`, batch hooks `(batch, logs=logs)`. Any hook name of
    `Callback` may be given as a keyword; an unknown name or a non-callable raises.
    """

    def __init__(self, on_epoch_begin=None, on_epoch_end=None, on_train_begin=None, on_train_end=None,
                 on_train_batch_begin=None, on_train_batch_end=None, **kwargs):
        super().__init__()
        hooks = dict(kwargs)
        hooks.update(on_epoch_begin=on_epoch_begin, on_epoch_end=on_epoch_end, on_train_begin=on_train_begin,
                     on_train_end=on_train_end, on_train_batch_begin=on_train_batch_begin,
                     on_train_batch_end=on_train_batch_end)
        for name, function in hooks.items():
            if name not in HOOK_NAMES:
                raise ValueError(
                    f"LambdaCallback: unknown hook {name!r}; expected one of {', '.join(HOOK_NAMES)}"
                )
            if function is None:
                continue
            if not callable(function):
                raise TypeError(f"LambdaCallback: {name} must be callable, got {type(function).__name__}")
            setattr(self, name, function)


# --- pictures while training ---------------------------------------------------------------------------------

def _in_jupyter_kernel():
    """True when this Python runs as a Jupyter kernel (ipykernel), where figures can be shown in place."""
    if "ipykernel" not in sys.modules:
        return False
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None and hasattr(ipython, "get_ipython") else None
    return shell is not None and getattr(shell, "kernel", None) is not None


class LivePlot(Callback):
    """Redraw the loss and accuracy curves, training and validation, after every epoch (`cnnlite.plot.
    plot_history`'s figure), so over- or under-fitting shows while the model trains.

    In a Jupyter notebook the figure is shown below the cell and redrawn in place (one output, updated through an
    IPython display handle). Given `path` (a `.png`), the figure is also written there after every epoch,
    atomically (a temporary file renamed over `path`), so an image viewer or a web page can watch the file.
    Outside a notebook `path` is required.

    path: None or the `.png` file to (re)write; inline: 'auto' (in place when running under ipykernel), True or
    False; figsize: (width, height) in inches. Needs matplotlib (`pip install 'cnnlite[plot]'`).
    After training, `figure` is the last drawn Figure and `history` the recorded curves.
    """

    def __init__(self, path=None, inline="auto", figsize=(10, 4)):
        super().__init__()
        if path is not None:
            if not isinstance(path, (str, os.PathLike)):
                raise TypeError(f"LivePlot: path must be a str, an os.PathLike or None, got {type(path).__name__}")
            path = os.fspath(path)
            if not path.lower().endswith(".png"):
                raise ValueError(f"LivePlot: path must name a .png file, got {path!r}")
        if not (inline == "auto" or isinstance(inline, bool)):
            raise ValueError(f"LivePlot: inline must be 'auto', True or False, got {inline!r}")
        if (not isinstance(figsize, (tuple, list)) or len(figsize) != 2
                or not all(isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(v) and v > 0
                           for v in figsize)):
            raise ValueError(f"LivePlot: figsize must be (width, height), two positive numbers of inches, "
                             f"got {figsize!r}")
        plot._matplotlib("LivePlot")  # an ImportError naming the extra, before any training
        self.path = path
        self.inline = _in_jupyter_kernel() if inline == "auto" else inline
        if self.inline:
            try:
                import IPython.display
            except ImportError as exc:
                raise ImportError("LivePlot(inline=True) shows the figure through IPython, which is not installed; "
                                  "run it in Jupyter (pip install jupyter) or give path= instead") from exc
            self._display = IPython.display
        if not self.inline and self.path is None:
            raise ValueError("LivePlot: not running in a Jupyter kernel, so give path='curves.png' for the figure "
                             "to be written to after every epoch (or inline=True)")
        self.figsize = (float(figsize[0]), float(figsize[1]))
        self.history = {}
        self.figure = None
        self._handle = None
        self._epochs = 0

    def on_train_begin(self, logs=None):
        self.history = {}
        self._epochs = 0
        import matplotlib.figure  # a Figure outside pyplot: no window, and `%matplotlib inline` does not show it twice
        self.figure = matplotlib.figure.Figure(figsize=self.figsize)
        self._handle = None

    def on_epoch_end(self, epoch, logs=None):
        if self.figure is None:  # called outside fit
            self.on_train_begin()
        values = {}
        for key, value in (logs or {}).items():
            try:
                values[key] = float(value)
            except (TypeError, ValueError):
                continue
        for key in values.keys() - self.history.keys():
            self.history[key] = [math.nan] * self._epochs
        for key, series in self.history.items():
            series.append(values.get(key, math.nan))
        self._epochs += 1
        if "loss" not in self.history or not distributed.is_primary():  # only rank 0 draws and writes
            return
        total = (self.params or {}).get("epochs")
        title = f"epoch {epoch + 1}" + (f"/{total}" if is_int(total) else "")
        plot.plot_history(self.history, fig=self.figure, title=title)
        if self.path is not None:
            plot.save_figure(self.figure, self.path)
        if self.inline:
            if self._handle is None:
                self._handle = self._display.display(self.figure, display_id=True)
            else:
                self._handle.update(self.figure)
