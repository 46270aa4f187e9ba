"""The bfloat16 GEMM of mixed precision (cpp/gemm_bf16.h): operands rounded to bfloat16 (nearest even), products
accumulated in float32 in vdpbf16ps's order; the AVX512_BF16 and portable kernels give the same bits, and so does
every thread count."""

import numpy as np
import pytest

import cnnlite
from cnnlite import _kernels as K
from settings import isa, threads

HAS_BF16 = K.cpu_has_avx512_bf16() and "avx512" in K.available_isas()


def bf16(x):
    """float32 -> bfloat16 (as float32), round to nearest even, NaN quiet, subnormals to signed zero."""
    u = np.ascontiguousarray(x, np.float32).view(np.uint32).astype(np.uint64)
    rounded = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16) << 16
    out = rounded.astype(np.uint32)
    nan = (u & 0x7FFFFFFF) > 0x7F800000
    out[nan] = (((u[nan] >> 16) | 0x40) << 16).astype(np.uint32)
    sub = (u & 0x7F800000) == 0
    out[sub] = (u[sub] & 0x80000000).astype(np.uint32)
    return out.view(np.float32)


def emulate(a, b):
    """The vdpbf16ps order in NumPy float32: per k-pair, acc += a_hi * b_hi, then acc += a_lo * b_lo, each rounded,
    subnormal results flushed."""
    a, b = bf16(a), bf16(b)
    k = a.shape[1]
    if k % 2:
        a = np.concatenate([a, np.zeros((a.shape[0], 1), np.float32)], 1)
        b = np.concatenate([b, np.zeros((1, b.shape[1]), np.float32)], 0)
    acc = np.zeros((a.shape[0], b.shape[1]), np.float32)
    tiny = np.finfo(np.float32).tiny

    def ftz(x):
        return np.where(np.abs(x) < tiny, np.copysign(np.float32(0), x), x).astype(np.float32)
    for q in range(a.shape[1] // 2):
        for p in (2 * q + 1, 2 * q):
            acc = ftz(acc + np.outer(a[:, p], b[p, :]).astype(np.float32))
    return acc


def bits(x):
    return np.ascontiguousarray(x).view(np.uint32)


SHAPES = [(1, 1, 1), (2, 3, 5), (13, 17, 19), (12, 32, 2), (13, 33, 3), (25, 16, 40), (7, 48, 64), (40, 10, 128)]


@pytest.mark.parametrize("m,n,k", SHAPES)
def test_bitwise_equal_to_the_vdpbf16ps_order_emulated_in_numpy(rng, m, n, k):
    a = rng.standard_normal((m, k)).astype(np.float32)
    b = rng.standard_normal((k, n)).astype(np.float32)
    assert np.array_equal(bits(K.gemm_bf16(a, b)), bits(emulate(a, b)))


@pytest.mark.parametrize("ta", [False, True])
@pytest.mark.parametrize("tb", [False, True])
@pytest.mark.parametrize("m,n,k", [(97, 10, 128), (250, 70, 600), (1000, 128, 1600)])
def test_close_to_the_float64_product_of_the_rounded_operands(rng, m, n, k, ta, tb):
    a = rng.standard_normal((m, k)).astype(np.float32)
    b = rng.standard_normal((k, n)).astype(np.float32)
    ref = bf16(a).astype(np.float64) @ bf16(b).astype(np.float64)
    got = K.gemm_bf16(np.ascontiguousarray(a.T) if ta else a, np.ascontiguousarray(b.T) if tb else b, ta, tb)
    scale = np.abs(bf16(a)).astype(np.float64) @ np.abs(bf16(b)).astype(np.float64)
    assert got.dtype == np.float32 and got.shape == (m, n)
    assert np.all(np.abs(got - ref) <= k * 2.0 ** -24 * scale + 1e-30)
    # and the float32 product of the unrounded operands only to bfloat16's precision (8 bits)
    assert np.abs(got - a.astype(np.float64) @ b).max() <= 2.0 ** -7 * scale.max()


def test_transposed_operands_give_the_same_bits(rng):
    a, b = rng.standard_normal((37, 51)).astype(np.float32), rng.standard_normal((51, 45)).astype(np.float32)
    c = K.gemm_bf16(a, b)
    assert np.array_equal(bits(c), bits(K.gemm_bf16(np.ascontiguousarray(a.T), b, True, False)))
    assert np.array_equal(bits(c), bits(K.gemm_bf16(a, np.ascontiguousarray(b.T), False, True)))


def test_rounding_of_special_values():
    # a (m, 1) @ [[1]] is bf16(a): ties to even, NaN, infinities, overflow, subnormals flushed
    vals = np.array([1.0, 1.00390625, 1.01171875, 1.0 + 2 ** -8 + 2 ** -20, -2.5, 3.0e38, 3.4e38, np.inf, -np.inf,
                     np.nan, 1e-40, -1e-40, 0.0, -0.0, np.finfo(np.float32).tiny], np.float32)
    out = K.gemm_bf16(vals.reshape(-1, 1), np.ones((1, 1), np.float32))[:, 0]
    want = emulate(vals.reshape(-1, 1), np.ones((1, 1), np.float32))[:, 0]  # bf16(vals), zeros made +0 by acc
    assert np.array_equal(bits(want[~np.isnan(want)]), bits((bf16(vals) + np.float32(0))[~np.isnan(want)]))
    assert np.array_equal(np.isnan(out), np.isnan(want))
    ok = ~np.isnan(want)
    assert np.array_equal(bits(out[ok]), bits(want[ok]))
    assert out[1] == 1.0 and out[2] == 1.015625 and out[3] == 1.0078125  # ties to even, above the tie rounds up
    assert out[6] == np.inf and out[10] == 0 and out[11] == 0 and np.isnan(out[9])


def test_k_zero_and_empty():
    assert np.array_equal(K.gemm_bf16(np.zeros((3, 0), np.float32), np.zeros((0, 4), np.float32)), np.zeros((3, 4)))
    assert K.gemm_bf16(np.zeros((0, 5), np.float32), np.zeros((5, 4), np.float32)).shape == (0, 4)


@pytest.mark.skipif(not HAS_BF16, reason="this CPU has no AVX512_BF16: only the portable kernel runs")
@pytest.mark.parametrize("m,n,k", SHAPES + [(1000, 128, 1600), (1600, 128, 84), (1000, 1600, 128)])
def test_avx512_bf16_and_portable_kernels_give_the_same_bits(rng, m, n, k):
    a = (rng.standard_normal((m, k)) * rng.choice([1e-3, 1.0, 1e3], (m, k))).astype(np.float32)
    b = rng.standard_normal((k, n)).astype(np.float32)
    assert K.gemm_bf16_isa() == "avx512_bf16"
    hw = K.gemm_bf16(a, b)
    for level in ("avx2", "generic"):
        with isa(level):
            assert K.gemm_bf16_isa() == "portable"
            assert np.array_equal(bits(hw), bits(K.gemm_bf16(a, b))), level


def test_the_isa_cap_selects_the_portable_kernel():
    with isa("generic"):
        assert K.gemm_bf16_isa() == "portable"
    assert K.gemm_bf16_isa() == ("avx512_bf16" if HAS_BF16 else "portable")


def test_dense_bf16_matches_the_gemm_and_keeps_float32_bias_and_relu(rng):
    x, w = rng.standard_normal((50, 40)).astype(np.float32), rng.standard_normal((40, 30)).astype(np.float32)
    b, dy = rng.standard_normal(30).astype(np.float32), rng.standard_normal((50, 30)).astype(np.float32)
    z = K.gemm_bf16(x, w)
    y = K.dense_bf16_forward(x, w, b, relu=True)
    assert np.array_equal(bits(y), bits(np.maximum(z + b, 0)))
    assert np.array_equal(bits(K.dense_bf16_forward(x, w, None)), bits(z))
    dx, dw, db = K.dense_bf16_backward(dy, x, w)
    assert np.array_equal(bits(dx), bits(K.gemm_bf16(dy, w, False, True)))
    assert np.array_equal(bits(dw), bits(K.gemm_bf16(x, dy, True, False)))
    assert np.array_equal(bits(db), bits(K.dense_backward(dy, x, w)[2]))  # float32, the fp32 kernel's own sum
    dz = dy * (y > 0)
    dx2, dw2, db2 = K.dense_bf16_backward(dy, x, w, y=y)
    assert np.array_equal(bits(dx2), bits(K.gemm_bf16(dz, w, False, True)))
    assert np.array_equal(bits(dw2), bits(K.gemm_bf16(x, dz, True, False)))
    assert np.array_equal(bits(db2), bits(K.dense_backward(dy, x, w, y=y)[2]))
    assert K.dense_bf16_backward(dy, x, w, need_dx=False, need_db=False, need_dw=False) == (None, None, None)


@pytest.mark.parametrize("m,n,k", [(1000, 128, 1600), (1600, 128, 84), (1000, 1600, 128), (333, 20, 77)])
def test_bitwise_identical_at_1_to_4_threads(rng, m, n, k):
    a = rng.standard_normal((m, k)).astype(np.float32)
    b = rng.standard_normal((k, n)).astype(np.float32)
    with threads(1):
        ref = K.gemm_bf16(a, b)
    for t in (2, 3, 4):
        with threads(t):
            assert np.array_equal(bits(K.gemm_bf16(a, b)), bits(ref)), t


@pytest.mark.skipif(not HAS_BF16, reason="this CPU has no AVX512_BF16: only the portable kernel runs")
@pytest.mark.parametrize("ta", [False, True])
@pytest.mark.parametrize("tb", [False, True])
def test_hardware_and_portable_rounding_agree_on_special_values(rng, ta, tb):
    """vcvtne2ps2bf16 / vcvtneps2bf16 (the AVX512_BF16 packing) and bf16_round (the portable one): the same bits for
    ties, overflow, infinities, NaNs, subnormals and zeros, seen through a product with a one-hot operand."""
    special = np.array([1.00390625, 1.01171875, -2.5, 3.39e38, 3.4028235e38, np.inf, -np.inf, 1e-40, -1e-40, 0.0,
                        -0.0, 1.1754944e-38, 1.1754942e-38, 65504.0, 1.0 + 2 ** -8 + 2 ** -23], np.float32)
    nan_bits = np.array([0x7FC00000, 0x7F800001, 0xFFA00001, 0x7FFFFFFF], np.uint32).view(np.float32)
    vals = np.concatenate([special, nan_bits, rng.standard_normal(45).astype(np.float32)])
    one = np.ones((1, 1), np.float32)
    col, row = vals.reshape(-1, 1), vals.reshape(1, -1)
    cases = [((row if ta else col), one, ta, False),     # the values as a: k = 1, c[i] = bf16(v[i])
             (one, (col if tb else row), False, tb)]     # as b
    for args in cases:
        hw = K.gemm_bf16(*args)
        with isa("generic"):
            portable = K.gemm_bf16(*args)
        assert np.array_equal(np.isnan(hw), np.isnan(portable)) and np.isnan(hw).sum() == 4
        ok = ~np.isnan(hw)
        assert np.array_equal(bits(hw[ok]), bits(portable[ok]))
        assert np.array_equal(bits(hw[ok]), bits((bf16(vals).reshape(hw.shape) + np.float32(0))[ok]))


# ----- Winograd with bfloat16 products (conv2d_* precision='bfloat16') ---------------------------------------------

def _conv_case(rng, n=3, h=9, cin=5, cout=7):
    x = rng.standard_normal((n, h, h, cin)).astype(np.float32)
    w = (rng.standard_normal((3, 3, cin, cout)) * 0.3).astype(np.float32)
    b = rng.standard_normal(cout).astype(np.float32)
    dy = rng.standard_normal((n, h - 2, h - 2, cout)).astype(np.float32)
    return x, w, b, dy


def _winograd_bf16(x, w, b, dy, gate=None):
    h = x.shape[1]
    y = K.conv2d_forward(x, w, b, 1, 1, 0, 0, 0, 0, relu=True, algo="winograd", precision="bfloat16")
    gate = y if gate is None else gate
    dx = K.conv2d_backward_input(dy, w, h, h, 1, 1, 0, 0, 0, 0, y=gate, algo="winograd", precision="bfloat16")
    dw, db = K.conv2d_backward_weights(dy, x, 3, 3, 1, 1, 0, 0, 0, 0, y=gate, algo="winograd", precision="bfloat16")
    return y, dx, dw, db


@pytest.mark.parametrize("shape", [(3, 9, 5, 7), (2, 12, 16, 32), (2, 8, 32, 64), (1, 5, 1, 17)])
def test_winograd_bf16_is_close_to_float32_at_bfloat16_precision(rng, shape):
    x, w, b, dy = _conv_case(rng, *shape)
    h = x.shape[1]
    y32 = K.conv2d_forward(x, w, b, 1, 1, 0, 0, 0, 0, relu=True, algo="gemm")
    y, dx, dw, db = _winograd_bf16(x, w, b, dy, gate=y32)  # the same ReLU mask for both
    dx32 = K.conv2d_backward_input(dy, w, h, h, 1, 1, 0, 0, 0, 0, y=y32, algo="gemm")
    dw32, db32 = K.conv2d_backward_weights(dy, x, 3, 3, 1, 1, 0, 0, 0, 0, y=y32, algo="gemm")
    for got, want in ((y, y32), (dx, dx32), (dw, dw32)):
        assert np.abs(got - want).max() <= 2e-2 * np.abs(want).max()  # bfloat16 operands: ~3 significant digits
    mask_agrees = (y > 0) == (y32 > 0)
    assert mask_agrees.mean() > 0.99
    # the weight gradient's products take bfloat16 operands too when asked; the bias gradient is float32
    np.testing.assert_allclose(db, db32, rtol=1e-4, atol=1e-4 * np.abs(db32).max())


def test_winograd_bf16_differs_from_float32_and_its_forward_is_the_bf16_products(rng):
    x, w, b, dy = _conv_case(rng, 2, 6, 4, 3)
    y = K.conv2d_forward(x, w, None, 1, 1, 0, 0, 0, 0, algo="winograd", precision="bfloat16")
    assert not np.array_equal(y, K.conv2d_forward(x, w, None, 1, 1, 0, 0, 0, 0, algo="winograd"))
    assert np.array_equal(K.conv2d_forward(x, w, None, 1, 1, 0, 0, 0, 0, algo="winograd", precision="float32"),
                          K.conv2d_forward(x, w, None, 1, 1, 0, 0, 0, 0, algo="winograd"))


@pytest.mark.skipif(not HAS_BF16, reason="this CPU has no AVX512_BF16: only the portable kernel runs")
def test_winograd_bf16_hardware_and_portable_give_the_same_bits(rng):
    case = _conv_case(rng, 4, 14, 16, 32)
    hw = _winograd_bf16(*case)
    # the transforms are additions only: the same bits on every level; the products: the bf16 kernels
    with isa("avx2"):
        portable = _winograd_bf16(*case)
    for a, b in zip(hw, portable):
        assert np.array_equal(bits(a), bits(b))


def test_winograd_bf16_is_bitwise_identical_at_1_to_4_threads(rng):
    case = _conv_case(rng, 16, 26, 16, 32)
    with threads(1):
        ref = _winograd_bf16(*case)
    for t in (2, 3, 4):
        with threads(t):
            got = _winograd_bf16(*case)
        assert all(np.array_equal(bits(a), bits(b)) for a, b in zip(ref, got)), t


@pytest.mark.parametrize("call", ["forward", "backward_input", "backward_weights", "backward"])
def test_conv2d_precision_argument_is_checked(rng, call):
    x, w, b, dy = _conv_case(rng)
    calls = {
        "forward": lambda **kw: K.conv2d_forward(x, w, b, 1, 1, 0, 0, 0, 0, **kw),
        "backward_input": lambda **kw: K.conv2d_backward_input(dy, w, 9, 9, 1, 1, 0, 0, 0, 0, **kw),
        "backward_weights": lambda **kw: K.conv2d_backward_weights(dy, x, 3, 3, 1, 1, 0, 0, 0, 0, **kw),
        "backward": lambda **kw: K.conv2d_backward(dy, x, w, 1, 1, 0, 0, 0, 0, **kw)}
    f = calls[call]
    for bad in ("bf16", "float16", 3, True):
        with pytest.raises(ValueError, match="precision must be None, 'float32' or 'bfloat16'"):
            f(precision=bad)
    algo = {"backward": {"algo_input": "gemm", "algo_weights": "gemm"}}.get(call, {"algo": "gemm"})
    with pytest.raises(ValueError, match="precision 'bfloat16' needs algo 'winograd'"):
        f(precision="bfloat16", **algo)
