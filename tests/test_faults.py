"""Faults: sizes whose byte count overflows or cannot be allocated, NaN and inf in the data, absurd thread counts.

None of them may crash the process or hang; each gives a built-in exception or a well-defined (NaN-propagating)
result.
"""
import numpy as np
import pytest

import cnnlite
from cnnlite import _kernels as K

MAX_EXTENT = 2**31 - 1


def f32(*shape):
    return np.random.default_rng(0).standard_normal(shape).astype(np.float32)


# --- sizes that overflow 64-bit arithmetic or cannot be allocated --------------------------------------------------

HUGE = [
    # Pads/strides/pool sizes beyond 2**31 - 1: sums of them would overflow int64 inside the bindings and kernels.
    (lambda: K.conv2d_forward(f32(1, 3, 3, 1), f32(2, 2, 1, 1), None, 1, 1, 2**62, 2**62, 0, 0), "pad_top"),
    (lambda: K.conv2d_forward(f32(1, 3, 3, 1), f32(2, 2, 1, 1), None, 1, 1, 0, 0, 0, 2**70), "pad_right"),
    (lambda: K.conv2d_backward(f32(1, 2, 2, 1), f32(1, 3, 3, 1), f32(2, 2, 1, 1), 2**63, 1, 0, 0, 0, 0), "sh"),
    (lambda: K.maxpool2d_forward(f32(1, 3, 3, 1), 2**62, 1, 1, 1, 2**62 - 1, 2**62 - 1, 0, 0), "ph"),
    (lambda: K.avgpool2d_forward(f32(1, 3, 3, 1), 2, 2, 2**63, 1, 0, 0, 0, 0), "sh"),
    (lambda: K.avgpool2d_backward(f32(1, 1, 1, 1), 2**62, 2**62, 2**62, 2**62, 1, 1, 0, 0, 0, 0), r"\bh\b"),
    (lambda: K.maxpool2d_backward(f32(1, 1, 1, 1), np.zeros((1, 1, 1, 1), np.int32), 2**40, 2**40), r"\bh\b"),
    # An empty batch whose image dimensions are absurd: nothing to allocate, but the kernel's index arithmetic
    # (h * w * channels) would overflow; the kernel's own checks reject it.
    (lambda: K.conv2d_forward(np.empty((0, 2**40, 2**20, 1), np.float32), f32(2, 2, 1, 1), None, 1, 1, 0, 0, 0, 0),
     "exceeds 2147483647"),
    (lambda: K.maxpool2d_forward(np.empty((0, 2**40, 2**20, 1), np.float32), 2, 2, 2, 2, 0, 0, 0, 0),
     "input height"),
]


@pytest.mark.parametrize("call, name", HUGE, ids=[h[1] for h in HUGE])
def test_sizes_that_overflow_are_rejected_by_name(call, name):
    with pytest.raises(ValueError, match=name):
        call()


def test_an_output_too_large_to_represent_is_a_clean_error():
    # Pads within bounds but an output of 2**32 x 2**32 pixels: its byte count overflows; NumPy refuses it.
    with pytest.raises((ValueError, MemoryError)):
        K.conv2d_forward(f32(1, 3, 3, 1), f32(2, 2, 1, 1), None, 1, 1, *([MAX_EXTENT] * 4))
    with pytest.raises((ValueError, MemoryError)):
        K.maxpool2d_backward(f32(1, 1, 1, 1), np.zeros((1, 1, 1, 1), np.int32), 2**31 - 1, 2**31 - 1)


def test_an_output_too_large_to_allocate_is_a_memory_error():
    # 2**41 x 4 float32 = 32 TiB: representable, never allocatable -> MemoryError, not a crash.
    with pytest.raises(MemoryError):
        K.conv2d_forward(f32(1, 3, 3, 1), f32(2, 2, 1, 1), None, 1, 1, 2**31 - 1, 2**31 - 1, 0, 0)


@pytest.mark.parametrize("n", [2**40, 100_000, 257])
def test_absurd_thread_counts_are_refused(n):
    old = cnnlite.get_num_threads()
    with pytest.raises(ValueError, match="n must be an int >= 1 and <= 256"):
        cnnlite.set_num_threads(n)
    assert cnnlite.get_num_threads() == old
    # (100 000 threads used to be accepted, and the next parallel kernel crashed the process.)
    assert K.relu_forward(np.ones(100_000, np.float32)).sum() == 100_000


# --- NaN and inf in the data ---------------------------------------------------------------------------------------

def _poisoned(shape, value, rng, fraction=0.2):
    x = rng.standard_normal(shape).astype(np.float32)
    x[rng.random(shape) < fraction] = value
    return x


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_maxpool_with_nan_or_inf_keeps_argmax_in_its_window(value, rng):
    x = _poisoned((2, 6, 6, 5), value, rng, 0.5)
    x[0, :2, :2, :] = value                      # whole windows of NaN/inf
    y, argmax = K.maxpool2d_forward(x, 2, 2, 2, 2, 0, 0, 0, 0)
    # argmax always points into the window it came from, so backward never writes outside dx
    rows, cols = argmax // 6, argmax % 6
    oi, oj = np.meshgrid(np.arange(3), np.arange(3), indexing="ij")
    assert np.all(rows // 2 == oi[None, :, :, None]) and np.all(cols // 2 == oj[None, :, :, None])
    dx = K.maxpool2d_backward(np.ones_like(y), argmax, 6, 6)
    assert dx.sum() == y.size


@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_nan_and_inf_propagate_through_the_kernels_without_crashing(value, rng):
    x = _poisoned((4, 6, 6, 3), value, rng)
    w = f32(3, 3, 3, 4)
    y = K.conv2d_forward(x, w, None, 1, 1, 1, 1, 1, 1)
    assert not np.all(np.isfinite(y))
    dx, dw, db = K.conv2d_backward(np.ones_like(y), x, w, 1, 1, 1, 1, 1, 1)
    assert dx.shape == x.shape and not np.all(np.isfinite(dw))
    h = K.relu_forward(x)
    assert np.isnan(h).sum() == np.isnan(x).sum()  # relu does not silently turn NaN into 0
    flat = x.reshape(4, -1)
    d = K.dense_forward(flat, f32(flat.shape[1], 10), None)
    assert d.shape == (4, 10)
    y = K.dropout_forward(x, 0.5, 1, 1)
    assert y.shape == x.shape
    w_opt, g = f32(5), np.full(5, value, np.float32)
    K.adam_update(w_opt, g, np.zeros(5, np.float32), np.zeros(5, np.float32), 1e-3, 0.9, 0.999, 1e-7)
    assert not np.all(np.isfinite(w_opt))


def test_nan_logits_give_a_nan_loss_not_a_crash():
    logits = f32(3, 4)
    logits[1, 2] = np.nan
    loss, probs, dlogits = K.softmax_xent(logits, np.eye(4, dtype=np.float32)[[0, 1, 2]])
    assert np.isnan(loss)
    assert np.all(np.isfinite(probs[[0, 2]]))  # other rows are unaffected
    loss, _, _ = K.sparse_softmax_xent(logits, np.array([0, 1, 2]))
    assert np.isnan(loss)


@pytest.mark.parametrize("scale", [1e4, 1e20, 3e38])
def test_softmax_cross_entropy_stays_finite_for_huge_logits(scale, rng):
    logits = np.clip(rng.standard_normal((64, 10)) * scale, -3.4e38, 3.4e38).astype(np.float32)
    logits[0] = [3.4e38, -3.4e38] + [0] * 8                 # the extremes of float32
    labels = rng.integers(0, 10, 64)
    targets = np.eye(10, dtype=np.float32)[labels]
    for loss, probs, dlogits in (K.softmax_xent(logits, targets), K.sparse_softmax_xent(logits, labels)):
        assert np.isfinite(loss) and 0 <= loss <= -np.log(1e-7) + 1e-4
        assert np.all(np.isfinite(probs)) and np.all(np.isfinite(dlogits))
        np.testing.assert_allclose(probs.sum(axis=1), 1, rtol=1e-5)
    y = K.softmax_forward(logits)
    assert np.all(np.isfinite(y))
    assert np.all(np.isfinite(K.sigmoid_forward(logits))) and np.all(np.isfinite(K.tanh_forward(logits)))
