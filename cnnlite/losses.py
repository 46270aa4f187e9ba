"""Losses: categorical_crossentropy, sparse_categorical_crossentropy, mean_squared_error (Keras names).

Inside training each loss object runs one kernel: when the model ends in softmax (or the loss has
`from_logits=True`) cross-entropy is the fused `softmax_xent` kernel on the logits, which returns the batch loss,
the probabilities and d(logits) at once. The module-level functions compute per-sample losses in NumPy, as
Keras's functions do, for use outside training.
"""
import numpy as np

from cnnlite import _kernels
from cnnlite._registry import Registry

_EPSILON = 1e-7


class Loss:
    """Base class. `model_step(out, y, out_is_logits)` -> (batch mean loss, d(out), probabilities or outputs)."""

    fusable_with_softmax = False  # True when a final softmax may be folded into this loss
    from_logits = False

    def __init__(self, name=None, reduction="sum_over_batch_size"):
        if reduction not in ("sum_over_batch_size", "auto"):
            raise NotImplementedError(f"{type(self).__name__}: only reduction='sum_over_batch_size' is supported, "
                                      f"received reduction={reduction!r}")
        self.name = name or self._default_name
        self.reduction = reduction

    def __call__(self, y_true, y_pred):
        """Batch-mean loss of NumPy arrays (a Python float)."""
        y_pred = np.ascontiguousarray(y_pred, dtype=np.float32)
        y_true = self.prepare_targets(y_true, y_pred.shape)
        return self.model_step(y_pred, y_true, self.from_logits, need_grad=False)[0]

    def get_config(self):
        return {"name": self.name, "reduction": self.reduction}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


class CategoricalCrossentropy(Loss):
    _default_name = "categorical_crossentropy"
    fusable_with_softmax = True
    sparse = False

    def __init__(self, from_logits=False, label_smoothing=0.0, name=None, reduction="sum_over_batch_size",
                 axis=-1):
        super().__init__(name, reduction)
        if not isinstance(from_logits, (bool, np.bool_)):
            raise ValueError(f"{type(self).__name__}: `from_logits` must be a bool, received {from_logits!r}")
        if not 0.0 <= label_smoothing <= 1.0:
            raise ValueError(f"{type(self).__name__}: `label_smoothing` must be in [0, 1], "
                             f"received label_smoothing={label_smoothing!r}")
        if axis != -1:
            raise NotImplementedError(f"{type(self).__name__}: only axis=-1 is supported, received axis={axis!r}")
        self.from_logits = bool(from_logits)
        self.label_smoothing = float(label_smoothing)

    def prepare_targets(self, y, out_shape):
        y = np.ascontiguousarray(y, dtype=np.float32)
        if y.shape != tuple(out_shape):
            raise ValueError(f"{self.name}: targets of shape {y.shape} do not match predictions of shape "
                             f"{tuple(out_shape)}")
        return y

    def _smoothed(self, y):
        if self.label_smoothing == 0.0:
            return y
        k = y.shape[-1]
        return (y * (1.0 - self.label_smoothing) + self.label_smoothing / k).astype(np.float32)

    def model_step(self, out, y, out_is_logits, need_grad=True):
        y = self._smoothed(y)
        if out_is_logits:
            loss, probs, dlogits = _kernels.softmax_xent(out, y)
            return float(loss), dlogits, probs
        loss = _kernels.xent_forward(out, y)
        return float(loss), (_kernels.xent_backward(out, y) if need_grad else None), out

    def get_config(self):
        config = super().get_config()
        config.update(from_logits=self.from_logits, label_smoothing=self.label_smoothing)
        return config


class SparseCategoricalCrossentropy(Loss):
    _default_name = "sparse_categorical_crossentropy"
    fusable_with_softmax = True
    sparse = True

    def __init__(self, from_logits=False, name=None, reduction="sum_over_batch_size", ignore_class=None):
        super().__init__(name, reduction)
        if not isinstance(from_logits, (bool, np.bool_)):
            raise ValueError(f"{type(self).__name__}: `from_logits` must be a bool, received {from_logits!r}")
        if ignore_class is not None:
            raise NotImplementedError(f"{type(self).__name__}: `ignore_class` is not supported, "
                                      f"received ignore_class={ignore_class!r}")
        self.from_logits = bool(from_logits)

    def prepare_targets(self, y, out_shape):
        return sparse_labels(y, out_shape[-1], self.name)

    def model_step(self, out, labels, out_is_logits, need_grad=True):
        if out_is_logits:
            loss, probs, dlogits = _kernels.sparse_softmax_xent(out, labels)
            return float(loss), dlogits, probs
        onehot = np.zeros(out.shape, np.float32)
        onehot[np.arange(out.shape[0]), labels] = 1.0
        loss = _kernels.xent_forward(out, onehot)
        return float(loss), (_kernels.xent_backward(out, onehot) if need_grad else None), out

    def get_config(self):
        config = super().get_config()
        config["from_logits"] = self.from_logits
        return config


class MeanSquaredError(Loss):
    _default_name = "mean_squared_error"
    sparse = False

    def prepare_targets(self, y, out_shape):
        y = np.ascontiguousarray(y, dtype=np.float32)
        if y.ndim == len(out_shape) - 1 and out_shape[-1] == 1:
            y = y.reshape(y.shape + (1,))
        if y.shape != tuple(out_shape):
            raise ValueError(f"{self.name}: targets of shape {y.shape} do not match predictions of shape "
                             f"{tuple(out_shape)}")
        return y

    def model_step(self, out, y, out_is_logits, need_grad=True):
        loss = _kernels.mse_forward(out, y)
        return float(loss), (_kernels.mse_backward(out, y) if need_grad else None), out


def sparse_labels(y, num_classes, owner):
    """Integer class ids (n,) int64 from (n,) or (n, 1) labels of any numeric dtype; checks the range."""
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y.reshape(-1)
    if y.ndim != 1:
        raise ValueError(f"{owner}: expects integer class labels of shape (n,) or (n, 1), received shape {y.shape}"
                         + (" (one-hot labels go with 'categorical_crossentropy')" if y.ndim == 2 else ""))
    if y.dtype.kind not in "iuf":
        raise ValueError(f"{owner}: labels must be integers, received dtype {y.dtype}")
    if y.dtype.kind == "f":
        if not np.all(np.isfinite(y)) or not np.all(y == np.round(y)):
            raise ValueError(f"{owner}: labels must be integer class ids, received non-integer values")
    labels = np.ascontiguousarray(y, dtype=np.int64)
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(f"{owner}: labels must lie in [0, {num_classes}) for {num_classes} output units, "
                         f"received labels in [{labels.min()}, {labels.max()}]")
    return labels


# ----- Keras's per-sample loss functions (NumPy, float32 in, float32 out) ---------------------------------------
def categorical_crossentropy(y_true, y_pred, from_logits=False, label_smoothing=0.0):
    y_true = np.asarray(y_true, dtype=np.float32)
    y_pred = np.asarray(y_pred, dtype=np.float32)
    if label_smoothing:
        y_true = y_true * (1.0 - label_smoothing) + label_smoothing / y_true.shape[-1]
    if from_logits:
        shifted = y_pred - y_pred.max(axis=-1, keepdims=True)
        log_p = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
        return (-(y_true * log_p).sum(axis=-1)).astype(np.float32)
    p = y_pred / y_pred.sum(axis=-1, keepdims=True)
    p = np.clip(p, _EPSILON, 1.0 - _EPSILON)
    return (-(y_true * np.log(p)).sum(axis=-1)).astype(np.float32)


def sparse_categorical_crossentropy(y_true, y_pred, from_logits=False):
    y_pred = np.asarray(y_pred, dtype=np.float32)
    labels = sparse_labels(y_true, y_pred.shape[-1], "sparse_categorical_crossentropy")
    onehot = np.zeros(y_pred.shape, np.float32)
    onehot[np.arange(len(labels)), labels] = 1.0
    return categorical_crossentropy(onehot, y_pred, from_logits=from_logits)


def mean_squared_error(y_true, y_pred):
    y_true = np.asarray(y_true, dtype=np.float32)
    y_pred = np.asarray(y_pred, dtype=np.float32)
    return np.mean(np.square(y_pred - y_true), axis=-1).astype(np.float32)


mse = MSE = mean_squared_error

REGISTRY = Registry("loss function")
REGISTRY.register(CategoricalCrossentropy, aliases=("categorical_crossentropy",))
REGISTRY.register(SparseCategoricalCrossentropy, aliases=("sparse_categorical_crossentropy",))
REGISTRY.register(MeanSquaredError, aliases=("mean_squared_error", "mse", "MSE"))
_BY_FUNCTION = {categorical_crossentropy: CategoricalCrossentropy,
                sparse_categorical_crossentropy: SparseCategoricalCrossentropy,
                mean_squared_error: MeanSquaredError}


def serialize(loss):
    return REGISTRY.serialize(loss)


def deserialize(config):
    if isinstance(config, str):
        return get(config)
    cls = REGISTRY.find(config.get("class_name"), which="classes") if isinstance(config, dict) else None
    if cls is None:
        raise ValueError(f"Unknown loss config: {config!r}. Known classes: {REGISTRY.names('classes')}")
    return cls.from_config(config.get("config", {}))


def get(identifier):
    """A name ('categorical_crossentropy', 'sparse_categorical_crossentropy', 'mse'), a function of this module,
    a config dict or a Loss instance -> a Loss instance."""
    if isinstance(identifier, Loss):
        return identifier
    if isinstance(identifier, str):
        return REGISTRY.get(identifier, which="aliases", label="Supported")()
    if isinstance(identifier, dict):
        return deserialize(identifier)
    if isinstance(identifier, type) and REGISTRY.owns(identifier):
        return identifier()
    for fn, cls in _BY_FUNCTION.items():
        if identifier is fn:
            return cls()
    raise ValueError(f"Could not interpret loss identifier: {identifier!r}. Supported: {REGISTRY.names('aliases')}, "
                     f"or an instance of {REGISTRY.names('classes')}")
