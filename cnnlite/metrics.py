"""Metrics with Keras's names. 'accuracy' / 'acc' in compile resolve, as in Keras, to categorical, sparse
categorical or binary accuracy depending on the loss and the output width.

Metric objects accumulate per-sample values: `update_state(y_true, y_pred)`, `result()`, `reset_state()`. The
per-sample functions (`categorical_accuracy`, ...) are vectorised NumPy.
"""
import numpy as np

from cnnlite import _kernels
from cnnlite._registry import Registry


def _labels(y_true):
    y = np.asarray(y_true)
    return y.reshape(-1) if (y.ndim == 2 and y.shape[1] == 1) else y


def categorical_accuracy(y_true, y_pred):
    """1.0 where argmax(y_true) == argmax(y_pred) over the last axis."""
    return (np.argmax(y_true, axis=-1) == np.argmax(y_pred, axis=-1)).astype(np.float32)


def sparse_categorical_accuracy(y_true, y_pred):
    """1.0 where the integer label equals argmax(y_pred)."""
    return (_labels(y_true).astype(np.int64) == np.argmax(y_pred, axis=-1)).astype(np.float32)


def binary_accuracy(y_true, y_pred, threshold=0.5):
    """Mean over the last axis of (y_true == (y_pred > threshold))."""
    y_true = np.asarray(y_true, dtype=np.float32)
    return np.mean(y_true == (np.asarray(y_pred) > threshold), axis=-1).astype(np.float32)


def mean_squared_error(y_true, y_pred):
    return np.mean(np.square(np.asarray(y_pred, np.float32) - np.asarray(y_true, np.float32)), axis=-1)


def mean_absolute_error(y_true, y_pred):
    return np.mean(np.abs(np.asarray(y_pred, np.float32) - np.asarray(y_true, np.float32)), axis=-1)


mse, mae = mean_squared_error, mean_absolute_error


class Metric:
    """A running mean of per-sample values of `fn`."""

    fn = None

    def __init__(self, name=None, dtype=None):
        self.name = name or self._default_name
        self.reset_state()

    def reset_state(self):
        self.total = 0.0
        self.count = 0

    reset_states = reset_state

    def values(self, y_true, y_pred):
        return type(self).fn(y_true, y_pred)

    def update_state(self, y_true, y_pred, sample_weight=None):
        if sample_weight is not None:
            raise NotImplementedError(f"{self.name}: sample_weight is not supported")
        v = np.asarray(self.values(y_true, y_pred), dtype=np.float64)
        self.total += float(v.sum())
        self.count += int(v.size)

    def result(self):
        return self.total / self.count if self.count else 0.0

    def get_config(self):
        return {"name": self.name}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def _plain_batch(a):
    return isinstance(a, np.ndarray) and a.dtype == np.float32 and a.ndim == 2 and a.flags.c_contiguous


class CategoricalAccuracy(Metric):
    _default_name = "categorical_accuracy"
    fn = staticmethod(categorical_accuracy)

    def update_state(self, y_true, y_pred, sample_weight=None):
        # A training batch (float32 (n, k) targets and predictions) is counted in one kernel pass: the same count
        # as the per-sample values' sum, without the argmax and comparison arrays.
        if (sample_weight is None and _plain_batch(y_true) and _plain_batch(y_pred)
                and y_true.shape == y_pred.shape and y_true.shape[1] >= 1):
            self.total += float(_kernels.categorical_matches(y_true, y_pred))
            self.count += y_true.shape[0]
            return
        super().update_state(y_true, y_pred, sample_weight)


class SparseCategoricalAccuracy(Metric):
    _default_name = "sparse_categorical_accuracy"
    fn = staticmethod(sparse_categorical_accuracy)


class BinaryAccuracy(Metric):
    _default_name = "binary_accuracy"

    def __init__(self, name=None, dtype=None, threshold=0.5):
        self.threshold = float(threshold)
        super().__init__(name, dtype)

    def values(self, y_true, y_pred):
        return binary_accuracy(y_true, y_pred, self.threshold)

    def get_config(self):
        return {"name": self.name, "threshold": self.threshold}


class MeanSquaredError(Metric):
    _default_name = "mean_squared_error"
    fn = staticmethod(mean_squared_error)


class MeanAbsoluteError(Metric):
    _default_name = "mean_absolute_error"
    fn = staticmethod(mean_absolute_error)


REGISTRY = Registry("metric")
REGISTRY.register(CategoricalAccuracy, aliases=("categorical_accuracy",))
REGISTRY.register(SparseCategoricalAccuracy, aliases=("sparse_categorical_accuracy",))
REGISTRY.register(BinaryAccuracy, aliases=("binary_accuracy",))
REGISTRY.register(MeanSquaredError, aliases=("mean_squared_error", "mse"))
REGISTRY.register(MeanAbsoluteError, aliases=("mean_absolute_error", "mae"))
_BY_FUNCTION = ((categorical_accuracy, CategoricalAccuracy), (sparse_categorical_accuracy, SparseCategoricalAccuracy),
                (binary_accuracy, BinaryAccuracy), (mean_squared_error, MeanSquaredError),
                (mean_absolute_error, MeanAbsoluteError))
ACCURACY_NAMES = ("accuracy", "acc")


def _unknown(identifier):
    return ValueError(f"Unknown metric: {identifier!r}. Supported: 'accuracy', 'acc', {REGISTRY.names('aliases')} "
                      f"or an instance of {REGISTRY.names('classes')}")


def resolve(identifier, loss, output_width):
    """A Metric instance for a compile() metric identifier. 'accuracy'/'acc' keep their spelling as the name and
    pick the accuracy that fits `loss` and the output width (Keras's rule)."""
    if isinstance(identifier, Metric):
        return identifier
    if isinstance(identifier, str) and identifier in ACCURACY_NAMES:
        if getattr(loss, "sparse", False):
            return SparseCategoricalAccuracy(name=identifier)
        if output_width == 1:
            return BinaryAccuracy(name=identifier)
        return CategoricalAccuracy(name=identifier)
    if REGISTRY.find(identifier, which="aliases") is not None:
        return REGISTRY.find(identifier, which="aliases")(name=identifier)
    if isinstance(identifier, type) and REGISTRY.owns(identifier):
        return identifier()
    for fn, cls in _BY_FUNCTION:
        if identifier is fn:
            return cls(name=fn.__name__)
    raise _unknown(identifier)


def check_identifier(identifier):
    """Raise ValueError now (at compile time) for metric identifiers `resolve` would reject."""
    if isinstance(identifier, Metric) or (isinstance(identifier, str) and
                                          (identifier in ACCURACY_NAMES or REGISTRY.find(identifier, "aliases"))):
        return
    if isinstance(identifier, type) and REGISTRY.owns(identifier):
        return
    if any(identifier is fn for fn, _ in _BY_FUNCTION):
        return
    raise _unknown(identifier)


def get(identifier):
    if isinstance(identifier, str) and identifier in ACCURACY_NAMES:
        return CategoricalAccuracy(name=identifier)
    return resolve(identifier, None, None)
