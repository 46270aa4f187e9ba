
import numpy as np
import pytest

import cnnlite
from cnnlite import _kernels as K

from reference_conv import dense_backward_ref, dense_forward_ref, numeric_grad

TOL = dict(rtol=2e-4, atol=2e-4)


def _data(rng, n, n_in, n_out):
    x = rng.standard_normal((n, n_in)).astype(np.float32)
    w = (rng.standard_normal((n_in, n_out)) / np.sqrt(n_in)).astype(np.float32)
    b = rng.standard_normal(n_out).astype(np.float32)
    return x, w, b


# (40, 600, 350): several depth blocks and more columns than the in-place limit (a packed a-block), so the fused
# epilogue must run with the last depth block only.
SHAPES = [(1, 1, 1), (1, 5, 3), (7, 13, 10), (32, 784, 128), (33, 128, 10), (5, 1600, 17), (40, 600, 350)]


@pytest.mark.parametrize("n,n_in,n_out", SHAPES)
@pytest.mark.parametrize("with_bias", [True, False])
@pytest.mark.parametrize("relu", [False, True])
def test_dense_forward_matches_reference(rng, n, n_in, n_out, with_bias, relu):
    x, w, b = _data(rng, n, n_in, n_out)
    b = b if with_bias else None
    y = K.dense_forward(x, w, b, relu=relu)
    assert y.shape == (n, n_out) and y.dtype == np.float32
    ref = dense_forward_ref(x, w, b)
    np.testing.assert_allclose(y, np.maximum(ref, 0.0) if relu else ref, **TOL)


def test_dense_fused_relu_equals_relu_of_output(rng):
    # Bitwise: the fused store applies relu_forward's rule (NaN propagates) to the same sums.
    x, w, b = _data(rng, 40, 600, 350)
    x[3, 7] = np.nan
    y = K.dense_forward(x, w, b)
    fused = K.dense_forward(x, w, b, relu=True)
    assert np.isnan(fused[3]).all() and (fused == 0).any()
    np.testing.assert_array_equal(fused, K.relu_forward(y))


@pytest.mark.parametrize("n,n_in,n_out", SHAPES)
def test_dense_backward_matches_reference(rng, n, n_in, n_out):
    x, w, _ = _data(rng, n, n_in, n_out)
    dy = rng.standard_normal((n, n_out)).astype(np.float32)
    dx, dw, db = K.dense_backward(dy, x, w)
    rdx, rdw, rdb = dense_backward_ref(dy, x, w)
    np.testing.assert_allclose(dx, rdx, **TOL)
    np.testing.assert_allclose(dw, rdw, rtol=2e-4, atol=2e-4 * np.sqrt(n))
    np.testing.assert_allclose(db, rdb, rtol=2e-4, atol=2e-4 * np.sqrt(n))


@pytest.mark.parametrize("n,n_in,n_out", SHAPES)
@pytest.mark.parametrize("need_dx,need_db", [(True, True), (False, False)])
def test_dense_backward_through_fused_relu_matches_reference(rng, n, n_in, n_out, need_dx, need_db):
    x, w, b = _data(rng, n, n_in, n_out)
    b[0] = -100.0  # at least one unit is cut by the ReLU
    y = K.dense_forward(x, w, b, relu=True)
    dy = rng.standard_normal((n, n_out)).astype(np.float32)
    dx, dw, db = K.dense_backward(dy, x, w, need_dx=need_dx, need_db=need_db, y=y)
    rdx, rdw, rdb = dense_backward_ref(dy * (y > 0), x, w)
    np.testing.assert_allclose(dw, rdw, rtol=2e-4, atol=2e-4 * np.sqrt(n))
    assert (dx is not None) == need_dx and (db is not None) == need_db
    if need_dx:
        np.testing.assert_allclose(dx, rdx, **TOL)
    if need_db:
        np.testing.assert_allclose(db, rdb, rtol=2e-4, atol=2e-4 * np.sqrt(n))
    unfused = K.dense_backward(K.relu_backward(dy, y), x, w, need_dx=need_dx, need_db=need_db)
    for fused_grad, unfused_grad in zip((dx, dw, db), unfused):  # same sums, same order
        assert (fused_grad is None and unfused_grad is None) or np.array_equal(fused_grad, unfused_grad)


def test_dense_relu_gradients_match_finite_differences(rng):
    n, n_in, n_out = 4, 5, 6
    x, w, b = (t.astype(np.float64) for t in _data(rng, n, n_in, n_out))
    z = dense_forward_ref(x, w, b)
    assert np.abs(z).min() > 1e-3 and (z < 0).any() and (z > 0).any()  # no pre-activation near the kink
    r = rng.standard_normal((n, n_out))  # loss = sum(relu(z) * r)

    def loss():
        return float((np.maximum(dense_forward_ref(x, w, b), 0) * r).sum())

    x32, w32 = x.astype(np.float32), w.astype(np.float32)
    y = K.dense_forward(x32, w32, b.astype(np.float32), relu=True)
    dx, dw, db = K.dense_backward(r.astype(np.float32), x32, w32, y=y)
    np.testing.assert_allclose(dx, numeric_grad(loss, x), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(dw, numeric_grad(loss, w), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(db, numeric_grad(loss, b), rtol=1e-4, atol=1e-4)


def test_dense_backward_optional_outputs(rng):
    x, w, _ = _data(rng, 6, 5, 4)
    dy = rng.standard_normal((6, 4)).astype(np.float32)
    dx, dw, db = K.dense_backward(dy, x, w, need_dx=False, need_db=False)
    assert dx is None and db is None
    np.testing.assert_allclose(dw, dense_backward_ref(dy, x, w)[1], **TOL)


def test_dense_empty_batch(rng):
    _, w, b = _data(rng, 1, 4, 3)
    x = np.empty((0, 4), np.float32)
    assert K.dense_forward(x, w, b).shape == (0, 3)
    dx, dw, db = K.dense_backward(np.empty((0, 3), np.float32), x, w)
    assert dx.shape == (0, 4) and not dw.any() and not db.any()
    dx, dw, db = K.dense_backward(np.empty((0, 3), np.float32), x, w, y=np.empty((0, 3), np.float32))
    assert dx.shape == (0, 4) and not dw.any() and not db.any()


def test_dense_gradients_match_finite_differences(rng):
    n, n_in, n_out = 3, 4, 5
    x, w, b = (t.astype(np.float64) for t in _data(rng, n, n_in, n_out))
    r = rng.standard_normal((n, n_out))  # loss = sum(y * r), so dy = r

    def loss():
        return float((dense_forward_ref(x, w, b) * r).sum())

    dx, dw, db = K.dense_backward(r.astype(np.float32), x.astype(np.float32), w.astype(np.float32))
    np.testing.assert_allclose(dx, numeric_grad(loss, x), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(dw, numeric_grad(loss, w), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(db, numeric_grad(loss, b), rtol=1e-4, atol=1e-4)


def test_dense_bitwise_identical_for_1_and_2_threads(rng):
    x, w, b = _data(rng, 300, 500, 70)
    dy = rng.standard_normal((300, 70)).astype(np.float32)
    old = cnnlite.get_num_threads()
    results = []
    try:
        for threads in (1, 2):
            cnnlite.set_num_threads(threads)
            y_relu = K.dense_forward(x, w, b, relu=True)
            results.append((K.dense_forward(x, w, b), y_relu) + K.dense_backward(dy, x, w) +
                           K.dense_backward(dy, x, w, y=y_relu))
    finally:
        cnnlite.set_num_threads(old)
    for one, two in zip(*results):
        assert np.array_equal(one, two)


def test_dense_rejects_bad_arguments():
    x = np.ones((2, 3), np.float32)
    w = np.ones((3, 4), np.float32)
    with pytest.raises(TypeError, match="x must have dtype float32"):
        K.dense_forward(x.astype(np.float64), w, None)
    with pytest.raises(ValueError, match="w must be 2-D"):
        K.dense_forward(x, w[None], None)
    with pytest.raises(ValueError, match="x has 3 features"):
        K.dense_forward(x, np.ones((4, 4), np.float32), None)
    with pytest.raises(ValueError, match=r"b must have shape \(4,\)"):
        K.dense_forward(x, w, np.ones(3, np.float32))
    with pytest.raises(ValueError, match="x must be C-contiguous"):
        K.dense_forward(np.ones((3, 2), np.float32).T, w, None)
    with pytest.raises(TypeError, match="relu must be a bool, got str 'yes'"):
        K.dense_forward(x, w, None, relu="yes")
    with pytest.raises(ValueError, match="non-zero"):
        K.dense_forward(np.ones((2, 0), np.float32), np.ones((0, 4), np.float32), None)
    with pytest.raises(ValueError, match=r"dy must have shape \(2, 4\)"):
        K.dense_backward(np.ones((2, 5), np.float32), x, w)
    with pytest.raises(TypeError, match="dy must be a numpy.ndarray"):
        K.dense_backward([[1.0]], x, w)
    with pytest.raises(ValueError, match=r"y must have shape \(2, 4\), got \(4, 2\)"):
        K.dense_backward(np.ones((2, 4), np.float32), x, w, y=np.ones((4, 2), np.float32))
    with pytest.raises(TypeError, match="y must have dtype float32"):
        K.dense_backward(np.ones((2, 4), np.float32), x, w, y=np.ones((2, 4), np.int32))
