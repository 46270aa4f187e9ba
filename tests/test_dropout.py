import numpy as np
import pytest

import cnnlite
from cnnlite import _kernels as K


@pytest.fixture
def threads():
    old = cnnlite.get_num_threads()
    yield
    cnnlite.set_num_threads(old)


def positive_input(shape, rng):
    return (rng.random(shape) + 0.5).astype(np.float32)   # never 0, so y == 0 means "dropped"


@pytest.mark.parametrize("rate", [0.1, 0.25, 0.5, 0.9])
def test_drop_fraction_and_scaling(rate, rng):
    x = positive_input((200, 1000), rng)
    y = K.dropout_forward(x, rate, 42, 7)
    kept = y != 0
    n = x.size
    assert abs((1 - kept.mean()) - rate) < 5 * np.sqrt(rate * (1 - rate) / n)
    np.testing.assert_array_equal(y[kept], x[kept] * np.float32(1.0 / (1.0 - rate)))
    # the expectation is preserved by inverted scaling
    assert y.sum() / x.sum() == pytest.approx(1.0, abs=0.02)


def test_mask_has_no_visible_structure(rng):
    kept = K.dropout_forward(np.ones(400000, np.float32), 0.5, 3, 0) != 0
    neighbours = np.corrcoef(kept[:-1], kept[1:])[0, 1]
    assert abs(neighbours) < 0.01
    next_step = K.dropout_forward(np.ones(400000, np.float32), 0.5, 3, 1) != 0
    assert abs((kept & next_step).mean() - 0.25) < 0.005   # masks of consecutive steps are independent


def test_rate_zero_is_identity(rng):
    x = rng.standard_normal((3, 4, 5)).astype(np.float32)
    np.testing.assert_array_equal(K.dropout_forward(x, 0.0, 1, 2), x)
    np.testing.assert_array_equal(K.dropout_backward(x, 0, 1, 2), x)


def test_mask_depends_on_seed_and_step_only(rng):
    x = positive_input((64, 100), rng)
    y = K.dropout_forward(x, 0.3, 123, 5)
    np.testing.assert_array_equal(y, K.dropout_forward(x, 0.3, 123, 5))
    np.testing.assert_array_equal(y != 0, K.dropout_forward(positive_input((64, 100), rng), 0.3, 123, 5) != 0)
    np.testing.assert_array_equal(y.ravel() != 0, K.dropout_forward(x.ravel(), 0.3, 123, 5) != 0)   # any shape
    assert not np.array_equal(y != 0, K.dropout_forward(x, 0.3, 123, 6) != 0)
    assert not np.array_equal(y != 0, K.dropout_forward(x, 0.3, 124, 5) != 0)


def test_backward_regenerates_the_forward_mask(rng):
    x = positive_input((32, 12, 12, 8), rng)
    dy = positive_input(x.shape, rng)
    y = K.dropout_forward(x, 0.4, 9, 11)
    dx = K.dropout_backward(dy, 0.4, 9, 11)
    np.testing.assert_array_equal(dx != 0, y != 0)
    np.testing.assert_array_equal(dx, np.where(y != 0, dy * np.float32(1 / 0.6), 0))
    assert np.array_equal(K.dropout_backward(dy, 0.4, 9, 12) != 0, y != 0) is False


@pytest.mark.parametrize("cuts", [(1,), (7, 40), (13, 14, 63)])
def test_rows_with_an_offset_draw_the_whole_batchs_mask(rng, cuts):
    # A process holding rows [r0, r1) of a batch (cnnlite.distributed) passes offset r0 * row size and must get
    # exactly those rows of the mask of the whole batch, forward and backward.
    x = positive_input((64, 5, 3), rng)
    dy = positive_input(x.shape, rng)
    whole = K.dropout_forward(x, 0.35, 77, 3)
    whole_dx = K.dropout_backward(dy, 0.35, 77, 3)
    row = x[0].size
    bounds = (0,) + cuts + (len(x),)
    parts = [K.dropout_forward(x[a:b], 0.35, 77, 3, a * row) for a, b in zip(bounds, bounds[1:])]
    parts_dx = [K.dropout_backward(dy[a:b], 0.35, 77, 3, offset=a * row) for a, b in zip(bounds, bounds[1:])]
    np.testing.assert_array_equal(np.concatenate(parts), whole)
    np.testing.assert_array_equal(np.concatenate(parts_dx), whole_dx)
    assert not np.array_equal(K.dropout_forward(x[cuts[0]:], 0.35, 77, 3) != 0, whole[cuts[0]:] != 0)


def test_large_seeds_and_steps_are_accepted(rng):
    x = positive_input((1000,), rng)
    y = K.dropout_forward(x, 0.5, 2**64 - 1, np.uint64(2**63))
    assert 0.4 < (y != 0).mean() < 0.6


def test_dropout_is_bitwise_identical_for_1_and_2_threads(rng, threads):
    x = rng.standard_normal((128, 12, 12, 64)).astype(np.float32)
    results = []
    for n in (1, 2):
        cnnlite.set_num_threads(n)
        results.append((K.dropout_forward(x, 0.25, 77, 3), K.dropout_backward(x, 0.25, 77, 3)))
    for one, two in zip(*results):
        assert one.tobytes() == two.tobytes()


@pytest.mark.parametrize("fn", [K.dropout_forward, K.dropout_backward])
def test_dropout_rejects_bad_arguments(fn):
    x = np.ones((2, 3), np.float32)
    for rate in (1.0, -0.1, 1.5, float("nan")):
        with pytest.raises(ValueError, match=r"rate must be in \[0, 1\)"):
            fn(x, rate, 0, 0)
    with pytest.raises(TypeError, match="rate must be a float"):
        fn(x, "0.5", 0, 0)
    with pytest.raises(ValueError, match=r"seed must be an int in \[0, 2\*\*64\), got -1"):
        fn(x, 0.5, -1, 0)
    with pytest.raises(ValueError, match=r"step must be an int in \[0, 2\*\*64\)"):
        fn(x, 0.5, 0, 2**64)
    with pytest.raises(TypeError, match="seed must be an int"):
        fn(x, 0.5, 1.5, 0)
    with pytest.raises(TypeError, match="must have dtype float32"):
        fn(x.astype(np.float64), 0.5, 0, 0)
