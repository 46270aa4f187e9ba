import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import cnnlite
from cnnlite import _kernels as K

from reference_conv import gemm_ref


def _operands(rng, m, n, k, ta, tb):
    a = rng.standard_normal((k, m) if ta else (m, k)).astype(np.float32)
    b = rng.standard_normal((n, k) if tb else (k, n)).astype(np.float32)
    return a, b


def _assert_close(got, want, k):
    assert got.dtype == np.float32 and got.shape == want.shape
    tol = 1e-5 * max(k, 1) ** 0.5 * 4
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol)


def test_cpu_isa_is_known():
    assert K.cpu_isa() in ("avx512", "avx2", "generic")


@pytest.mark.parametrize("ta", [False, True])
@pytest.mark.parametrize("tb", [False, True])
@pytest.mark.parametrize("m,n,k", [
    (1, 1, 1), (1, 7, 1), (7, 1, 3), (1, 1, 300), (2, 3, 5), (13, 17, 19), (31, 37, 41),
    (12, 32, 256), (13, 33, 257), (11, 31, 255), (97, 10, 128), (64, 144, 32), (5, 300, 7),
    (250, 70, 600),  # several depth blocks, edge tiles on every side
])
def test_gemm_matches_reference(rng, m, n, k, ta, tb):
    a, b = _operands(rng, m, n, k, ta, tb)
    _assert_close(K.gemm(a, b, ta, tb), gemm_ref(a, b, ta, tb), k)


@pytest.mark.parametrize("m,n", [(3, 4), (1, 1), (17, 33)])
def test_gemm_k0_gives_zeros(m, n):
    c = K.gemm(np.empty((m, 0), np.float32), np.empty((0, n), np.float32))
    assert c.shape == (m, n) and not c.any()


@pytest.mark.parametrize("shape_a,shape_b", [((0, 5), (5, 3)), ((4, 5), (5, 0)), ((0, 0), (0, 0))])
def test_gemm_empty_outputs(shape_a, shape_b):
    c = K.gemm(np.ones(shape_a, np.float32), np.ones(shape_b, np.float32))
    assert c.shape == (shape_a[0], shape_b[1])


def test_gemm_large_skinny_conv_shape(rng):
    # The shape class the convolutions produce: many rows, small depth and width.
    a, b = _operands(rng, 3000, 32, 144, False, False)
    _assert_close(K.gemm(a, b), gemm_ref(a, b), 144)


def test_gemm_special_values_propagate():
    a = np.ones((3, 4), np.float32)
    b = np.ones((4, 5), np.float32)
    a[1, 2] = np.nan
    b[0, 4] = np.inf
    c = K.gemm(a, b)
    assert np.isnan(c[1]).all()
    assert np.isinf(c[[0, 2], 4]).all() and np.isfinite(c[[0, 2], :4]).all()


@pytest.mark.parametrize("ta,tb", [(False, False), (True, False), (False, True)])
@pytest.mark.parametrize("m,n,k", [(300, 70, 600), (1000, 33, 144), (40, 50, 3000)])
def test_gemm_bitwise_identical_for_1_and_2_threads(rng, m, n, k, ta, tb):
    a, b = _operands(rng, m, n, k, ta, tb)
    old = cnnlite.get_num_threads()
    try:
        cnnlite.set_num_threads(1)
        c1 = K.gemm(a, b, ta, tb)
        cnnlite.set_num_threads(2)
        c2 = K.gemm(a, b, ta, tb)
    finally:
        cnnlite.set_num_threads(old)
    assert np.array_equal(c1, c2)


@pytest.mark.parametrize("bad,exc,match", [
    (np.ones((3, 4), np.float64), TypeError, "a must have dtype float32"),
    ([[1.0, 2.0]], TypeError, "a must be a numpy.ndarray"),
    (np.ones((3, 4, 1), np.float32), ValueError, "a must be 2-D"),
    (np.ones((4, 6), np.float32)[:, ::2], ValueError, "a must be C-contiguous"),
])
def test_gemm_rejects_bad_a(bad, exc, match):
    with pytest.raises(exc, match=match):
        K.gemm(bad, np.ones((4, 2), np.float32))


def test_gemm_rejects_inner_mismatch():
    with pytest.raises(ValueError, match="inner dimensions differ"):
        K.gemm(np.ones((3, 4), np.float32), np.ones((5, 2), np.float32))
    with pytest.raises(ValueError, match="inner dimensions differ"):
        K.gemm(np.ones((3, 4), np.float32), np.ones((4, 2), np.float32), trans_a=True)


def test_gemm_rejects_bad_b():
    with pytest.raises(TypeError, match="b must have dtype float32"):
        K.gemm(np.ones((3, 4), np.float32), np.ones((4, 2), np.int32))


_ISA_SCRIPT = textwrap.dedent("""
    import sys
    import numpy as np
    from cnnlite import _kernels as K
    want = sys.argv[1]
    assert K.get_isa() == want and K.cpu_isa() == want, (K.get_isa(), K.cpu_isa())
    rng = np.random.default_rng(0)
    for m, n, k in [(1, 1, 1), (13, 17, 19), (250, 70, 600), (7, 33, 5)]:
        for ta in (False, True):
            for tb in (False, True):
                a = rng.standard_normal((k, m) if ta else (m, k)).astype(np.float32)
                b = rng.standard_normal((n, k) if tb else (k, n)).astype(np.float32)
                ref = (a.T if ta else a).astype(np.float64) @ (b.T if tb else b).astype(np.float64)
                np.testing.assert_allclose(K.gemm(a, b, ta, tb), ref, rtol=1e-4, atol=1e-4 * k ** 0.5)
    x = rng.standard_normal((3, 9, 8, 5)).astype(np.float32)
    w = rng.standard_normal((3, 2, 5, 7)).astype(np.float32)
    bias = rng.standard_normal(7).astype(np.float32)
    y = K.conv2d_forward(x, w, bias, 2, 1, 1, 1, 0, 1)
    assert y.shape == (3, 5, 8, 7)
    xp = np.pad(x.astype(np.float64), ((0, 0), (1, 1), (0, 1), (0, 0)))
    ref = sum(np.einsum("nhwc,co->nhwo", xp[:, i:i + 9:2, j:j + 8, :], w[i, j]) for i in range(3) for j in range(2))
    np.testing.assert_allclose(y, ref + bias, rtol=1e-4, atol=1e-4)
    # the fused ReLU epilogue: indirect conv, pointwise conv, several depth blocks, a packed a-block
    np.testing.assert_array_equal(K.conv2d_forward(x, w, bias, 2, 1, 1, 1, 0, 1, relu=True), np.maximum(y, 0))
    w1 = rng.standard_normal((1, 1, 5, 7)).astype(np.float32)
    np.testing.assert_array_equal(K.conv2d_forward(x, w1, bias, 1, 1, 0, 0, 0, 0, relu=True),
                                  np.maximum(K.conv2d_forward(x, w1, bias, 1, 1, 0, 0, 0, 0), 0))
    for n, n_in, n_out in [(250, 600, 70), (40, 600, 350), (5, 3, 9)]:
        xd = rng.standard_normal((n, n_in)).astype(np.float32)
        wd = rng.standard_normal((n_in, n_out)).astype(np.float32)
        bd = rng.standard_normal(n_out).astype(np.float32)
        np.testing.assert_array_equal(K.dense_forward(xd, wd, bd, relu=True),
                                      np.maximum(K.dense_forward(xd, wd, bd), 0))
    # backward with kernel rows of 21 floats (indirect weight-gradient kernel, tiles straddling kernel rows)
    x = rng.standard_normal((2, 7, 6, 7)).astype(np.float32)
    w = rng.standard_normal((3, 3, 7, 5)).astype(np.float32)
    dy = rng.standard_normal((2, 7, 6, 5)).astype(np.float32)
    dx, dw, db = K.conv2d_backward(dy, x, w, 1, 1, 1, 1, 1, 1)
    xp = np.pad(x.astype(np.float64), ((0, 0), (1, 1), (1, 1), (0, 0)))
    ref_dw = np.stack([np.stack([np.einsum("nhwc,nhwo->co", xp[:, i:i + 7, j:j + 6, :], dy) for j in range(3)])
                       for i in range(3)])
    np.testing.assert_allclose(dw, ref_dw, rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(db, dy.sum(axis=(0, 1, 2)), rtol=1e-4, atol=1e-4)
    dxp = np.zeros_like(xp)
    for i in range(3):
        for j in range(3):
            dxp[:, i:i + 7, j:j + 6, :] += np.einsum("nhwo,co->nhwc", dy, w[i, j])
    np.testing.assert_allclose(dx, dxp[:, 1:8, 1:7, :], rtol=1e-4, atol=1e-4)
    print(K.get_isa(), K.cpu_isa())
""")


@pytest.mark.parametrize("var", ["CNNLITE_ISA", "CNNLITE_GEMM_ISA"])
@pytest.mark.parametrize("isa", ["generic", "avx2"])
def test_other_micro_kernels_via_environment(tmp_path, isa, var):
    # CNNLITE_ISA (or the older CNNLITE_GEMM_ISA) caps every kernel's ISA from cnnlite/config.py at import; run in a
    # fresh process (cwd outside the source tree).
    if isa not in K.available_isas():
        pytest.skip(f"this CPU lacks {isa} (levels: {K.available_isas()})")
    script = tmp_path / "isa_check.py"
    script.write_text(_ISA_SCRIPT)
    # Import the very package under test (installed in CI, the source tree in development).
    package_root = os.path.dirname(os.path.dirname(os.path.abspath(cnnlite.__file__)))
    env = {k: v for k, v in os.environ.items() if k not in ("CNNLITE_ISA", "CNNLITE_GEMM_ISA", "CNNLITE_OPS_ISA")}
    env.update({var: isa, "PYTHONPATH": package_root})
    out = subprocess.run([sys.executable, str(script), isa], env=env, cwd=tmp_path, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == [isa, isa]


def test_set_isa_caps_every_kernel_and_only_downgrades():
    levels = K.available_isas()
    assert levels[-1] == "generic" and set(levels) <= {"avx512", "avx2", "generic"}
    previous = K.set_isa("generic")
    try:
        assert K.get_isa() == "generic" and K.cpu_isa() == "generic"  # the GEMM micro-kernel follows the switch
        for level in levels:
            assert K.set_isa(level) in levels
            assert K.get_isa() == level and K.cpu_isa() == level
        with pytest.raises(ValueError, match="'avx512', 'avx2' or 'generic', got 'sse'"):
            K.set_isa("sse")
        with pytest.raises(TypeError, match="name must be a str"):
            K.set_isa(None)
        if "avx512" not in levels:
            with pytest.raises(ValueError, match="does not support ISA 'avx512'"):
                K.set_isa("avx512")
    finally:
        K.set_isa(previous)
    assert K.get_isa() == previous


from hypothesis import given, settings, strategies as st


@settings(max_examples=80, deadline=None)
@given(st.integers(1, 70), st.integers(1, 150), st.integers(0, 300), st.booleans(), st.booleans())
def test_gemm_random_shapes_match_reference(m, n, k, ta, tb):
    rng = np.random.default_rng(m * 100003 + n * 1009 + k)
    a, b = _operands(rng, m, n, k, ta, tb)
    _assert_close(K.gemm(a, b, ta, tb), gemm_ref(a, b, ta, tb), k)
