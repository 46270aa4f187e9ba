"""Converts user data once per call (any numeric dtype, lists, Fortran order, strided views -> C-contiguous
float32) and slices it into batches without per-sample Python."""
import numpy as np

from cnnlite import _kernels
from cnnlite._validation import check_nonneg_int, check_positive_int, is_bool, is_int

__all__ = ["check_batch_size", "check_nonneg_int", "check_verbose", "to_float32", "check_input", "same_length",
           "prepare_targets", "Batcher"]


def check_batch_size(batch_size, owner):
    """None -> 32 (Keras's default), else a positive integer."""
    if batch_size is None:
        return 32
    return check_positive_int(batch_size, "batch_size", owner)


def check_verbose(verbose, owner):
    if verbose == "auto":
        return 1
    if is_bool(verbose):
        return int(verbose)
    if is_int(verbose) and verbose in (0, 1, 2):
        return int(verbose)
    raise ValueError(f"{owner}: `verbose` must be 'auto', 0, 1 or 2, received verbose={verbose!r}")


def to_float32(data, name):
    """A C-contiguous float32 array of `data` (a copy only when needed); non-numeric data raises TypeError."""
    if data is None:
        raise ValueError(f"`{name}` is required, received None")
    if hasattr(data, "__next__") or (hasattr(data, "__iter__") and not hasattr(data, "__len__")):
        raise TypeError(f"`{name}` must be an array-like of numbers (NumPy array or nested lists); generators and "
                        f"datasets are not supported, received {type(data).__name__}")
    try:
        arr = np.asarray(data)
    except (ValueError, TypeError) as err:
        raise TypeError(f"`{name}` must be an array-like of numbers, received {type(data).__name__}: {err}") from None
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"`{name}` must hold numbers (bool, integer or float), received dtype {arr.dtype}")
    if arr.ndim == 0:
        raise ValueError(f"`{name}` must be a batch of samples (at least 1-D), received a scalar")
    return np.ascontiguousarray(arr, dtype=np.float32)


def check_input(model_name, expected, x, name="x"):
    """`x.shape[1:]` must equal the model's input shape (None entries match anything)."""
    expected = tuple(expected)
    ok = x.ndim == len(expected) and all(e is None or e == d for e, d in zip(expected[1:], x.shape[1:]))
    if not ok:
        raise ValueError(f'Input 0 of model "{model_name}" is incompatible: expected shape {expected}, '
                         f"found shape (None, {', '.join(map(str, x.shape[1:]))}) in `{name}` (full shape "
                         f"{x.shape})")


def same_length(x, y, x_name="x", y_name="y"):
    if len(x) != len(y):
        raise ValueError(f"Data cardinality is ambiguous: {x_name} has {len(x)} samples but {y_name} has {len(y)}. "
                         f"Make sure all arrays contain the same number of samples")


def prepare_targets(loss, y, output_shape, y_name="y"):
    """Targets in the form the loss kernels take: float32 (n, k) for categorical/mse, int64 (n,) for sparse."""
    if y is None:
        raise ValueError(f"`{y_name}` is required to compute the loss, received None")
    if getattr(loss, "sparse", False):
        return loss.prepare_targets(y, output_shape)
    y = to_float32(y, y_name)
    units = output_shape[-1]
    if getattr(loss, "fusable_with_softmax", False):
        if y.ndim == len(output_shape) - 1 or (y.ndim == len(output_shape) and y.shape[-1] == 1 and units > 1):
            raise ValueError(f"{loss.name} expects one-hot targets of shape (n, {units}), received `{y_name}` of shape "
                             f"{y.shape}: convert the labels with cnnlite.utils.to_categorical, or use "
                             f"loss='sparse_categorical_crossentropy' for integer labels")
    if y.ndim == len(output_shape) and y.shape[-1] != units:
        raise ValueError(f"Label width {y.shape[-1]} of `{y_name}` (shape {y.shape}) does not match the model's output "
                         f"of {units} units (output shape {tuple(output_shape)})")
    return loss.prepare_targets(y, (len(y),) + tuple(output_shape[1:]))


class Batcher:
    """Yields (start, stop, arrays batch) over arrays of equal length: contiguous views when not shuffled, else
    gathers rows of a shuffled index order into buffers reused across batches and epochs (`_kernels.take_rows`:
    prefetched rows, blocks copied in parallel; a shuffled MNIST batch waits on memory for ~0.5 ms at 1 thread)."""

    def __init__(self, arrays, batch_size):
        self.arrays = [np.ascontiguousarray(a) for a in arrays]  # take_rows reads rows as raw bytes
        self.batch_size = batch_size
        self.n = len(arrays[0])
        self._buffers = None

    @property
    def steps(self):
        return -(-self.n // self.batch_size)

    def batches(self, order=None):
        if order is None:
            for start in range(0, self.n, self.batch_size):
                stop = min(start + self.batch_size, self.n)
                yield start, stop, [a[start:stop] for a in self.arrays]
            return
        order = np.ascontiguousarray(order, dtype=np.int64)
        if self._buffers is None:
            self._buffers = [np.empty((min(self.batch_size, self.n),) + a.shape[1:], a.dtype) for a in self.arrays]
        for start in range(0, self.n, self.batch_size):
            stop = min(start + self.batch_size, self.n)
            idx = order[start:stop]
            yield start, stop, [_kernels.take_rows(a, idx, buf[:stop - start])
                                for a, buf in zip(self.arrays, self._buffers)]
