"""The bfloat16 GEMM of mixed precision (cpp/gemm_bf16.h): operands rounded to bfloat16 (nearest even), products
accumulated in float32 in vdpbf16ps's order; the AVX512_BF16 and portable kernels give the same bits, and so does
every thread count."""
import contextlib

import numpy as np
import pytest

import cnnlite
from cnnlite import _kernels as K

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


@contextlib.contextmanager
def isa(name):
    old = K.set_isa(name)
    try:
        yield
    finally:
        K.set_isa(old)


@contextlib.contextmanager
def threads(n):
    old = cnnlite.get_num_threads()
    cnnlite.set_num_threads(n)
    try:
        yield
    finally:
        cnnlite.set_num_threads(old)


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
