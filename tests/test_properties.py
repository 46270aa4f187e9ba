"""Property-based tests (Hypothesis): every kernel against its NumPy reference over random shapes, strides, paddings
and pool sizes, degenerate ones included (1x1 images, batch 1, one channel, k = 1 classes, 1x1 kernels).

Sizes stay small and example counts bounded so the whole file runs in seconds; data come from a NumPy generator
seeded by Hypothesis, so a failure is reproducible from the printed example.
"""
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import cnnlite
from cnnlite import _kernels as K
from reference_conv import conv2d_backward_ref, conv2d_forward_ref, dense_backward_ref, dense_forward_ref, gemm_ref
import reference_ops as R
import conv_algos

# CNNLITE_PROPERTY_EXAMPLES=2000 for a long bug hunt; the default keeps the file at a few seconds.
EXAMPLES = int(os.environ.get("CNNLITE_PROPERTY_EXAMPLES", "40"))
PROPS = settings(max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
TOL = dict(rtol=2e-4, atol=2e-4)

seeds = st.integers(0, 2**32 - 1)
small = st.integers(1, 6)


def _normal(seed, shape, scale=1.0):
    return (np.random.default_rng(seed).standard_normal(shape) * scale).astype(np.float32)


def _padding(draw, size, k, stride, pad_limit):
    """'valid', TF 'same', or explicit pads (before, after) each in [0, pad_limit]."""
    mode = draw(st.sampled_from(["valid", "same", "explicit"]))
    if mode == "valid":
        return 0, 0
    if mode == "same":
        return R.same_pads(size, k, stride)
    return draw(st.integers(0, pad_limit)), draw(st.integers(0, pad_limit))


@st.composite
def conv_cases(draw, algo="auto"):
    """Random convolution geometries; for 'winograd' only those it computes (3x3 kernel, stride 1)."""
    n, h, w = draw(st.integers(1, 3)), draw(small), draw(small)
    cin, cout = draw(st.integers(1, 5)), draw(st.integers(1, 6))
    if algo == "winograd":
        kh = kw = 3
        sh = sw = 1
    else:
        kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
        sh, sw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    pt, pb = _padding(draw, h, kh, sh, 3)
    pl, pr = _padding(draw, w, kw, sw, 3)
    assume(h + pt + pb >= kh and w + pl + pr >= kw)
    return n, h, w, cin, cout, kh, kw, sh, sw, (pt, pb, pl, pr)


@st.composite
def pool_cases(draw):
    n, h, w, c = draw(st.integers(1, 3)), draw(small), draw(small), draw(st.integers(1, 20))
    ph, pw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    sh, sw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    pt, pb = _padding(draw, h, ph, sh, ph - 1)   # a pad is always smaller than the pool (the binding's rule)
    pl, pr = _padding(draw, w, pw, sw, pw - 1)
    assume(h + pt + pb >= ph and w + pl + pr >= pw)
    return n, h, w, c, ph, pw, sh, sw, (pt, pb, pl, pr)


@PROPS
@given(m=st.integers(0, 40), n=st.integers(0, 40), k=st.integers(0, 40), ta=st.booleans(), tb=st.booleans(),
       seed=seeds)
def test_gemm_matches_numpy(m, n, k, ta, tb, seed):
    a = _normal(seed, (k, m) if ta else (m, k))
    b = _normal(seed + 1, (n, k) if tb else (k, n))
    c = K.gemm(a, b, ta, tb)
    assert c.shape == (m, n)
    np.testing.assert_allclose(c, gemm_ref(a, b, ta, tb), **TOL)


@PROPS
@given(n=st.integers(0, 9), n_in=st.integers(1, 30), n_out=st.integers(1, 30), bias=st.booleans(), seed=seeds)
def test_dense_matches_reference(n, n_in, n_out, bias, seed):
    x, w, dy = _normal(seed, (n, n_in)), _normal(seed + 1, (n_in, n_out)), _normal(seed + 2, (n, n_out))
    b = _normal(seed + 3, (n_out,)) if bias else None
    np.testing.assert_allclose(K.dense_forward(x, w, b), dense_forward_ref(x, w, b), **TOL)
    dx, dw, db = K.dense_backward(dy, x, w)
    rdx, rdw, rdb = dense_backward_ref(dy, x, w)
    np.testing.assert_allclose(dx, rdx, **TOL)
    np.testing.assert_allclose(dw, rdw, **TOL)
    np.testing.assert_allclose(db, rdb, **TOL)


@pytest.mark.parametrize("algo", conv_algos.ALGOS)
@PROPS
@given(data=st.data(), bias=st.booleans(), seed=seeds)
def test_conv2d_forward_and_backward_match_reference(algo, data, bias, seed):
    n, h, w, cin, cout, kh, kw, sh, sw, pads = data.draw(conv_cases(algo))
    with conv_algos.forced(algo) as conv:
        assume(conv.applies((n, h, w, cin), (kh, kw, cin, cout), sh, sw, *pads))  # e.g. Winograd's dx: pads <= 2
        _check_conv2d_against_reference(conv, n, h, w, cin, cout, kh, kw, sh, sw, pads, bias, seed)


def _check_conv2d_against_reference(K, n, h, w, cin, cout, kh, kw, sh, sw, pads, bias, seed):
    """K: the kernels module, or a conv_algos.Forced passing its algorithm explicitly."""
    x = _normal(seed, (n, h, w, cin))
    k = _normal(seed + 1, (kh, kw, cin, cout), 1 / np.sqrt(kh * kw * cin))
    b = _normal(seed + 2, (cout,)) if bias else None
    y = K.conv2d_forward(x, k, b, sh, sw, *pads)
    ref = conv2d_forward_ref(x, k, b, sh, sw, *pads)
    assert y.shape == ref.shape
    np.testing.assert_allclose(y, ref, **TOL)
    dy = _normal(seed + 3, y.shape)
    dx, dk, db = K.conv2d_backward(dy, x, k, sh, sw, *pads)
    rdx, rdk, rdb = conv2d_backward_ref(dy, x, k, sh, sw, *pads)
    np.testing.assert_allclose(dx, rdx, **TOL)
    np.testing.assert_allclose(dk, rdk, rtol=2e-4, atol=5e-4)
    np.testing.assert_allclose(db, rdb, **TOL)


@pytest.mark.skipif(not cnnlite.has_openmp(), reason="needs OpenMP")
@pytest.mark.parametrize("algo", conv_algos.ALGOS)
@settings(max_examples=max(5, EXAMPLES // 3), deadline=None, database=None)
@given(data=st.data(), seed=seeds)
def test_conv2d_is_bitwise_identical_for_1_and_2_threads(algo, data, seed):
    n, h, w, cin, cout, kh, kw, sh, sw, pads = data.draw(conv_cases(algo))
    conv = conv_algos.Forced(algo)
    assume(conv.applies((n * 8, h, w, cin), (kh, kw, cin, cout), sh, sw, *pads))
    x, k = _normal(seed, (n * 8, h, w, cin)), _normal(seed + 1, (kh, kw, cin, cout))
    dy = _normal(seed + 2, K.conv2d_forward(x, k, None, sh, sw, *pads).shape)
    old = cnnlite.get_num_threads()
    results = []
    try:
        for threads in (1, 2):
            cnnlite.set_num_threads(threads)
            results.append((conv.conv2d_forward(x, k, None, sh, sw, *pads),) +
                           conv.conv2d_backward(dy, x, k, sh, sw, *pads))
    finally:
        cnnlite.set_num_threads(old)
    for one, two in zip(*results):
        assert one.tobytes() == two.tobytes()


@PROPS
@given(case=pool_cases(), ties=st.booleans(), seed=seeds)
def test_maxpool_matches_reference(case, ties, seed):
    n, h, w, c, ph, pw, sh, sw, pads = case
    rng = np.random.default_rng(seed)
    # ties: values from {0, 1, 2} so many windows hold several maxima (the first in row-major order must win)
    x = (rng.integers(0, 3, (n, h, w, c)) if ties else rng.standard_normal((n, h, w, c))).astype(np.float32)
    y, argmax = K.maxpool2d_forward(x, ph, pw, sh, sw, *pads)
    ry, rarg = R.maxpool2d(x, ph, pw, sh, sw, pads)
    np.testing.assert_array_equal(y, ry)
    np.testing.assert_array_equal(argmax, rarg)
    dy = _normal(seed + 1, y.shape)
    np.testing.assert_allclose(K.maxpool2d_backward(dy, argmax, h, w), R.maxpool2d_backward(dy, rarg, h, w), **TOL)


@PROPS
@given(case=pool_cases(), seed=seeds)
def test_avgpool_matches_reference(case, seed):
    n, h, w, c, ph, pw, sh, sw, pads = case
    x = _normal(seed, (n, h, w, c))
    y = K.avgpool2d_forward(x, ph, pw, sh, sw, *pads)
    np.testing.assert_allclose(y, R.avgpool2d(x, ph, pw, sh, sw, pads), **TOL)
    dy = _normal(seed + 1, y.shape)
    np.testing.assert_allclose(K.avgpool2d_backward(dy, h, w, ph, pw, sh, sw, *pads),
                               R.avgpool2d_backward(dy, h, w, ph, pw, sh, sw, pads), **TOL)


activations = st.sampled_from([
    (K.relu_forward, K.relu_backward, R.relu, lambda y: (y > 0).astype(np.float64)),
    (K.sigmoid_forward, K.sigmoid_backward, R.sigmoid, lambda y: y * (1 - y)),
    (K.tanh_forward, K.tanh_backward, np.tanh, lambda y: 1 - y * y),
])


@PROPS
@given(act=activations, shape=st.lists(st.integers(0, 7), min_size=1, max_size=4), scale=st.sampled_from([1, 30, 1e4]),
       seed=seeds)
def test_activations_match_reference_any_rank_and_magnitude(act, shape, scale, seed):
    forward, backward, ref, ref_slope = act
    x = _normal(seed, tuple(shape), scale)
    y = forward(x)
    assert y.shape == x.shape and np.all(np.isfinite(y))
    np.testing.assert_allclose(y, ref(x.astype(np.float64)), rtol=1e-5, atol=1e-6)
    dy = _normal(seed + 1, x.shape)
    np.testing.assert_allclose(backward(dy, y), dy * ref_slope(y.astype(np.float64)), rtol=1e-5, atol=1e-6)


@PROPS
@given(n=st.integers(1, 9), k=st.integers(1, 12), scale=st.sampled_from([1, 50, 1e4, 1e30]), sparse=st.booleans(),
       seed=seeds)
def test_softmax_xent_matches_reference_and_stays_finite(n, k, scale, sparse, seed):
    logits = _normal(seed, (n, k), scale)
    labels = np.random.default_rng(seed + 1).integers(0, k, n)
    targets = R.one_hot(labels, k).astype(np.float32)
    if sparse:
        loss, probs, dlogits = K.sparse_softmax_xent(logits, labels.astype(np.int64))
    else:
        loss, probs, dlogits = K.softmax_xent(logits, targets)
    assert np.isfinite(loss) and np.all(np.isfinite(probs)) and np.all(np.isfinite(dlogits))
    # Large logits: the probabilities saturate, so the clipped loss stays below -log(1e-7) per row.
    assert 0 <= loss <= -np.log(R.EPSILON) + 1e-4
    rloss, rprobs, rd = R.softmax_xent(logits.astype(np.float64), targets.astype(np.float64))
    np.testing.assert_allclose(loss, rloss, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(probs, rprobs, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(dlogits, rd, rtol=1e-5, atol=1e-6)


@PROPS
@given(n=st.integers(1, 9), k=st.integers(1, 12), seed=seeds)
def test_softmax_forward_backward_match_reference(n, k, seed):
    x = _normal(seed, (n, k), 10)
    y = K.softmax_forward(x)
    np.testing.assert_allclose(y, R.softmax(x.astype(np.float64)), rtol=1e-5, atol=1e-6)
    dy = _normal(seed + 1, (n, k))
    np.testing.assert_allclose(K.softmax_backward(dy, y), R.softmax_backward(dy, y.astype(np.float64)),
                               rtol=1e-4, atol=1e-6)


@PROPS
@given(shape=st.lists(st.integers(1, 6), min_size=1, max_size=3), seed=seeds)
def test_mse_and_xent_match_reference(shape, seed):
    rng = np.random.default_rng(seed)
    pred, targets = _normal(seed, tuple(shape)), _normal(seed + 1, tuple(shape))
    np.testing.assert_allclose(K.mse_forward(pred, targets), R.mse(pred.astype(np.float64), targets), rtol=1e-5)
    np.testing.assert_allclose(K.mse_backward(pred, targets), R.mse_backward(pred.astype(np.float64), targets),
                               rtol=1e-5, atol=1e-7)
    n, k = int(np.prod(shape[:-1])), shape[-1]
    probs = rng.uniform(0.01, 1, (n, k)).astype(np.float32)
    onehot = R.one_hot(rng.integers(0, k, n), k).astype(np.float32)
    # atol: with k = 1 the float32 clip at 1 - 1e-7 gives a loss of 1.19e-7 where float64 gives 1e-7
    np.testing.assert_allclose(K.xent_forward(probs, onehot), R.xent(probs.astype(np.float64), onehot), rtol=1e-5,
                               atol=1e-7)
    np.testing.assert_allclose(K.xent_backward(probs, onehot), R.xent_backward(probs.astype(np.float64), onehot),
                               rtol=1e-4, atol=1e-6)


@PROPS
@given(shape=st.lists(st.integers(0, 40), min_size=1, max_size=3), rate=st.floats(0, 0.95), seed=seeds,
       step=st.integers(0, 2**64 - 1))
def test_dropout_keeps_or_scales_each_element_and_backward_reuses_the_mask(shape, rate, seed, step):
    x = _normal(seed % 1000, tuple(shape)) + 3.0    # never 0, so a dropped element is recognisable
    y = K.dropout_forward(x, rate, seed, step)
    kept = y != 0
    np.testing.assert_allclose(y[kept], x[kept] / np.float32(1 - rate), rtol=1e-6)
    dy = np.ones_like(x)
    dx = K.dropout_backward(dy, rate, seed, step)
    np.testing.assert_array_equal(dx != 0, kept)
    assert y.tobytes() == K.dropout_forward(x, rate, seed, step).tobytes()


@PROPS
@given(shape=st.lists(st.integers(1, 9), min_size=1, max_size=3), lr=st.floats(1e-4, 1.0),
       beta1=st.floats(0, 0.99), beta2=st.floats(0, 0.9999), t=st.integers(1, 1000), seed=seeds)
def test_adam_matches_keras_rule(shape, lr, beta1, beta2, t, seed):
    w, g, m = (_normal(seed + i, tuple(shape)) for i in range(3))
    v = np.abs(_normal(seed + 3, tuple(shape)))
    rw, rm, rv, lr_t = R.adam_step(w, g, m, v, lr, beta1, beta2, 1e-7, t)
    K.adam_update(w, g, m, v, lr_t, beta1, beta2, 1e-7)
    np.testing.assert_allclose(m, rm, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(v, rv, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(w, rw, rtol=1e-4, atol=1e-5)


@PROPS
@given(shape=st.lists(st.integers(1, 9), min_size=1, max_size=3), lr=st.floats(1e-4, 1.0),
       momentum=st.sampled_from([0.0, 0.5, 0.9]), nesterov=st.booleans(), rho=st.floats(0, 0.99), seed=seeds)
def test_sgd_and_rmsprop_match_keras_rules(shape, lr, momentum, nesterov, rho, seed):
    w, g, vel = (_normal(seed + i, tuple(shape)) for i in range(3))
    rw, rvel = R.sgd_step(w, g, vel, lr, momentum, nesterov)
    w2, vel2 = w.copy(), vel.copy()
    K.sgd_update(w2, g, vel2 if momentum else None, lr, momentum, nesterov)
    np.testing.assert_allclose(w2, rw, rtol=1e-5, atol=1e-6)
    if momentum:
        np.testing.assert_allclose(vel2, rvel, rtol=1e-5, atol=1e-6)
    acc = np.abs(_normal(seed + 4, tuple(shape)))
    rw, racc = R.rmsprop_step(w, g, acc, lr, rho, 1e-7)
    K.rmsprop_update(w, g, acc, lr, rho, 1e-7)
    np.testing.assert_allclose(acc, racc, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(w, rw, rtol=1e-4, atol=1e-5)


# ===== The large profile: shapes past the kernels' blocking, random on every run, on a bounded budget =============
#
# The properties above run small shapes (h, w <= 6, cin <= 5), replayed identically in CI (Hypothesis's own "ci"
# profile derandomises when CI is set). Those never reach a GEMM with several depth blocks (kc = 256 floats of depth
# for every micro-kernel, cpp/gemm_kernel_*.cpp) or row blocks (mc = 240 / 128 rows), nor a Winograd convolution with
# several tile blocks (cpp/conv2d_winograd.cpp: tiles_per_block(cin, cout) <= 480 tiles, 24..64 for the channel
# counts below). The large profile draws such shapes, and is NOT derandomised: every run (CI's included) explores
# new examples, LARGE_EXAMPLES per property (CNNLITE_PROPERTY_LARGE_EXAMPLES), which keeps the block at a few
# seconds. A failure prints the falsifying example and a @reproduce_failure blob.
LARGE_EXAMPLES = int(os.environ.get("CNNLITE_PROPERTY_LARGE_EXAMPLES", "6"))
LARGE = settings(max_examples=LARGE_EXAMPLES, deadline=None, database=None, derandomize=False,
                 suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
GEMM_KC = 256                # depth block of every micro-kernel


def _winograd_tiles_per_block(cin, cout):  # mirrors cpp/conv2d_winograd.cpp
    t = 128 * 1024 // (16 * (cin + cout))
    return max(24, min(t, 480)) // 24 * 24


@st.composite
def large_conv_cases(draw, algo):
    """Geometries with depth kh * kw * cin of 1.1 to 4.5 GEMM depth blocks (GEMM and Winograd) and, for Winograd,
    at least two tile blocks; the direct kernel (1-3 input channels) gets large images and many filters instead."""
    if algo == "direct":
        cin, cout = draw(st.integers(1, 3)), draw(st.integers(8, 64))
        n, h, w = draw(st.integers(2, 8)), draw(st.integers(12, 30)), draw(st.integers(12, 30))
    else:
        cin, cout = draw(st.integers(32, 128)), draw(st.integers(8, 48))
        n, h, w = draw(st.integers(1, 4)), draw(st.integers(8, 20)), draw(st.integers(8, 20))
    if algo in ("winograd", "direct"):
        kh = kw = 3
        sh = sw = 1
    else:
        kh, kw = draw(st.integers(2, 4)), draw(st.integers(2, 4))
        sh, sw = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    pt, pb = _padding(draw, h, kh, sh, 2)
    pl, pr = _padding(draw, w, kw, sw, 2)
    assume(h + pt + pb >= kh and w + pl + pr >= kw)
    if algo != "direct":
        assume(kh * kw * cin > GEMM_KC)
    if algo == "winograd":
        oh, ow = h + pt + pb - 2, w + pl + pr - 2
        assume(n * ((oh + 1) // 2) * ((ow + 1) // 2) >= 2 * _winograd_tiles_per_block(cin, cout))
    return n, h, w, cin, cout, kh, kw, sh, sw, (pt, pb, pl, pr)


@pytest.mark.parametrize("algo", ["gemm", "winograd", "direct"])
@LARGE
@given(data=st.data(), bias=st.booleans(), seed=seeds)
def test_large_conv2d_matches_reference(algo, data, bias, seed):
    n, h, w, cin, cout, kh, kw, sh, sw, pads = data.draw(large_conv_cases(algo))
    geometry = ((n, h, w, cin), (kh, kw, cin, cout), sh, sw, *pads)
    with conv_algos.forced(algo) as conv:
        # the algorithm is passed explicitly to every pass (the direct kernel has no input gradient: automatic
        # there) and applies to each (the strategy keeps Winograd's pads <= 2), so it is the one that runs
        assert conv.applies(*geometry)
        assert conv.algo(*geometry) == algo and conv.algo(*geometry, backward_weights=True) == algo
        if algo != "direct":
            assert conv.algo(*geometry, backward_input=True) == algo
        _check_conv2d_against_reference(conv, n, h, w, cin, cout, kh, kw, sh, sw, pads, bias, seed)


@LARGE
@given(m=st.integers(1, 600), n=st.integers(1, 300), k=st.integers(GEMM_KC + 1, 4 * GEMM_KC + 100),
       ta=st.booleans(), tb=st.booleans(), seed=seeds)
def test_large_gemm_matches_numpy(m, n, k, ta, tb, seed):
    a = _normal(seed, (k, m) if ta else (m, k))
    b = _normal(seed + 1, (n, k) if tb else (k, n))
    np.testing.assert_allclose(K.gemm(a, b, ta, tb), gemm_ref(a, b, ta, tb), rtol=2e-4, atol=2e-3)


@LARGE
@given(n=st.integers(100, 700), n_in=st.integers(GEMM_KC + 1, 900), n_out=st.integers(1, 200), seed=seeds)
def test_large_dense_matches_reference(n, n_in, n_out, seed):
    x, w, dy = _normal(seed, (n, n_in)), _normal(seed + 1, (n_in, n_out), n_in ** -0.5), _normal(seed + 2, (n, n_out))
    b = _normal(seed + 3, (n_out,))
    np.testing.assert_allclose(K.dense_forward(x, w, b), dense_forward_ref(x, w, b), **TOL)
    dx, dw, db = K.dense_backward(dy, x, w)
    rdx, rdw, rdb = dense_backward_ref(dy, x, w)
    np.testing.assert_allclose(dx, rdx, **TOL)
    np.testing.assert_allclose(dw, rdw, rtol=2e-4, atol=2e-3)
    np.testing.assert_allclose(db, rdb, rtol=2e-4, atol=2e-3)
