import numpy as np
import pytest

import cnnlite
from cnnlite import _kernels as K
import reference_ops as ref

SHAPES = [(1,), (7,), (3, 5), (2, 3, 4, 5), (1, 1, 1, 16)]
ELEMENTWISE = {
    "relu": (K.relu_forward, K.relu_backward, ref.relu, lambda y: (y > 0).astype(np.float64)),
    "sigmoid": (K.sigmoid_forward, K.sigmoid_backward, ref.sigmoid, lambda y: y * (1 - y)),
    "tanh": (K.tanh_forward, K.tanh_backward, np.tanh, lambda y: 1 - y * y),
}


@pytest.fixture
def threads():
    old = cnnlite.get_num_threads()
    yield
    cnnlite.set_num_threads(old)


@pytest.mark.parametrize("name", list(ELEMENTWISE))
@pytest.mark.parametrize("shape", SHAPES)
def test_elementwise_forward_and_backward_match_reference(name, shape, rng):
    forward, backward, ref_forward, ref_slope = ELEMENTWISE[name]
    x = (3 * rng.standard_normal(shape)).astype(np.float32)
    y = forward(x)
    assert y.shape == x.shape and y.dtype == np.float32
    y_ref = ref_forward(x.astype(np.float64))
    np.testing.assert_allclose(y, y_ref, rtol=2e-6, atol=1e-7)
    dy = rng.standard_normal(shape).astype(np.float32)
    np.testing.assert_allclose(backward(dy, y), dy * ref_slope(y.astype(np.float64)), rtol=2e-6, atol=1e-7)


@pytest.mark.parametrize("name", list(ELEMENTWISE))
def test_elementwise_gradient_matches_finite_differences(name, rng):
    forward, backward, ref_forward, _ = ELEMENTWISE[name]
    x = rng.standard_normal((3, 4))
    x[np.abs(x) < 1e-3] = 0.5   # keep relu away from its kink
    weights = rng.standard_normal(x.shape)
    dx = backward(weights.astype(np.float32), forward(x.astype(np.float32)))
    numeric = ref.numerical_grad(lambda v: (ref_forward(v) * weights).sum(), x)
    np.testing.assert_allclose(dx, numeric, rtol=1e-4, atol=1e-5)


def test_relu_is_exact_and_zero_slope_at_zero():
    x = np.array([-2.0, -0.0, 0.0, 1e-30, 3.5], dtype=np.float32)
    y = K.relu_forward(x)
    np.testing.assert_array_equal(y, np.array([0, 0, 0, 1e-30, 3.5], np.float32))
    np.testing.assert_array_equal(K.relu_backward(np.ones_like(x), y), [0, 0, 0, 1, 1])


def ulp_error(got, want):
    """|got - want| in units of the float32 spacing at want (want in float64)."""
    return np.abs(got.astype(np.float64) - want) / np.spacing(np.abs(want).astype(np.float32)).astype(np.float64)


def test_sigmoid_and_tanh_are_accurate_to_a_few_ulp():
    grid = np.concatenate([np.linspace(-90, 90, 200001), np.geomspace(1e-30, 90, 20001)])
    x = np.concatenate([grid, -grid]).astype(np.float32)
    x64 = x.astype(np.float64)
    s_ref = ref.sigmoid(x64)
    normal = s_ref > np.finfo(np.float32).tiny          # below that the kernel flushes to 0
    assert ulp_error(K.sigmoid_forward(x)[normal], s_ref[normal]).max() <= 4
    assert np.abs(K.sigmoid_forward(x)[~normal]).max() <= np.finfo(np.float32).tiny
    assert ulp_error(K.tanh_forward(x), np.tanh(x64)).max() <= 4


def test_sigmoid_and_tanh_special_values():
    x = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0], np.float32)
    np.testing.assert_array_equal(K.sigmoid_forward(x), [np.nan, 1, 0, 0.5, 0.5])
    np.testing.assert_array_equal(K.tanh_forward(x), [np.nan, 1, -1, 0, 0])


def test_sigmoid_and_tanh_are_stable_for_large_inputs():
    x = np.array([-1e4, -100.0, -30.0, 0.0, 30.0, 100.0, 1e4], dtype=np.float32)
    y = K.sigmoid_forward(x)
    assert np.all(np.isfinite(y))
    np.testing.assert_allclose(y, ref.sigmoid(x.astype(np.float64)), rtol=1e-6, atol=1e-42)  # denormals
    assert y[0] == 0.0 and y[-1] == 1.0 and y[3] == 0.5
    t = K.tanh_forward(x)
    np.testing.assert_array_equal(t[[0, 1, -2, -1]], [-1, -1, 1, 1])


@pytest.mark.parametrize("shape", [(1, 1), (1, 10), (7, 10), (5, 3), (300, 64)])
def test_softmax_matches_reference(shape, rng):
    x = (4 * rng.standard_normal(shape)).astype(np.float32)
    y = K.softmax_forward(x)
    np.testing.assert_allclose(y, ref.softmax(x.astype(np.float64)), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(y.sum(axis=1), 1.0, rtol=1e-5)
    dy = rng.standard_normal(shape).astype(np.float32)
    np.testing.assert_allclose(K.softmax_backward(dy, y), ref.softmax_backward(dy.astype(np.float64), y),
                               rtol=1e-5, atol=1e-6)


def test_softmax_is_stable_for_huge_logits():
    x = np.array([[1e4, 0.0, -1e4], [88.0, 89.0, 90.0], [-1e30, -1e30, -1e30]], dtype=np.float32)
    y = K.softmax_forward(x)
    assert np.all(np.isfinite(y))
    np.testing.assert_allclose(y, ref.softmax(x.astype(np.float64)), rtol=1e-6, atol=1e-30)


def test_softmax_gradient_matches_finite_differences(rng):
    x = rng.standard_normal((3, 5))
    weights = rng.standard_normal(x.shape)
    dx = K.softmax_backward(weights.astype(np.float32), K.softmax_forward(x.astype(np.float32)))
    numeric = ref.numerical_grad(lambda v: (ref.softmax(v) * weights).sum(), x)
    np.testing.assert_allclose(dx, numeric, rtol=1e-4, atol=1e-6)


def test_activations_are_bitwise_identical_for_1_and_2_threads(rng, threads):
    x = rng.standard_normal((64, 12, 12, 64)).astype(np.float32)   # 589824 elements: many chunks
    logits = rng.standard_normal((5000, 10)).astype(np.float32)
    dy = rng.standard_normal(x.shape).astype(np.float32)
    results = []
    for n in (1, 2):
        cnnlite.set_num_threads(n)
        out = []
        for forward, backward, _, _ in ELEMENTWISE.values():
            y = forward(x)
            out += [y, backward(dy, y)]
        s = K.softmax_forward(logits)
        out += [s, K.softmax_backward(logits, s)]
        results.append(out)
    for one, two in zip(*results):
        assert one.tobytes() == two.tobytes()


@pytest.mark.parametrize("fn", [K.relu_forward, K.sigmoid_forward, K.tanh_forward, K.softmax_forward])
def test_forward_rejects_bad_input(fn):
    with pytest.raises(TypeError, match="x must have dtype float32, got float64"):
        fn(np.zeros((2, 3)))
    with pytest.raises(TypeError, match="x must be a numpy.ndarray"):
        fn([[1.0, 2.0]])
    with pytest.raises(ValueError, match="x must be C-contiguous"):
        fn(np.zeros((3, 4), np.float32)[:, ::2])


@pytest.mark.parametrize("fn", [K.relu_backward, K.sigmoid_backward, K.tanh_backward, K.softmax_backward])
def test_backward_rejects_bad_input(fn):
    good = np.zeros((2, 3), np.float32)
    with pytest.raises(ValueError, match=r"dy and y must have the same shape, got \(2, 3\) and \(3, 2\)"):
        fn(good, np.zeros((3, 2), np.float32))
    with pytest.raises(TypeError, match="y must have dtype float32"):
        fn(good, good.astype(np.float16))


def test_softmax_requires_2d():
    with pytest.raises(ValueError, match="x must be 2-D"):
        K.softmax_forward(np.zeros((2, 3, 4), np.float32))
    with pytest.raises(ValueError, match="number of classes"):
        K.softmax_forward(np.zeros((2, 0), np.float32))
