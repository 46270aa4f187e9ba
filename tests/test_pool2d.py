import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import cnnlite
from cnnlite import _kernels as K
import reference_ops as ref

SHAPES = [(1, 1, 1, 1), (1, 5, 5, 3), (3, 7, 6, 16), (2, 8, 8, 1), (5, 4, 9, 21)]  # 21 = 16 + 4 + 1 lanes
POOLS = [(2, 2, 2, 2), (2, 2, 1, 1), (3, 3, 1, 1), (3, 3, 2, 2), (2, 3, 1, 2)]  # ph, pw, sh, sw
PADDINGS = ["valid", "same", (0, 1, 1, 0), (1, 0, 0, 1)]


def pads_for(padding, h, w, ph, pw, sh, sw):
    if padding == "valid":
        return (0, 0, 0, 0)
    if padding == "same":
        return ref.same_pads(h, ph, sh) + ref.same_pads(w, pw, sw)
    return padding


def cases():
    for shape in SHAPES:
        for pool in POOLS:
            for padding in PADDINGS:
                _, h, w, _ = shape
                pads = pads_for(padding, h, w, *pool)
                ph, pw, sh, sw = pool
                if max(pads[:2]) >= ph or max(pads[2:]) >= pw:
                    continue
                if ref.pool_out_size(h, ph, sh, *pads[:2]) < 1 or ref.pool_out_size(w, pw, sw, *pads[2:]) < 1:
                    continue
                yield pytest.param(shape, pool, pads, id=f"{shape}-{pool}-{padding}")


def distinct_values(shape, rng):
    """Values with no ties and gaps far larger than a finite-difference step."""
    return (rng.permutation(int(np.prod(shape))).reshape(shape) * 0.01 - 1.0).astype(np.float32)


@pytest.fixture
def threads():
    old = cnnlite.get_num_threads()
    yield
    cnnlite.set_num_threads(old)


@pytest.mark.parametrize("shape,pool,pads", list(cases()))
def test_maxpool_matches_reference(shape, pool, pads, rng):
    x = rng.standard_normal(shape).astype(np.float32)
    y, argmax = K.maxpool2d_forward(x, *pool, *pads)
    y_ref, argmax_ref = ref.maxpool2d(x.astype(np.float64), *pool, pads)
    assert y.dtype == np.float32 and argmax.dtype == np.int32
    np.testing.assert_array_equal(y, y_ref.astype(np.float32))
    np.testing.assert_array_equal(argmax, argmax_ref)
    dy = rng.standard_normal(y.shape).astype(np.float32)
    dx = K.maxpool2d_backward(dy, argmax, shape[1], shape[2])
    np.testing.assert_allclose(dx, ref.maxpool2d_backward(dy.astype(np.float64), argmax_ref, shape[1], shape[2]),
                               rtol=1e-6, atol=1e-6)
    # Given the window, non-overlapping pools write dx directly (overlapping ones scatter as above): same bits.
    dx_window = K.maxpool2d_backward(dy, argmax, shape[1], shape[2], window=(*pool, *pads))
    assert dx_window.tobytes() == dx.tobytes()


@pytest.mark.parametrize("shape", [(3, 24, 24, 32), (2, 10, 10, 64), (2, 9, 11, 37), (4, 7, 5, 3)])
@pytest.mark.parametrize("pads", [(0, 0, 0, 0), (0, 1, 0, 1), (1, 0, 1, 1)])
def test_maxpool_2x2_fast_paths_match_reference(shape, pads, rng):
    # Whole 2x2 windows take the four-loads path, clipped ones the general loop; the direct backward writes every
    # cell once, including rows and columns no window covers (odd sizes, 'valid').
    x = rng.integers(-3, 4, size=shape).astype(np.float32)   # ties everywhere
    x[0, 0, 0, :] = np.nan
    y, argmax = K.maxpool2d_forward(x, 2, 2, 2, 2, *pads)
    y_ref, argmax_ref = ref.maxpool2d(x.astype(np.float64), 2, 2, 2, 2, pads)
    np.testing.assert_array_equal(y, y_ref)
    np.testing.assert_array_equal(argmax, argmax_ref)
    dy = rng.standard_normal(y.shape).astype(np.float32)
    dy.flat[::7] = -0.0
    dx = K.maxpool2d_backward(dy, argmax, shape[1], shape[2], window=(2, 2, 2, 2, *pads))
    assert dx.tobytes() == K.maxpool2d_backward(dy, argmax, shape[1], shape[2]).tobytes()
    np.testing.assert_array_equal(dx, ref.maxpool2d_backward(dy.astype(np.float64), argmax_ref, shape[1], shape[2]))


@pytest.mark.parametrize("pool,pads", [((2, 2, 2, 2), (0, 0, 0, 0)), ((2, 2, 2, 2), (0, 1, 1, 0)),
                                       ((3, 3, 1, 1), (1, 1, 1, 1)), ((2, 3, 2, 1), (0, 0, 1, 1))])
@pytest.mark.parametrize("with_window", [False, True])
def test_maxpool_backward_folds_the_relu_backward(pool, pads, with_window, rng):
    # The pooling of a ReLU's output, given its own output y: dx = relu_backward(maxpool2d_backward(dy), input).
    x = np.maximum(rng.integers(-2, 3, size=(3, 9, 8, 21)).astype(np.float32), 0)   # zeros and ties everywhere
    y, argmax = K.maxpool2d_forward(x, *pool, *pads)
    assert (y == 0).any() and (y > 0).any()
    dy = rng.standard_normal(y.shape).astype(np.float32)
    dy.flat[::5] = -0.0
    window = (*pool, *pads) if with_window else None
    dx = K.maxpool2d_backward(dy, argmax, 9, 8, window=window, y=y)
    expected = K.relu_backward(K.maxpool2d_backward(dy, argmax, 9, 8), x)
    assert dx.tobytes() == expected.tobytes()
    with pytest.raises(ValueError, match="y and dy must have the same shape"):
        K.maxpool2d_backward(dy, argmax, 9, 8, window=window, y=y[:1])


def test_maxpool_backward_window_checks():
    y, argmax = K.maxpool2d_forward(X, *GOOD)
    bad = argmax.copy()
    bad[0, 0, 0, 0] = 10   # inside the 4x4 plane, outside window (0, 0)
    with pytest.raises(ValueError, match="argmax holds an index outside its pooling window"):
        K.maxpool2d_backward(y, bad, 4, 4, window=GOOD)
    with pytest.raises(ValueError, match=r"dy must have shape \(2, 1, 1, 3\)"):
        K.maxpool2d_backward(y, argmax, 4, 4, window=(3, 3, 3, 3, 0, 0, 0, 0))
    with pytest.raises(TypeError, match="window must be None or a tuple"):
        K.maxpool2d_backward(y, argmax, 4, 4, window=[2, 2, 2, 2, 0, 0, 0, 0])
    with pytest.raises(TypeError, match="window must be None or a tuple"):
        K.maxpool2d_backward(y, argmax, 4, 4, window=(2, 2, 2, 2))
    with pytest.raises(ValueError, match=r"pad_top \(2\) must be smaller"):
        K.maxpool2d_backward(y, argmax, 4, 4, window=(2, 2, 2, 2, 2, 0, 0, 0))


@pytest.mark.parametrize("shape,pool,pads", list(cases()))
def test_avgpool_matches_reference(shape, pool, pads, rng):
    x = rng.standard_normal(shape).astype(np.float32)
    y = K.avgpool2d_forward(x, *pool, *pads)
    np.testing.assert_allclose(y, ref.avgpool2d(x.astype(np.float64), *pool, pads), rtol=1e-5, atol=1e-6)
    dy = rng.standard_normal(y.shape).astype(np.float32)
    dx = K.avgpool2d_backward(dy, shape[1], shape[2], *pool, *pads)
    np.testing.assert_allclose(dx, ref.avgpool2d_backward(dy.astype(np.float64), shape[1], shape[2], *pool, pads),
                               rtol=1e-5, atol=1e-6)


def test_maxpool_ties_go_to_first_cell_in_row_major_order():
    x = np.zeros((1, 4, 4, 2), dtype=np.float32)
    x[0, 1, 0, 1] = x[0, 0, 1, 1] = 5.0   # a tie inside the first window of channel 1: (0, 1) comes first
    y, argmax = K.maxpool2d_forward(x, 2, 2, 2, 2, 0, 0, 0, 0)
    np.testing.assert_array_equal(argmax[0, :, :, 0], [[0, 2], [8, 10]])    # all-zero windows: the first cell
    np.testing.assert_array_equal(argmax[0, :, :, 1], [[1, 2], [8, 10]])
    assert y[0, 0, 0, 1] == 5.0


def test_maxpool_ties_match_reference_with_overlap(rng):
    x = rng.integers(0, 3, size=(2, 7, 7, 3)).astype(np.float32)   # many ties
    pads = ref.same_pads(7, 3, 1) * 2
    y, argmax = K.maxpool2d_forward(x, 3, 3, 1, 1, *pads)
    y_ref, argmax_ref = ref.maxpool2d(x.astype(np.float64), 3, 3, 1, 1, pads)
    np.testing.assert_array_equal(y, y_ref)
    np.testing.assert_array_equal(argmax, argmax_ref)


def test_padded_cells_never_win_max():
    x = np.full((1, 3, 3, 1), -5.0, dtype=np.float32)   # padding would win if it counted as 0
    y, argmax = K.maxpool2d_forward(x, 2, 2, 2, 2, 1, 1, 1, 1)
    np.testing.assert_array_equal(y, -5.0)
    np.testing.assert_array_equal(argmax[0, :, :, 0], [[0, 1], [3, 4]])  # top-left real cell of each window


def test_avgpool_same_divides_by_real_cells():
    x = np.ones((1, 3, 3, 1), dtype=np.float32)
    y = K.avgpool2d_forward(x, 2, 2, 2, 2, *ref.same_pads(3, 2, 2), *ref.same_pads(3, 2, 2))
    np.testing.assert_array_equal(y, 1.0)


def test_overlapping_maxpool_backward_accumulates():
    x = np.zeros((1, 3, 3, 1), dtype=np.float32)
    x[0, 1, 1, 0] = 1.0        # the centre is the maximum of all four 2x2 stride-1 windows
    y, argmax = K.maxpool2d_forward(x, 2, 2, 1, 1, 0, 0, 0, 0)
    dx = K.maxpool2d_backward(np.ones_like(y), argmax, 3, 3)
    assert dx[0, 1, 1, 0] == 4.0 and dx.sum() == 4.0


@pytest.mark.parametrize("pool,pads", [((2, 2, 1, 1), (0, 1, 0, 1)), ((3, 3, 2, 2), (1, 1, 0, 2)),
                                       ((2, 3, 2, 1), (0, 0, 1, 1))])
def test_maxpool_gradient_matches_finite_differences(pool, pads, rng):
    x = distinct_values((2, 5, 4, 2), rng)
    y, argmax = K.maxpool2d_forward(x, *pool, *pads)
    weights = rng.standard_normal(y.shape)
    dx = K.maxpool2d_backward(weights.astype(np.float32), argmax, 5, 4)
    numeric = ref.numerical_grad(lambda v: (ref.maxpool2d(v, *pool, pads)[0] * weights).sum(), x)
    np.testing.assert_allclose(dx, numeric, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("pool,pads", [((2, 2, 1, 1), (0, 1, 0, 1)), ((3, 3, 2, 2), (1, 1, 0, 2))])
def test_avgpool_gradient_matches_finite_differences(pool, pads, rng):
    x = rng.standard_normal((2, 5, 4, 2))
    y = K.avgpool2d_forward(x.astype(np.float32), *pool, *pads)
    weights = rng.standard_normal(y.shape)
    dx = K.avgpool2d_backward(weights.astype(np.float32), 5, 4, *pool, *pads)
    numeric = ref.numerical_grad(lambda v: (ref.avgpool2d(v, *pool, pads) * weights).sum(), x)
    np.testing.assert_allclose(dx, numeric, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("pool,pads", [((2, 2, 2, 2), (0, 0, 0, 0)), ((3, 3, 1, 1), (1, 1, 1, 1))])
def test_pooling_is_bitwise_identical_for_1_and_2_threads(pool, pads, rng, threads):
    x = rng.standard_normal((6, 24, 24, 32)).astype(np.float32)
    results = []
    for n in (1, 2):
        cnnlite.set_num_threads(n)
        y, argmax = K.maxpool2d_forward(x, *pool, *pads)
        dy = np.cos(np.arange(y.size, dtype=np.float32)).reshape(y.shape)
        results.append([y, argmax, K.maxpool2d_backward(dy, argmax, 24, 24),
                        K.maxpool2d_backward(dy, argmax, 24, 24, window=(*pool, *pads)),
                        K.avgpool2d_forward(x, *pool, *pads),
                        K.avgpool2d_backward(dy, 24, 24, *pool, *pads)])
    for one, two in zip(*results):
        assert one.tobytes() == two.tobytes()


def test_empty_batch():
    y, argmax = K.maxpool2d_forward(np.zeros((0, 4, 4, 3), np.float32), 2, 2, 2, 2, 0, 0, 0, 0)
    assert y.shape == argmax.shape == (0, 2, 2, 3)
    assert K.maxpool2d_backward(y, argmax, 4, 4).shape == (0, 4, 4, 3)


# --- argument checking --------------------------------------------------------------------------------------------

X = np.zeros((2, 4, 4, 3), dtype=np.float32)
GOOD = (2, 2, 2, 2, 0, 0, 0, 0)


@pytest.mark.parametrize("fn", [K.maxpool2d_forward, K.avgpool2d_forward])
@pytest.mark.parametrize("x,args,exc,match", [
    (X.astype(np.float64), GOOD, TypeError, "x must have dtype float32"),
    (X.tolist(), GOOD, TypeError, "x must be a numpy.ndarray"),
    (X[0], GOOD, ValueError, "x must be 4-D"),
    (X[:, :, ::2], (1, 1, 1, 1, 0, 0, 0, 0), ValueError, "x must be C-contiguous"),
    (X, (0, 2, 2, 2, 0, 0, 0, 0), ValueError, "ph must be an int >= 1"),
    (X, (2, 2, 2, 0, 0, 0, 0, 0), ValueError, "sw must be an int >= 1"),
    (X, (2.0, 2, 2, 2, 0, 0, 0, 0), TypeError, "ph must be an int"),
    (X, (2, 2, 2, 2, -1, 0, 0, 0), ValueError, "pad_top must be an int >= 0"),
    (X, (2, 2, 2, 2, 0, 2, 0, 0), ValueError, r"pad_bottom \(2\) must be smaller than the pool size ph \(2\)"),
    (X, (5, 2, 1, 1, 0, 0, 0, 0), ValueError, "output height"),
    (X, (2, 5, 1, 1, 0, 0, 0, 0), ValueError, "output width"),
])
def test_pool_forward_rejects_bad_arguments(fn, x, args, exc, match):
    with pytest.raises(exc, match=match):
        fn(x, *args)


def test_maxpool_backward_rejects_bad_arguments():
    y, argmax = K.maxpool2d_forward(X, *GOOD)
    with pytest.raises(TypeError, match="argmax must have dtype int32"):
        K.maxpool2d_backward(y, argmax.astype(np.int64), 4, 4)
    with pytest.raises(ValueError, match="argmax and dy must have the same shape"):
        K.maxpool2d_backward(y, argmax[:1], 4, 4)
    with pytest.raises(ValueError, match="h must be an int >= 1"):
        K.maxpool2d_backward(y, argmax, 0, 4)
    with pytest.raises(ValueError, match=r"argmax holds an index outside \[0, h\*w\)"):
        K.maxpool2d_backward(y, argmax, 2, 2)   # indices up to 15 do not fit a 2x2 plane
    with pytest.raises(ValueError, match="outside"):
        K.maxpool2d_backward(y, argmax - 1, 4, 4)


def test_avgpool_backward_rejects_mismatched_dy():
    with pytest.raises(ValueError, match=r"dy must have shape \(2, 2, 2, 3\)"):
        K.avgpool2d_backward(np.zeros((2, 3, 2, 3), np.float32), 4, 4, *GOOD)
    with pytest.raises(TypeError, match="h must be an int"):
        K.avgpool2d_backward(np.zeros((2, 2, 2, 3), np.float32), 4.5, 4, *GOOD)


@st.composite
def pool_problems(draw):
    ph, pw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    pads = (draw(st.integers(0, ph - 1)), draw(st.integers(0, ph - 1)),
            draw(st.integers(0, pw - 1)), draw(st.integers(0, pw - 1)))
    h = draw(st.integers(max(1, ph - pads[0] - pads[1]), 9))
    w = draw(st.integers(max(1, pw - pads[2] - pads[3]), 9))
    shape = (draw(st.integers(1, 3)), h, w, draw(st.integers(1, 20)))
    return shape, (ph, pw, draw(st.integers(1, 3)), draw(st.integers(1, 3))), pads


@settings(max_examples=30, deadline=None)
@given(problem=pool_problems(), seed=st.integers(0, 2**32 - 1))
def test_random_pool_geometries_match_reference(problem, seed):
    shape, pool, pads = problem
    rng = np.random.default_rng(seed)
    x = rng.integers(-3, 4, size=shape).astype(np.float32)   # small integers: ties everywhere, exact sums
    y, argmax = K.maxpool2d_forward(x, *pool, *pads)
    y_ref, argmax_ref = ref.maxpool2d(x.astype(np.float64), *pool, pads)
    np.testing.assert_array_equal(y, y_ref)
    np.testing.assert_array_equal(argmax, argmax_ref)
    dy = rng.integers(-3, 4, size=y.shape).astype(np.float32)
    np.testing.assert_array_equal(K.maxpool2d_backward(dy, argmax, shape[1], shape[2]),
                                  ref.maxpool2d_backward(dy.astype(np.float64), argmax_ref, shape[1], shape[2]))
    np.testing.assert_array_equal(K.maxpool2d_backward(dy, argmax, shape[1], shape[2], window=(*pool, *pads)),
                                  ref.maxpool2d_backward(dy.astype(np.float64), argmax_ref, shape[1], shape[2]))
    np.testing.assert_allclose(K.avgpool2d_forward(x, *pool, *pads), ref.avgpool2d(x.astype(np.float64), *pool, pads),
                               rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(K.avgpool2d_backward(dy, shape[1], shape[2], *pool, *pads),
                               ref.avgpool2d_backward(dy.astype(np.float64), shape[1], shape[2], *pool, pads),
                               rtol=1e-6, atol=1e-6)
