"""take_rows (the shuffled-batch gather) against NumPy's fancy indexing, its checks, and the Batcher using it."""
import numpy as np
import pytest

from cnnlite import _kernels
from cnnlite.engine.data_adapter import Batcher


@pytest.mark.parametrize("shape", [(7,), (50, 3), (300, 28, 28, 1), (2000, 784), (5, 0)])
@pytest.mark.parametrize("dtype", [np.float32, np.int64, np.int32, np.uint8, np.float64])
def test_take_rows_matches_numpy(shape, dtype):
    rng = np.random.default_rng(len(shape) * 100 + shape[0])
    src = (rng.standard_normal(shape) * 100).astype(dtype)
    rows = rng.integers(0, shape[0], size=shape[0] * 2 // 3 + 1).astype(np.int64)
    out = _kernels.take_rows(src, rows)
    assert out.dtype == src.dtype and out.shape == (len(rows),) + shape[1:]
    np.testing.assert_array_equal(out, src[rows])
    buf = np.full_like(out, 7)
    assert _kernels.take_rows(src, rows, buf) is buf
    np.testing.assert_array_equal(buf, src[rows])


def test_take_rows_same_for_one_and_two_threads():
    rng = np.random.default_rng(1)
    src = rng.standard_normal((4000, 784)).astype(np.float32)
    rows = rng.permutation(4000)[:1500]
    before = _kernels.get_num_threads()
    try:
        outs = []
        for t in (1, 2):
            _kernels.set_num_threads(t)
            outs.append(_kernels.take_rows(src, rows))
    finally:
        _kernels.set_num_threads(before)
    np.testing.assert_array_equal(outs[0], src[rows])
    np.testing.assert_array_equal(outs[1], src[rows])


def test_take_rows_empty():
    src = np.arange(12, dtype=np.float32).reshape(4, 3)
    assert _kernels.take_rows(src, np.empty(0, np.int64)).shape == (0, 3)
    assert _kernels.take_rows(np.empty((0, 3), np.float32), np.empty(0, np.int64)).shape == (0, 3)


@pytest.mark.parametrize("bad", [-1, 4, 2**40])
def test_take_rows_rejects_out_of_range_rows(bad):
    src = np.zeros((4, 3), np.float32)
    with pytest.raises(ValueError, match=r"rows\[1\] = .* outside \[0, 4\)"):
        _kernels.take_rows(src, np.array([0, bad, 1], np.int64))
    with pytest.raises(ValueError, match="rows must be empty"):
        _kernels.take_rows(np.zeros((0, 3), np.float32), np.array([0], np.int64))


def test_take_rows_checks_arguments():
    src = np.zeros((4, 3), np.float32)
    rows = np.array([0, 2], np.int64)
    with pytest.raises(TypeError, match="src must be a numpy.ndarray"):
        _kernels.take_rows([[1.0]], rows)
    with pytest.raises(ValueError, match="src must be at least 1-D"):
        _kernels.take_rows(np.zeros((), np.float32), rows)
    with pytest.raises(ValueError, match="src must be C-contiguous"):
        _kernels.take_rows(np.zeros((3, 4), np.float32).T, rows)
    with pytest.raises(TypeError, match="src must hold plain numbers"):
        _kernels.take_rows(np.array([None, 1], dtype=object), rows)
    with pytest.raises(TypeError, match="rows must be a 1-D numpy.ndarray of int64, got int32"):
        _kernels.take_rows(src, rows.astype(np.int32))
    with pytest.raises(TypeError, match="rows must be a 1-D numpy.ndarray of int64"):
        _kernels.take_rows(src, [0, 1])
    with pytest.raises(ValueError, match="rows must be C-contiguous"):
        _kernels.take_rows(src, np.arange(4, dtype=np.int64)[::2])
    with pytest.raises(TypeError, match=r"out must have the dtype of src \(float32\), got float64"):
        _kernels.take_rows(src, rows, np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"out must have shape \(2, 3\), got \(3, 2\)"):
        _kernels.take_rows(src, rows, np.zeros((3, 2), np.float32))
    with pytest.raises(ValueError, match="out must be C-contiguous"):
        _kernels.take_rows(src, rows, np.zeros((3, 2), np.float32).T)
    ro = np.zeros((2, 3), np.float32)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="out must be writeable"):
        _kernels.take_rows(src, rows, ro)


def test_batcher_shuffled_batches_are_the_ordered_rows():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((103, 5, 2)).astype(np.float32)
    y = rng.integers(0, 10, 103)
    yf = np.asfortranarray(rng.standard_normal((103, 4)).astype(np.float32))
    order = rng.permutation(103)
    batcher = Batcher([x, y, yf], 25)
    seen = 0
    for start, stop, (xb, yb, yfb) in batcher.batches(order):
        np.testing.assert_array_equal(xb, x[order[start:stop]])
        np.testing.assert_array_equal(yb, y[order[start:stop]])
        np.testing.assert_array_equal(yfb, yf[order[start:stop]])
        seen += stop - start
    assert seen == 103


def test_batcher_bad_indices_raise():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((500, 8)).astype(np.float32)
    bad = rng.permutation(500)
    bad[170] = 500
    with pytest.raises(ValueError, match=r"rows\[20\] = 500 is outside \[0, 500\)"):
        for _ in Batcher([x], 50).batches(bad):
            pass
