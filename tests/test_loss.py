import math

import numpy as np
import pytest

import cnnlite
from cnnlite import _kernels as K
import reference_ops as ref

SHAPES = [(1, 1), (1, 10), (7, 10), (128, 10), (5, 3)]


@pytest.fixture
def threads():
    old = cnnlite.get_num_threads()
    yield
    cnnlite.set_num_threads(old)


def soft_targets(shape, rng):
    t = rng.random(shape)
    return (t / t.sum(axis=1, keepdims=True)).astype(np.float32)


@pytest.mark.parametrize("shape", SHAPES)
def test_softmax_xent_matches_reference(shape, rng):
    logits = (3 * rng.standard_normal(shape)).astype(np.float32)
    targets = soft_targets(shape, rng)
    loss, probs, dlogits = K.softmax_xent(logits, targets)
    loss_ref, probs_ref, dlogits_ref = ref.softmax_xent(logits.astype(np.float64), targets.astype(np.float64))
    assert isinstance(loss, float)
    assert loss == pytest.approx(loss_ref, rel=1e-5, abs=1e-6)
    np.testing.assert_allclose(probs, probs_ref, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(dlogits, dlogits_ref, rtol=1e-5, atol=1e-8)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", [np.int32, np.int64])
def test_sparse_softmax_xent_equals_one_hot_version(shape, dtype, rng):
    logits = (3 * rng.standard_normal(shape)).astype(np.float32)
    labels = rng.integers(0, shape[1], size=shape[0]).astype(dtype)
    loss, probs, dlogits = K.sparse_softmax_xent(logits, labels)
    dense = K.softmax_xent(logits, ref.one_hot(labels, shape[1]).astype(np.float32))
    assert loss == pytest.approx(dense[0], rel=1e-12)
    np.testing.assert_array_equal(probs, dense[1])
    np.testing.assert_allclose(dlogits, dense[2], rtol=1e-6, atol=1e-9)
    loss_ref, _, dlogits_ref = ref.softmax_xent(logits.astype(np.float64), ref.one_hot(labels, shape[1]))
    assert loss == pytest.approx(loss_ref, rel=1e-5, abs=1e-6)
    np.testing.assert_allclose(dlogits, dlogits_ref, rtol=1e-5, atol=1e-8)


def test_softmax_xent_clips_confident_mistakes():
    logits = np.array([[100.0, -100.0]], dtype=np.float32)     # p(class 1) underflows to 0
    loss, _, dlogits = K.sparse_softmax_xent(logits, np.array([1], np.int32))
    assert loss == pytest.approx(-np.log(1e-7), rel=1e-6)      # log(clip(0)) = log(1e-7), finite
    np.testing.assert_allclose(dlogits, [[1.0, -1.0]])
    loss, _, _ = K.sparse_softmax_xent(logits, np.array([0], np.int32))
    upper = np.float64(np.float32(1) - np.float32(1e-7))         # the clip bound, as float32 has it
    assert loss == pytest.approx(-np.log(upper), rel=1e-9)


def test_softmax_xent_gradient_matches_finite_differences(rng):
    logits = rng.standard_normal((4, 5))
    targets = soft_targets((4, 5), rng)
    _, _, dlogits = K.softmax_xent(logits.astype(np.float32), targets)
    numeric = ref.numerical_grad(lambda v: ref.softmax_xent(v, targets.astype(np.float64))[0], logits)
    np.testing.assert_allclose(dlogits, numeric, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("shape", SHAPES)
def test_xent_on_probabilities_matches_keras_reference(shape, rng):
    probs = rng.random(shape).astype(np.float32) + 0.01     # unnormalised: Keras divides by the row sum
    targets = soft_targets(shape, rng)
    p64, t64 = probs.astype(np.float64), targets.astype(np.float64)
    assert K.xent_forward(probs, targets) == pytest.approx(ref.xent(p64, t64), rel=1e-5, abs=1e-6)
    np.testing.assert_allclose(K.xent_backward(probs, targets), ref.xent_backward(p64, t64), rtol=1e-4, atol=1e-6)


def test_xent_gradient_matches_finite_differences(rng):
    probs = rng.random((3, 4)) + 0.1
    targets = soft_targets((3, 4), rng).astype(np.float64)
    dprobs = K.xent_backward(probs.astype(np.float32), targets.astype(np.float32))
    numeric = ref.numerical_grad(lambda v: ref.xent(v, targets), probs)
    np.testing.assert_allclose(dprobs, numeric, rtol=1e-4, atol=1e-6)


def test_xent_gradient_is_zero_through_clipped_entries():
    probs = np.array([[1e-9, 1.0]], dtype=np.float32)   # q0 is clipped: its own term contributes nothing
    targets = np.array([[1.0, 0.0]], dtype=np.float32)
    assert K.xent_forward(probs, targets) == pytest.approx(-np.log(1e-7), rel=1e-6)
    np.testing.assert_array_equal(K.xent_backward(probs, targets), 0.0)
    np.testing.assert_allclose(K.xent_backward(probs, targets),
                               ref.xent_backward(probs.astype(np.float64), targets.astype(np.float64)), atol=1e-12)


@pytest.mark.parametrize("shape", [(1,), (1, 1), (7, 3), (4, 5, 6), (2, 3, 4, 5)])
def test_mse_matches_keras_reference(shape, rng):
    pred = rng.standard_normal(shape).astype(np.float32)
    targets = rng.standard_normal(shape).astype(np.float32)
    p64, t64 = pred.astype(np.float64), targets.astype(np.float64)
    assert K.mse_forward(pred, targets) == pytest.approx(ref.mse(p64, t64), rel=1e-12)
    np.testing.assert_allclose(K.mse_backward(pred, targets), ref.mse_backward(p64, t64), rtol=1e-6, atol=1e-9)


def test_mse_gradient_matches_finite_differences(rng):
    pred = rng.standard_normal((3, 4))
    targets = rng.standard_normal((3, 4))
    dpred = K.mse_backward(pred.astype(np.float32), targets.astype(np.float32))
    numeric = ref.numerical_grad(lambda v: ref.mse(v, targets.astype(np.float32).astype(np.float64)),
                                 pred.astype(np.float32).astype(np.float64))
    np.testing.assert_allclose(dpred, numeric, rtol=1e-5, atol=1e-7)


def test_losses_are_bitwise_identical_for_1_and_2_threads(rng, threads):
    n, k = 20000, 10    # many row blocks
    logits = (3 * rng.standard_normal((n, k))).astype(np.float32)
    labels = rng.integers(0, k, size=n)
    targets = ref.one_hot(labels, k).astype(np.float32)
    probs = rng.random((n, k)).astype(np.float32)
    results = []
    for threads_used in (1, 2):
        cnnlite.set_num_threads(threads_used)
        loss, p, d = K.softmax_xent(logits, targets)
        sloss, sp, sd = K.sparse_softmax_xent(logits, labels)
        out = [np.float64(loss), p, d, np.float64(sloss), sp, sd,
               np.float64(K.xent_forward(probs, targets)), K.xent_backward(probs, targets),
               np.float64(K.mse_forward(logits, targets)), K.mse_backward(logits, targets)]
        results.append(out)
    for one, two in zip(*results):
        assert one.tobytes() == two.tobytes()


@pytest.mark.parametrize("n", [1, 1000, 1638, 1639, 5000])
@pytest.mark.parametrize("threads_used", [1, 2, 3])
def test_softmax_xent_sums_row_losses_in_fixed_blocks(rng, threads, n, threads_used):
    # The batch loss is a double sum of per-row losses grouped in blocks of 16384 // k rows (each block summed in
    # row order, then the blocks in order), whatever the thread count: the reported loss keeps its bits.
    k = 10
    logits = (3 * rng.standard_normal((n, k))).astype(np.float32)
    targets = soft_targets((n, k), rng)
    targets[::3, 1] = 0.0
    cnnlite.set_num_threads(threads_used)
    loss, probs, _ = K.softmax_xent(logits, targets)
    clipped = np.clip(probs, np.float32(1e-7), np.float32(1 - 1e-7)).astype(np.float64)
    t = targets.astype(np.float64)
    rows = []
    for r in range(n):
        row = 0.0
        for j in range(k):
            if t[r, j] != 0.0:
                row -= t[r, j] * math.log(clipped[r, j])
        rows.append(row)
    block, total = 16384 // k, 0.0
    for r0 in range(0, n, block):
        s = 0.0
        for value in rows[r0:r0 + block]:
            s += value
        total += s
    assert loss == total / n


# --- argument checking --------------------------------------------------------------------------------------------

def test_sparse_labels_out_of_range_name_the_bad_value():
    logits = np.zeros((3, 4), np.float32)
    with pytest.raises(ValueError, match=r"labels\[1\] = 4 is outside \[0, 4\)"):
        K.sparse_softmax_xent(logits, np.array([0, 4, 1], np.int64))
    with pytest.raises(ValueError, match=r"labels\[2\] = -1 is outside \[0, 4\)"):
        K.sparse_softmax_xent(logits, np.array([0, 1, -1], np.int32))


def test_sparse_labels_must_be_integer_vector_of_batch_length():
    logits = np.zeros((3, 4), np.float32)
    with pytest.raises(TypeError, match="labels must have dtype int32 or int64, got float32"):
        K.sparse_softmax_xent(logits, np.zeros(3, np.float32))
    with pytest.raises(TypeError, match="labels must be a numpy.ndarray"):
        K.sparse_softmax_xent(logits, [0, 1, 2])
    with pytest.raises(ValueError, match=r"labels must have shape \(3,\), got \(2,\)"):
        K.sparse_softmax_xent(logits, np.zeros(2, np.int32))
    with pytest.raises(ValueError, match="labels must be C-contiguous"):
        K.sparse_softmax_xent(logits, np.zeros(6, np.int32)[::2])


@pytest.mark.parametrize("fn", [K.softmax_xent, K.xent_forward, K.xent_backward])
def test_dense_target_losses_check_their_arguments(fn):
    a = np.zeros((3, 4), np.float32)
    first = "logits" if fn is K.softmax_xent else "probs"
    with pytest.raises(ValueError, match=f"{first} and targets must have the same shape"):
        fn(a, np.zeros((3, 5), np.float32))
    with pytest.raises(TypeError, match="targets must have dtype float32, got float64"):
        fn(a, a.astype(np.float64))
    with pytest.raises(ValueError, match=f"{first} must be 2-D"):
        fn(a.ravel(), a.ravel())
    with pytest.raises(ValueError, match="at least one row"):
        fn(a[:0], a[:0])


@pytest.mark.parametrize("fn", [K.mse_forward, K.mse_backward])
def test_mse_checks_its_arguments(fn):
    a = np.zeros((3, 4), np.float32)
    with pytest.raises(ValueError, match="pred and targets must have the same shape"):
        fn(a, a.T.copy())
    with pytest.raises(TypeError, match="pred must have dtype float32"):
        fn(a.astype(np.float64), a)
    with pytest.raises(ValueError, match="at least one dimension and one element"):
        fn(np.zeros((3, 0), np.float32), np.zeros((3, 0), np.float32))
