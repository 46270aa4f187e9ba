"""Reduction shards in the kernels: partials_sum (the ordered sum of a batch's per-shard weight-gradient partials,
cpp/reduce.h) and the sharded weight-gradient bindings (one partial per shard, cpp/conv2d.h, cpp/dense.h)."""
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


# The sharded weight-gradient bindings: each shard's gradient has the bits of the plain binding on those rows alone,
# whether the shards run side by side (as many shards as threads or more) or one after the other.
CONV_CASES = [((23, 9, 9, 3), (3, 3, 3, 8), "gemm"), ((23, 12, 12, 16), (3, 3, 16, 8), "winograd"),
              ((23, 10, 10, 1), (3, 3, 1, 8), "direct"), ((9, 8, 7, 4), (2, 3, 4, 5), "gemm")]


@pytest.mark.parametrize("threads", [1, 2, 3])
@pytest.mark.parametrize("x_shape, w_shape, algo", CONV_CASES, ids=[c[2] + str(c[0]) for c in CONV_CASES])
@pytest.mark.parametrize("bounds", [(0, 23), (0, 5, 11, 23), (0, 1, 2, 3, 4, 9, 15, 20, 23)], ids=["1", "3", "8"])
def test_conv_shards_equal_the_binding_on_each_shards_rows(rng, threads, x_shape, w_shape, algo, bounds):
    n = x_shape[0]
    bounds = [min(b, n) for b in bounds]
    bounds = sorted(set(bounds))
    x = rng.standard_normal(x_shape).astype(np.float32)
    oh, ow = x_shape[1] - w_shape[0] + 1, x_shape[2] - w_shape[1] + 1
    dy = rng.standard_normal((n, oh, ow, w_shape[3])).astype(np.float32)
    gate = np.maximum(rng.standard_normal(dy.shape), 0).astype(np.float32)
    old = cnnlite.get_num_threads()
    try:
        cnnlite.set_num_threads(threads)
        dw, db = K.conv2d_backward_weights_shards(dy, x, w_shape[0], w_shape[1], 1, 1, 0, 0, 0, 0, bounds, y=gate,
                                                  algo=algo)
        for s, (a, b) in enumerate(zip(bounds, bounds[1:])):
            ref_w, ref_b = K.conv2d_backward_weights(dy[a:b].copy(), x[a:b].copy(), w_shape[0], w_shape[1], 1, 1,
                                                     0, 0, 0, 0, y=gate[a:b].copy(), algo=algo)
            np.testing.assert_array_equal(dw[s], ref_w)
            np.testing.assert_array_equal(db[s], ref_b)
    finally:
        cnnlite.set_num_threads(old)
    # and the shards add up to the whole batch's gradient, to float32 rounding
    whole_w, whole_b = K.conv2d_backward_weights(dy, x, w_shape[0], w_shape[1], 1, 1, 0, 0, 0, 0, y=gate, algo=algo)
    np.testing.assert_allclose(K.partials_sum(dw), whole_w, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(K.partials_sum(db), whole_b, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("threads", [1, 2, 3])
@pytest.mark.parametrize("relu", [False, True])
def test_dense_shards_equal_the_binding_on_each_shards_rows(rng, threads, relu):
    x = rng.standard_normal((150, 33)).astype(np.float32)
    dy = rng.standard_normal((150, 17)).astype(np.float32)
    y = np.maximum(rng.standard_normal(dy.shape), 0).astype(np.float32) if relu else None
    w = np.zeros((33, 17), np.float32)
    bounds = [0, 64, 65, 150]
    old = cnnlite.get_num_threads()
    try:
        cnnlite.set_num_threads(threads)
        dw, db = K.dense_backward_weights_shards(dy, x, bounds, y=y)
    finally:
        cnnlite.set_num_threads(old)
    for s, (a, b) in enumerate(zip(bounds, bounds[1:])):
        _, ref_w, ref_b = K.dense_backward(dy[a:b].copy(), x[a:b].copy(), w, need_dx=False,
                                           y=None if y is None else y[a:b].copy())
        np.testing.assert_array_equal(dw[s], ref_w)
        np.testing.assert_array_equal(db[s], ref_b)
    dz = dy * (y > 0) if relu else dy
    np.testing.assert_allclose(K.partials_sum(dw), x.astype(np.float64).T @ dz, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(K.partials_sum(db), dz.astype(np.float64).sum(0), rtol=1e-4, atol=1e-4)
