"""partials_sum: the ordered sum of a batch's per-shard weight-gradient partials (cpp/reduce.h)."""
import numpy as np
import pytest

import cnnlite
from cnnlite import _kernels as K


def _in_order(parts):
    total = parts[0].copy()
    for p in parts[1:]:
        total += p  # float32 + float32, element by element: the order the kernel promises
    return total


@pytest.mark.parametrize("shape", [(1, 5), (2, 3), (12, 3, 3, 16, 32), (7, 100003), (3, 0)])
def test_partials_sum_adds_in_order_bitwise(rng, shape):
    parts = (rng.standard_normal(shape) * 10.0 ** rng.integers(-4, 5, shape)).astype(np.float32)
    total = K.partials_sum(parts)
    assert total.shape == shape[1:] and total.dtype == np.float32
    np.testing.assert_array_equal(total, _in_order(parts))
    # and it is the sum: within the float32 rounding bound of n additions, relative to the magnitudes added
    exact = parts.astype(np.float64).sum(axis=0)
    bound = len(parts) * np.finfo(np.float32).eps * np.abs(parts).astype(np.float64).sum(axis=0)
    assert np.all(np.abs(total - exact) <= bound)


def test_partials_sum_order_matters_and_is_kept(rng):
    # 1 + 1e8 - 1e8 in float32 depends on the order: the kernel must not reassociate.
    parts = np.array([[1.0], [1e8], [-1e8]], np.float32)
    assert K.partials_sum(parts)[0] == np.float32(0.0)
    assert K.partials_sum(parts[::-1].copy())[0] == np.float32(1.0)


def test_partials_sum_is_bitwise_identical_for_1_to_4_threads(rng):
    parts = rng.standard_normal((9, 300001)).astype(np.float32)
    old = cnnlite.get_num_threads()
    try:
        results = []
        for n in (1, 2, 3, 4):
            cnnlite.set_num_threads(n)
            results.append(K.partials_sum(parts))
    finally:
        cnnlite.set_num_threads(old)
    for r in results[1:]:
        np.testing.assert_array_equal(r, results[0])
