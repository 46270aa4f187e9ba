"""cnnlite.utils: to_categorical against a NumPy reference and Keras's documented behaviour; set_random_seed."""
import random

import numpy as np
import pytest

import cnnlite.utils
from cnnlite.utils import normalize, np_utils, set_random_seed, to_categorical


def _reference_one_hot(labels, num_classes):
    labels = np.asarray(labels)
    return (labels[..., None] == np.arange(num_classes)).astype(np.float32)


@pytest.mark.parametrize("shape", [(0,), (1,), (17,), (4, 5), (2, 3, 4)])
@pytest.mark.parametrize("num_classes", [1, 3, 10])
def test_to_categorical_matches_reference(rng, shape, num_classes):
    y = rng.integers(0, num_classes, size=shape)
    out = to_categorical(y, num_classes)
    assert out.shape == shape + (num_classes,) and out.dtype == np.float32
    np.testing.assert_array_equal(out, _reference_one_hot(y, num_classes))


def test_to_categorical_keras_examples():
    np.testing.assert_array_equal(to_categorical([0, 1, 2, 3], 4), np.eye(4, dtype=np.float32))
    out = to_categorical(np.array([[1], [2]]), 3)            # trailing axis of 1 is squeezed, as Keras does
    assert out.shape == (2, 3)
    np.testing.assert_array_equal(out, [[0, 1, 0], [0, 0, 1]])
    assert to_categorical(np.array([[1]]), 3).shape == (1, 3)
    assert to_categorical(np.array([1]), 3).shape == (1, 3)  # (N,) with N == 1 is not squeezed
    np.testing.assert_array_equal(to_categorical(2, 4), [0, 0, 1, 0])   # a scalar label
    assert to_categorical(np.zeros((2, 1, 3), int), 2).shape == (2, 1, 3, 2)


def test_to_categorical_infers_num_classes_and_accepts_dtypes():
    out = to_categorical(np.array([0, 4, 2], dtype=np.uint8))
    assert out.shape == (3, 5)
    for dtype in (np.int8, np.uint16, np.int32, np.int64, np.uint64):
        np.testing.assert_array_equal(to_categorical(np.array([1, 0], dtype=dtype), 2), [[0, 1], [1, 0]])
    np.testing.assert_array_equal(to_categorical(np.array([1.0, 0.0]), 2), [[0, 1], [1, 0]])
    np.testing.assert_array_equal(to_categorical(np.array([True, False])), [[0, 1], [1, 0]])
    assert to_categorical([1, 0], 2, dtype="uint8").dtype == np.uint8
    assert to_categorical([1, 0], 2, dtype=np.float64).dtype == np.float64
    assert to_categorical([1], np.int64(3)).shape == (1, 3)


def test_np_utils_matches_old_keras_import():
    y = np.array([5, 0, 4, 1, 9], dtype=np.uint8)
    out = np_utils.to_categorical(y, 10)
    assert out.shape == (5, 10) and out.dtype == np.float32
    assert out.argmax(axis=1).tolist() == [5, 0, 4, 1, 9]
    assert out.sum() == 5
    assert cnnlite.utils.to_categorical is np_utils.to_categorical


@pytest.mark.parametrize("y, num_classes, error, message", [
    ([0, 3], 3, ValueError, r"label 3, outside \[0, 3\)"),
    ([0, -1], 3, ValueError, r"label -1, outside \[0, 3\)"),
    ([0.5, 1], 3, ValueError, "non-integer value 0.5"),
    ([np.nan], 3, ValueError, "NaN or infinity"),
    ([np.inf], None, ValueError, "NaN or infinity"),
    (["a", "b"], 3, TypeError, "integer class labels"),
    ([[0, 1], [2]], 3, ValueError, "integer class labels"),
    ([], None, ValueError, "cannot infer num_classes"),
    ([0, 1], 0, ValueError, "num_classes must be a positive integer"),
    ([0, 1], -2, ValueError, "num_classes must be a positive integer"),
    ([0, 1], 2.0, TypeError, "num_classes must be a positive integer"),
    ([0, 1], True, TypeError, "num_classes must be a positive integer"),
    ([0, 1], "10", TypeError, "num_classes must be a positive integer"),
])
def test_to_categorical_errors(y, num_classes, error, message):
    with pytest.raises(error, match=message):
        to_categorical(y, num_classes)


def test_to_categorical_bad_dtype():
    with pytest.raises(TypeError):
        to_categorical([0, 1], 2, dtype="not-a-dtype")


def test_to_categorical_empty_with_num_classes():
    assert to_categorical(np.zeros((0,), int), 4).shape == (0, 4)


def test_normalize(rng):
    x = rng.standard_normal((5, 4))
    x[2] = 0
    out = normalize(x)
    norms = np.linalg.norm(out, axis=-1)
    np.testing.assert_allclose(norms[[0, 1, 3, 4]], 1.0)
    assert norms[2] == 0
    np.testing.assert_allclose(np.abs(normalize(x, axis=0, order=1)).sum(axis=0), 1.0)


def test_set_random_seed_repeats_python_and_numpy():
    set_random_seed(42)
    first = (random.random(), np.random.rand(3).tolist(), np.random.randint(0, 2**31))
    set_random_seed(42)
    again = (random.random(), np.random.rand(3).tolist(), np.random.randint(0, 2**31))
    assert first == again
    set_random_seed(np.int64(43))
    assert (random.random(), np.random.rand(3).tolist(), np.random.randint(0, 2**31)) != first
    set_random_seed(0)
    set_random_seed(2**32 - 1)


@pytest.mark.parametrize("seed, error", [
    (-1, ValueError), (2**32, ValueError), (1.5, TypeError), (1.0, TypeError), ("1", TypeError),
    (None, TypeError), (True, TypeError), ([1], TypeError),
])
def test_set_random_seed_validates(seed, error):
    with pytest.raises(error, match="seed must be an integer"):
        set_random_seed(seed)
