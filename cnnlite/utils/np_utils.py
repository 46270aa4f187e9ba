"""NumPy helpers with Keras semantics: `to_categorical` (one-hot labels) and `normalize`."""
import numpy as np

from cnnlite._validation import is_int


def _check_num_classes(num_classes):
    if not is_int(num_classes):
        raise TypeError(f"num_classes must be a positive integer or None, got {num_classes!r}")
    if num_classes < 1:
        raise ValueError(f"num_classes must be a positive integer or None, got {num_classes}")
    return int(num_classes)


def _integer_labels(y):
    """`y` as an int64 array, refusing anything that is not an integer class index."""
    try:
        array = np.asarray(y)
    except ValueError as exc:           # ragged nested lists
        raise ValueError(f"y must be an array of integer class labels: {exc}") from None
    if array.dtype == np.bool_ or np.issubdtype(array.dtype, np.integer):
        return array.astype(np.int64, copy=False)
    if np.issubdtype(array.dtype, np.floating):
        if not np.all(np.isfinite(array)):
            raise ValueError("y must contain integer class labels, found NaN or infinity")
        if np.any(array != np.floor(array)):
            bad = array[array != np.floor(array)].flat[0]
            raise ValueError(f"y must contain integer class labels, found the non-integer value {bad.item()!r}")
        if array.size and (array.max() > np.iinfo(np.int64).max or array.min() < np.iinfo(np.int64).min):
            raise ValueError("y contains labels too large to be class indices")
        return array.astype(np.int64)
    raise TypeError(f"y must be an array of integer class labels, got dtype {array.dtype}")


def to_categorical(y, num_classes=None, dtype="float32"):
    """One-hot encode integer class labels, as Keras does: class axis last.

    y: integer labels of any shape (a list, a scalar or an array; integer-valued floats are accepted).
       A trailing axis of length 1, as in labels of shape (N, 1), is dropped first, so (N, 1) -> (N, num_classes).
    num_classes: number of classes; by default max(y) + 1.
    dtype: dtype of the result (default float32).

    >>> to_categorical([0, 2, 1], 3)
    array([[1., 0., 0.],
           [0., 0., 1.],
           [0., 1., 0.]], dtype=float32)
    """
    labels = _integer_labels(y)
    out_dtype = np.dtype(dtype)
    shape = labels.shape
    if len(shape) > 1 and shape[-1] == 1:
        shape = shape[:-1]
    flat = labels.reshape(-1)
    if num_classes is None:
        if flat.size == 0:
            raise ValueError("cannot infer num_classes from an empty y; pass num_classes")
        num_classes = int(flat.max()) + 1
    num_classes = _check_num_classes(num_classes)
    if flat.size:
        low, high = int(flat.min()), int(flat.max())
        if low < 0 or high >= num_classes:
            bad = low if low < 0 else high
            raise ValueError(f"y contains the label {bad}, outside [0, {num_classes}) for num_classes={num_classes}")
    categorical = np.zeros((flat.size, num_classes), dtype=out_dtype)
    categorical[np.arange(flat.size), flat] = 1
    return categorical.reshape(shape + (num_classes,))


def normalize(x, axis=-1, order=2):
    """Scale `x` so that the `order`-norm along `axis` is 1 (zero vectors stay zero), as keras.utils.normalize."""
    x = np.asarray(x)
    norm = np.atleast_1d(np.linalg.norm(x, order, axis))
    norm[norm == 0] = 1
    return x / np.expand_dims(norm, axis)
