"""categorical_matches (cpp/metrics.h) against NumPy's argmax, and CategoricalAccuracy's kernel path against its
per-sample values."""
import numpy as np
import pytest

from cnnlite import _kernels as K
from cnnlite import metrics


def numpy_matches(y_true, y_pred):
    return int(np.sum(np.argmax(y_true, axis=-1) == np.argmax(y_pred, axis=-1)))


def scores(rng, n, k, specials):
    a = rng.standard_normal((n, k)).astype(np.float32)
    if specials:
        cells = rng.random((n, k))
        a[cells < 0.05] = np.nan
        a[(cells >= 0.05) & (cells < 0.08)] = np.inf
        a[(cells >= 0.08) & (cells < 0.11)] = -np.inf
        a[(cells >= 0.11) & (cells < 0.14)] = -0.0
        a[(cells >= 0.14) & (cells < 0.17)] = 0.0
        # ties: a row's maximum copied to a later column
        rows = np.flatnonzero(rng.random(n) < 0.2)
        if k > 1:
            a[rows, -1] = a[rows].max(axis=1, initial=-np.inf)
    return a


@pytest.mark.parametrize("n", [0, 1, 7, 8, 9, 17, 1000])
@pytest.mark.parametrize("k", [1, 2, 10, 33])
@pytest.mark.parametrize("specials", [False, True])
def test_categorical_matches_is_numpys_argmax_count(rng, n, k, specials):
    y_true = scores(rng, n, k, specials)
    y_pred = scores(rng, n, k, specials)
    y_pred[: n // 3] = y_true[: n // 3]           # some rows agree
    assert K.categorical_matches(y_true, y_pred) == numpy_matches(y_true, y_pred)


def test_nan_is_the_maximum_and_ties_keep_the_first_index():
    y_true = np.array([[0, 0, 1], [1, 1, 0], [0, 1, 0], [0.0, -0.0, 0]], np.float32)
    y_pred = np.array([[1, np.nan, 5], [3, 3, 3], [np.nan, np.nan, 9], [-0.0, 0.0, -1]], np.float32)
    # argmax: true (2, 0, 1, 0), pred (1, 0, 0, 0)
    assert K.categorical_matches(y_true, y_pred) == 2


def test_categorical_accuracy_counts_like_its_per_sample_values(rng):
    y_true = np.eye(10, dtype=np.float32)[rng.integers(0, 10, 1000)]
    y_pred = scores(rng, 1000, 10, True)
    fast, generic = metrics.CategoricalAccuracy(), metrics.CategoricalAccuracy()
    for lo, hi in ((0, 1000), (0, 999), (3, 10)):
        fast.update_state(y_true[lo:hi], y_pred[lo:hi])
        generic.update_state(y_true[lo:hi].astype(np.float64), y_pred[lo:hi].astype(np.float64))
    fast.update_state(y_true[:5], np.asfortranarray(y_pred[:5]))   # not C-contiguous: the per-sample path
    generic.update_state(y_true[:5].astype(np.float64), y_pred[:5].astype(np.float64))
    assert (fast.total, fast.count) == (generic.total, generic.count)
    assert fast.result() == generic.result()
    expected = sum(numpy_matches(y_true[a:b], y_pred[a:b]) for a, b in ((0, 1000), (0, 999), (3, 10), (0, 5)))
    assert fast.total == expected and fast.count == 1000 + 999 + 7 + 5


def test_bad_arguments_name_themselves():
    good = np.zeros((4, 3), np.float32)
    with pytest.raises(ValueError, match="y_true must have at least one column"):
        K.categorical_matches(np.zeros((4, 0), np.float32), np.zeros((4, 0), np.float32))
    with pytest.raises(ValueError, match="y_true and y_pred must have the same shape"):
        K.categorical_matches(good, np.zeros((5, 3), np.float32))
    with pytest.raises(TypeError, match="y_pred must have dtype float32"):
        K.categorical_matches(good, good.astype(np.float64))
