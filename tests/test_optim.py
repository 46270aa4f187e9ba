import numpy as np
import pytest

import cnnlite
from cnnlite import _kernels as K
import reference_ops as ref

SHAPES = [(1,), (7,), (3, 3, 1, 16), (129, 10), (40000,)]


@pytest.fixture
def threads():
    old = cnnlite.get_num_threads()
    yield
    cnnlite.set_num_threads(old)


def state(shape, rng, scale=1.0):
    return (scale * rng.standard_normal(shape)).astype(np.float32)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("lr,beta1,beta2,eps", [(1e-3, 0.9, 0.999, 1e-7), (0.05, 0.5, 0.9, 1e-3)])
def test_adam_follows_keras_over_several_steps(shape, lr, beta1, beta2, eps, rng):
    w = state(shape, rng)
    m = np.zeros(shape, np.float32)
    v = np.zeros(shape, np.float32)
    w_ref, m_ref, v_ref = w.copy(), m.copy(), v.copy()
    for t in range(1, 6):
        g = state(shape, rng)
        w_ref, m_ref, v_ref, lr_t = ref.adam_step(w_ref, g, m_ref, v_ref, lr, beta1, beta2, eps, t)
        assert K.adam_update(w, g, m, v, lr_t, beta1, beta2, eps) is None
        np.testing.assert_allclose(m, m_ref, rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(v, v_ref, rtol=1e-6, atol=1e-8)
        np.testing.assert_allclose(w, w_ref, rtol=1e-6, atol=1e-7)
    assert w_ref.dtype == np.float32


def test_adam_first_step_moves_each_weight_by_about_lr(rng):
    w = np.zeros(100, np.float32)
    g = state(100, rng)
    m, v = np.zeros_like(w), np.zeros_like(w)
    lr = 0.01
    lr_t = lr * np.sqrt(1 - 0.999) / (1 - 0.9)
    K.adam_update(w, g, m, v, lr_t, 0.9, 0.999, 1e-7)
    np.testing.assert_allclose(w, -lr * np.sign(g), rtol=1e-3)   # Adam's first step is ~lr * sign(g)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("momentum,nesterov", [(0.0, False), (0.9, False), (0.9, True), (0.5, True)])
def test_sgd_follows_keras_over_several_steps(shape, momentum, nesterov, rng):
    lr = 0.01
    w = state(shape, rng)
    velocity = np.zeros(shape, np.float32) if momentum else None
    w_ref = w.copy()
    v_ref = None if velocity is None else velocity.copy()
    for _ in range(5):
        g = state(shape, rng)
        w_ref, v_ref = ref.sgd_step(w_ref, g, v_ref, lr, momentum, nesterov)
        K.sgd_update(w, g, velocity, lr, momentum, nesterov)
        np.testing.assert_allclose(w, w_ref, rtol=1e-6, atol=1e-7)
        if velocity is not None:
            np.testing.assert_allclose(velocity, v_ref, rtol=1e-6, atol=1e-8)


def test_plain_sgd_is_exact(rng):
    w, g = state(50, rng), state(50, rng)
    expected = w - g * np.float32(0.1)
    K.sgd_update(w, g, None, 0.1, 0.0, False)
    np.testing.assert_array_equal(w, expected)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("lr,rho,eps", [(1e-3, 0.9, 1e-7), (0.1, 0.5, 1e-3)])
@pytest.mark.parametrize("momentum,centered", [(0.0, False), (0.9, False), (0.0, True), (0.5, True)])
def test_rmsprop_follows_keras_over_several_steps(shape, lr, rho, eps, momentum, centered, rng):
    w = state(shape, rng)
    acc = np.zeros(shape, np.float32)
    mom = np.zeros(shape, np.float32) if momentum else None
    mean_grad = np.zeros(shape, np.float32) if centered else None
    expected = [w.copy(), acc.copy(), None if mom is None else mom.copy(), None if mean_grad is None else mean_grad.copy()]
    for _ in range(5):
        g = state(shape, rng)
        expected = ref.rmsprop_step_full(expected[0], g, expected[1], lr, rho, eps, momentum, expected[2], expected[3])
        K.rmsprop_update(w, g, acc, lr, rho, eps, momentum=momentum, mom=mom, mean_grad=mean_grad)
        np.testing.assert_allclose(acc, expected[1], rtol=1e-6, atol=1e-9)
        np.testing.assert_allclose(w, expected[0], rtol=1e-6, atol=1e-7)
        if mom is not None:
            np.testing.assert_allclose(mom, expected[2], rtol=1e-6, atol=1e-8)
        if mean_grad is not None:
            np.testing.assert_allclose(mean_grad, expected[3], rtol=1e-6, atol=1e-8)


def test_optimizers_are_bitwise_identical_for_1_and_2_threads(rng, threads):
    shape = (3, 3, 64, 64)   # 36864 elements: several chunks
    g = state(shape, rng)
    start = [state(shape, rng) for _ in range(3)]
    results = []
    for n in (1, 2):
        cnnlite.set_num_threads(n)
        w, m, v = (a.copy() for a in start)
        K.adam_update(w, g, m, np.abs(v), 1e-3, 0.9, 0.999, 1e-7)
        ws, vs = start[0].copy(), start[1].copy()
        K.sgd_update(ws, g, vs, 0.01, 0.9, True)
        wr, acc, mom, mg = start[0].copy(), np.abs(start[2]), start[1].copy(), 0.1 * start[2]
        K.rmsprop_update(wr, g, acc, 1e-3, 0.9, 1e-7, momentum=0.9, mom=mom, mean_grad=mg)
        results.append([w, m, ws, vs, wr, acc, mom, mg])
    for one, two in zip(*results):
        assert one.tobytes() == two.tobytes()


# --- argument checking --------------------------------------------------------------------------------------------

def test_adam_rejects_bad_arguments():
    w, g, m, v = (np.zeros(4, np.float32) for _ in range(4))
    with pytest.raises(ValueError, match=r"w and v must have the same shape, got \(4,\) and \(5,\)"):
        K.adam_update(w, g, m, np.zeros(5, np.float32), 1e-3, 0.9, 0.999, 1e-7)
    with pytest.raises(TypeError, match="m must have dtype float32, got float64"):
        K.adam_update(w, g, m.astype(np.float64), v, 1e-3, 0.9, 0.999, 1e-7)
    with pytest.raises(ValueError, match=r"beta1 must be in \[0.0, 1.0\), got 1.0"):
        K.adam_update(w, g, m, v, 1e-3, 1.0, 0.999, 1e-7)
    for bad in (float("nan"), float("inf"), -1e-3):
        with pytest.raises(ValueError, match=r"lr_t must be in \[0.0, inf\)"):
            K.adam_update(w, g, m, v, bad, 0.9, 0.999, 1e-7)
    with pytest.raises(TypeError, match="eps must be a float"):
        K.adam_update(w, g, m, v, 1e-3, 0.9, 0.999, None)
    readonly = np.zeros(4, np.float32)
    readonly.flags.writeable = False
    with pytest.raises(ValueError, match="w must be writeable"):
        K.adam_update(readonly, g, m, v, 1e-3, 0.9, 0.999, 1e-7)
    with pytest.raises(ValueError, match="m must be C-contiguous"):
        K.adam_update(w, g, np.zeros(8, np.float32)[::2], v, 1e-3, 0.9, 0.999, 1e-7)


def test_sgd_rejects_bad_arguments():
    w, g = np.zeros(4, np.float32), np.zeros(4, np.float32)
    with pytest.raises(ValueError, match="velocity is required when momentum != 0"):
        K.sgd_update(w, g, None, 0.01, 0.9, False)
    with pytest.raises(ValueError, match="w and g must have the same shape"):
        K.sgd_update(w, np.zeros(3, np.float32), None, 0.01, 0.0, False)
    with pytest.raises(ValueError, match=r"momentum must be in \[0.0, 1.0\]"):
        K.sgd_update(w, g, np.zeros(4, np.float32), 0.01, -0.5, False)
    with pytest.raises(TypeError, match="nesterov must be a bool"):
        K.sgd_update(w, g, None, 0.01, 0.0, "yes")
    with pytest.raises(ValueError, match="lr must be in"):
        K.sgd_update(w, g, None, -1.0, 0.0, False)


def test_rmsprop_rejects_bad_arguments():
    w, g = np.zeros(4, np.float32), np.zeros(4, np.float32)
    with pytest.raises(ValueError, match="w and acc must have the same shape"):
        K.rmsprop_update(w, g, np.zeros(2, np.float32), 0.01, 0.9, 1e-7)
    with pytest.raises(ValueError, match=r"rho must be in \[0.0, 1.0\)"):
        K.rmsprop_update(w, g, np.zeros(4, np.float32), 0.01, 1.0, 1e-7)
    with pytest.raises(TypeError, match="acc must be a numpy.ndarray"):
        K.rmsprop_update(w, g, [0.0] * 4, 0.01, 0.9, 1e-7)
    acc = np.zeros(4, np.float32)
    with pytest.raises(ValueError, match=r"mom is required when momentum != 0 \(momentum=0.9\)"):
        K.rmsprop_update(w, g, acc, 0.01, 0.9, 1e-7, momentum=0.9)
    with pytest.raises(ValueError, match="w and mean_grad must have the same shape"):
        K.rmsprop_update(w, g, acc, 0.01, 0.9, 1e-7, mean_grad=np.zeros(5, np.float32))
    with pytest.raises(ValueError, match=r"momentum must be in \[0.0, 1.0\]"):
        K.rmsprop_update(w, g, acc, 0.01, 0.9, 1e-7, momentum=1.5, mom=np.zeros(4, np.float32))
