"""Output sizes and TensorFlow-style padding for convolution and pooling windows."""
import math

from cnnlite._validation import is_int


def normalize_tuple(value, n, name, owner):
    """An int or a sequence of `n` positive ints -> tuple of `n` ints; raise ValueError naming `name`."""
    if isinstance(value, bool):
        raise ValueError(f"{owner}: `{name}` must be an int or a tuple of {n} positive ints, received {name}={value!r}")
    if is_int(value):
        items = (int(value),) * n
    else:
        try:
            items = tuple(value)
        except TypeError:
            raise ValueError(f"{owner}: `{name}` must be an int or a tuple of {n} positive ints, "
                             f"received {name}={value!r}") from None
        if len(items) != n or not all(is_int(v) for v in items):
            raise ValueError(f"{owner}: `{name}` must be an int or a tuple of {n} positive ints, "
                             f"received {name}={value!r}")
        items = tuple(int(v) for v in items)
    if any(v <= 0 for v in items):
        raise ValueError(f"{owner}: `{name}` must contain only positive ints, received {name}={value!r}")
    return items


def normalize_padding(value, owner):
    if not isinstance(value, str) or value.lower() not in ("valid", "same"):
        raise ValueError(f"{owner}: `padding` must be 'valid' or 'same', received padding={value!r}")
    return value.lower()


def output_length(size, window, stride, padding):
    """Output length along one axis; None stays None (unknown size). May be <= 0 for too-small valid inputs."""
    if size is None:
        return None
    if padding == "same":
        return math.ceil(size / stride)
    return (size - window) // stride + 1 if size >= window else 0


def same_pads(size, window, stride):
    """TensorFlow 'same' padding along one axis: (before, after)."""
    out = output_length(size, window, stride, "same")
    total = max((out - 1) * stride + window - size, 0)
    return total // 2, total - total // 2


def pads_2d(h, w, kh, kw, sh, sw, padding):
    """(pad_top, pad_bottom, pad_left, pad_right) for a 2-D window."""
    if padding == "valid":
        return 0, 0, 0, 0
    top, bottom = same_pads(h, kh, sh)
    left, right = same_pads(w, kw, sw)
    return top, bottom, left, right
