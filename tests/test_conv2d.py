import os
import sys

import numpy as np
import pytest

import cnnlite
from cnnlite import _kernels as K

from reference_conv import (conv2d_backward_ref, conv2d_forward_ref, conv_data, conv_pads, numeric_grad,
                            same_pads)
import conv_algos


@pytest.fixture(autouse=True, params=conv_algos.ALGOS)
def conv(request):
    """Every test here runs once per algorithm ('auto', 'gemm', 'winograd', ...), passed explicitly to the kernels
    (tests/conv_algos.py); a test whose geometry the algorithm does not apply to is skipped with the reason."""
    with conv_algos.forced(request.param) as forced:
        yield forced




# (n, h, w, cin, kh, kw, cout, sh, sw, pads)
CASES = [
    (1, 5, 5, 1, 3, 3, 2, 1, 1, "valid"),
    (2, 7, 6, 3, 3, 3, 4, 1, 1, "same"),
    (3, 8, 8, 16, 3, 3, 5, 2, 2, "same"),        # even size, stride 2: TF puts the extra pad bottom/right
    (2, 9, 7, 3, 2, 3, 16, 2, 1, "same"),        # 2x3 kernel, asymmetric pads
    (1, 11, 10, 1, 5, 5, 3, 1, 1, "same"),
    (2, 12, 9, 3, 5, 5, 7, 2, 2, "valid"),
    (3, 6, 5, 16, 1, 1, 8, 1, 1, "valid"),       # pointwise: the GEMM runs on x directly
    (2, 7, 7, 3, 1, 1, 4, 2, 2, "valid"),        # 1x1 with stride
    (1, 6, 6, 3, 3, 3, 2, 1, 1, (0, 1, 2, 0)),   # explicit asymmetric pads
    (2, 4, 4, 1, 3, 3, 3, 3, 3, (2, 2, 2, 2)),   # pads larger than the stride; windows of pure padding
    (4, 28, 28, 1, 3, 3, 16, 1, 1, "valid"),     # the chapter's first convolution
    (3, 13, 13, 32, 3, 3, 64, 1, 1, "valid"),    # the chapter's third, odd size
    (2, 7, 7, 6, 3, 3, 5, 1, 1, "same"),         # kernel rows of 18 floats: GEMM tiles straddle two rows
    (2, 10, 9, 8, 3, 5, 33, 2, 1, "same"),       # 40-float kernel rows, output channels past a 32-wide tile
]


@pytest.mark.parametrize("case", CASES, ids=str)
@pytest.mark.parametrize("with_bias", [True, False])
@pytest.mark.parametrize("relu", [False, True])
def test_conv2d_forward_matches_reference(conv, rng, case, with_bias, relu):
    n, h, w, cin, kh, kw, cout, sh, sw, mode = case
    x, k, b = conv_data(rng, n, h, w, cin, kh, kw, cout)
    b = b if with_bias else None
    pads = conv_pads(mode, h, w, kh, kw, sh, sw)
    y = conv.conv2d_forward(x, k, b, sh, sw, *pads, relu=relu)
    ref = conv2d_forward_ref(x, k, b, sh, sw, *pads)
    if relu:
        ref = np.maximum(ref, 0.0)
        assert (y >= 0).all() and (y == 0).any() and (y > 0).any()
    assert y.shape == ref.shape and y.dtype == np.float32
    np.testing.assert_allclose(y, ref, rtol=2e-4, atol=2e-4)


def test_conv2d_fused_relu_equals_relu_of_output(conv, rng):
    # The fused store applies exactly relu_forward's rule to the same sums: bitwise equal, NaN propagating.
    x, k, b = conv_data(rng, 2, 9, 8, 5, 3, 3, 20)
    x[0, 4, 4, 2] = np.nan
    for pads in [(0, 0, 0, 0), (1, 1, 1, 1)]:
        y = conv.conv2d_forward(x, k, b, 1, 1, *pads)
        fused = conv.conv2d_forward(x, k, b, 1, 1, *pads, relu=True)
        assert np.isnan(fused).any()
        np.testing.assert_array_equal(fused, K.relu_forward(y))


def test_conv2d_relu_must_be_bool():
    x, w, b = _ok()
    with pytest.raises(TypeError, match="relu must be a bool, got int 1"):
        K.conv2d_forward(x, w, b, 1, 1, 0, 0, 0, 0, relu=1)


def test_same_pads_keep_the_size():
    assert same_pads(28, 3, 1) == (1, 1)
    assert same_pads(8, 3, 2) == (0, 1)
    assert same_pads(7, 2, 1) == (0, 1)
    assert same_pads(5, 1, 2) == (0, 0)


@pytest.mark.parametrize("case", CASES, ids=str)
def test_conv2d_backward_matches_reference(conv, rng, case):
    n, h, w, cin, kh, kw, cout, sh, sw, mode = case
    x, k, _ = conv_data(rng, n, h, w, cin, kh, kw, cout)
    pads = conv_pads(mode, h, w, kh, kw, sh, sw)
    oh, ow = conv.conv2d_forward(x, k, None, sh, sw, *pads).shape[1:3]
    dy = rng.standard_normal((n, oh, ow, cout)).astype(np.float32)
    dx, dk, db = conv.conv2d_backward(dy, x, k, sh, sw, *pads)
    rdx, rdk, rdb = conv2d_backward_ref(dy, x, k, sh, sw, *pads)
    scale = np.sqrt(n * oh * ow)
    np.testing.assert_allclose(dx, rdx, rtol=2e-4, atol=2e-4)
    np.testing.assert_allclose(dk, rdk, rtol=2e-4, atol=1e-4 * scale)
    np.testing.assert_allclose(db, rdb, rtol=2e-4, atol=1e-4 * scale)


@pytest.mark.parametrize("case", CASES, ids=str)
@pytest.mark.parametrize("need_dx,need_db", [(True, True), (False, False), (True, False)])
def test_conv2d_backward_through_fused_relu_matches_reference(conv, rng, case, need_dx, need_db):
    n, h, w, cin, kh, kw, cout, sh, sw, mode = case
    x, k, b = conv_data(rng, n, h, w, cin, kh, kw, cout)
    pads = conv_pads(mode, h, w, kh, kw, sh, sw)
    y = conv.conv2d_forward(x, k, b, sh, sw, *pads, relu=True)
    assert (y == 0).any() and (y > 0).any()
    dy = rng.standard_normal(y.shape).astype(np.float32)
    dx, dk, db = conv.conv2d_backward(dy, x, k, sh, sw, *pads, need_dx=need_dx, need_db=need_db, y=y)
    dz = dy * (y > 0)
    rdx, rdk, rdb = conv2d_backward_ref(dz, x, k, sh, sw, *pads)
    scale = np.sqrt(y.size / cout)
    np.testing.assert_allclose(dk, rdk, rtol=2e-4, atol=1e-4 * scale)
    assert (dx is not None) == need_dx and (db is not None) == need_db
    if need_dx:
        np.testing.assert_allclose(dx, rdx, rtol=2e-4, atol=2e-4)
    if need_db:
        np.testing.assert_allclose(db, rdb, rtol=2e-4, atol=1e-4 * scale)
    # The same sums in the same order as masking first with relu_backward: bitwise equal.
    unfused = conv.conv2d_backward(K.relu_backward(dy, y), x, k, sh, sw, *pads, need_dx=need_dx, need_db=need_db)
    for fused_grad, unfused_grad in zip((dx, dk, db), unfused):
        assert (fused_grad is None and unfused_grad is None) or np.array_equal(fused_grad, unfused_grad)


@pytest.mark.parametrize("sh,sw,pads", [(1, 1, (1, 1, 1, 1)), (2, 1, (0, 1, 1, 0)), (1, 1, (0, 0, 0, 0))])
def test_conv2d_relu_gradients_match_finite_differences(conv, rng, sh, sw, pads):
    x, k, b = (t.astype(np.float64) for t in conv_data(rng, 2, 6, 5, 3, 3, 2, 4))
    z = conv2d_forward_ref(x, k, b, sh, sw, *pads)
    assert np.abs(z).min() > 1e-3 and (z < 0).any() and (z > 0).any()  # no pre-activation near the kink
    r = rng.standard_normal(z.shape)  # loss = sum(relu(z) * r)

    def loss():
        return float((np.maximum(conv2d_forward_ref(x, k, b, sh, sw, *pads), 0) * r).sum())

    x32, k32, b32 = x.astype(np.float32), k.astype(np.float32), b.astype(np.float32)
    y = conv.conv2d_forward(x32, k32, b32, sh, sw, *pads, relu=True)
    dx, dk, db = conv.conv2d_backward(r.astype(np.float32), x32, k32, sh, sw, *pads, y=y)
    np.testing.assert_allclose(dx, numeric_grad(loss, x), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(dk, numeric_grad(loss, k), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(db, numeric_grad(loss, b), rtol=1e-4, atol=1e-4)


def test_conv2d_backward_rejects_bad_relu_output(rng):
    x, w, _ = _ok()
    dy = np.ones((2, 3, 3, 4), np.float32)
    with pytest.raises(ValueError, match=r"y must have shape \(2, 3, 3, 4\), got \(2, 3, 3, 5\)"):
        K.conv2d_backward(dy, x, w, 1, 1, 0, 0, 0, 0, y=np.ones((2, 3, 3, 5), np.float32))
    with pytest.raises(TypeError, match="y must have dtype float32"):
        K.conv2d_backward(dy, x, w, 1, 1, 0, 0, 0, 0, y=np.ones((2, 3, 3, 4)))
    with pytest.raises(ValueError, match="y must be C-contiguous"):
        K.conv2d_backward(dy, x, w, 1, 1, 0, 0, 0, 0, y=np.ones((2, 3, 3, 8), np.float32)[..., ::2])


def test_conv2d_backward_optional_outputs(conv, rng):
    x, k, _ = conv_data(rng, 2, 6, 6, 3, 3, 3, 4)
    dy = rng.standard_normal((2, 4, 4, 4)).astype(np.float32)
    dx, dk, db = conv.conv2d_backward(dy, x, k, 1, 1, 0, 0, 0, 0, need_dx=False, need_db=False)
    assert dx is None and db is None
    np.testing.assert_allclose(dk, conv2d_backward_ref(dy, x, k, 1, 1, 0, 0, 0, 0)[1], rtol=2e-4, atol=2e-4)


def test_conv2d_empty_batch(conv, rng):
    _, k, b = conv_data(rng, 1, 5, 5, 2, 3, 3, 4)
    x = np.empty((0, 5, 5, 2), np.float32)
    assert conv.conv2d_forward(x, k, b, 1, 1, 1, 1, 1, 1).shape == (0, 5, 5, 4)
    dx, dk, db = conv.conv2d_backward(np.empty((0, 5, 5, 4), np.float32), x, k, 1, 1, 1, 1, 1, 1)
    assert dx.shape == x.shape and not dk.any() and not db.any()
    dx, dk, db = conv.conv2d_backward(np.empty((0, 5, 5, 4), np.float32), x, k, 1, 1, 1, 1, 1, 1,
                                   y=np.empty((0, 5, 5, 4), np.float32))
    assert dx.shape == x.shape and not dk.any() and not db.any()


@pytest.mark.parametrize("sh,sw,pads", [(1, 1, (1, 1, 1, 1)), (2, 1, (0, 1, 1, 0)), (2, 2, (0, 0, 0, 0))])
def test_conv2d_gradients_match_finite_differences(conv, rng, sh, sw, pads):
    x, k, b = (t.astype(np.float64) for t in conv_data(rng, 2, 5, 4, 2, 3, 2, 3))
    oh, ow = conv2d_forward_ref(x, k, b, sh, sw, *pads).shape[1:3]
    r = rng.standard_normal((2, oh, ow, 3))  # loss = sum(y * r), so dy = r

    def loss():
        return float((conv2d_forward_ref(x, k, b, sh, sw, *pads) * r).sum())

    dx, dk, db = conv.conv2d_backward(r.astype(np.float32), x.astype(np.float32), k.astype(np.float32), sh, sw, *pads)
    np.testing.assert_allclose(dx, numeric_grad(loss, x), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(dk, numeric_grad(loss, k), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(db, numeric_grad(loss, b), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("n,h,cin,kh,cout,pads", [
    (64, 14, 16, 3, 32, (0, 0, 0, 0)),   # many chunks: parallel over chunks, ordered reduction of dk/db
    (1, 40, 16, 3, 32, (1, 1, 1, 1)),    # a single chunk: the GEMMs are parallel inside
    (40, 6, 8, 1, 16, (0, 0, 0, 0)),     # pointwise path
])
def test_conv2d_bitwise_identical_for_1_and_2_threads(conv, rng, n, h, cin, kh, cout, pads):
    x, k, b = conv_data(rng, n, h, h, cin, kh, kh, cout)
    oh = h + pads[0] + pads[1] - kh + 1
    dy = rng.standard_normal((n, oh, oh, cout)).astype(np.float32)
    old = cnnlite.get_num_threads()
    results = []
    try:
        for threads in (1, 2):
            cnnlite.set_num_threads(threads)
            y = conv.conv2d_forward(x, k, b, 1, 1, *pads)
            y_relu = conv.conv2d_forward(x, k, b, 1, 1, *pads, relu=True)
            results.append((y, y_relu) + conv.conv2d_backward(dy, x, k, 1, 1, *pads) +
                           conv.conv2d_backward(dy, x, k, 1, 1, *pads, y=y_relu))
    finally:
        cnnlite.set_num_threads(old)
    for one, two in zip(*results):
        assert np.array_equal(one, two)


def _ok():
    return np.ones((2, 5, 5, 3), np.float32), np.ones((3, 3, 3, 4), np.float32), np.ones(4, np.float32)


@pytest.mark.parametrize("change,exc,match", [
    (dict(x=np.ones((2, 5, 5, 3), np.float64)), TypeError, "x must have dtype float32"),
    (dict(x=np.ones((5, 5, 3), np.float32)), ValueError, "x must be 4-D"),
    (dict(w=np.ones((3, 3, 3), np.float32)), ValueError, "w must be 4-D"),
    (dict(w=np.ones((3, 3, 2, 4), np.float32)), ValueError, "x has 3 channels"),
    (dict(b=np.ones(5, np.float32)), ValueError, r"b must have shape \(4,\)"),
    (dict(b=[1.0, 2.0]), TypeError, "b must be a numpy.ndarray"),
    (dict(x=np.ones((2, 5, 5, 6), np.float32)[..., ::2]), ValueError, "x must be C-contiguous"),
    (dict(sh=0), ValueError, "sh must be a positive integer"),
    (dict(sw=-1), ValueError, "sw must be a positive integer"),
    (dict(pt=-1), ValueError, "pad_top must be a non-negative integer"),
    (dict(pr=-2), ValueError, "pad_right must be a non-negative integer"),
    (dict(w=np.ones((7, 3, 3, 4), np.float32)), ValueError, "kernel height kh=7 exceeds"),
    (dict(w=np.ones((3, 6, 3, 4), np.float32), pl=0), ValueError, "kernel width kw=6 exceeds"),
    (dict(x=np.ones((2, 0, 5, 3), np.float32)), ValueError, "x must have non-zero"),
    (dict(w=np.ones((3, 3, 3, 0), np.float32), b=None), ValueError, "w must have non-zero"),
])
def test_conv2d_forward_rejects_bad_arguments(change, exc, match):
    x, w, b = _ok()
    args = dict(x=x, w=w, b=b, sh=1, sw=1, pt=0, pb=0, pl=0, pr=0)
    args.update(change)
    with pytest.raises(exc, match=match):
        K.conv2d_forward(args["x"], args["w"], args["b"], args["sh"], args["sw"],
                         args["pt"], args["pb"], args["pl"], args["pr"])


def test_conv2d_backward_rejects_bad_dy():
    x, w, _ = _ok()
    with pytest.raises(ValueError, match=r"dy must have shape \(2, 3, 3, 4\)"):
        K.conv2d_backward(np.ones((2, 5, 5, 4), np.float32), x, w, 1, 1, 0, 0, 0, 0)
    with pytest.raises(TypeError, match="dy must have dtype float32"):
        K.conv2d_backward(np.ones((2, 3, 3, 4), np.float16), x, w, 1, 1, 0, 0, 0, 0)
    with pytest.raises(ValueError, match="sh must be a positive integer"):
        K.conv2d_backward(np.ones((2, 3, 3, 4), np.float32), x, w, 0, 1, 0, 0, 0, 0)


from hypothesis import HealthCheck, given, settings, strategies as st


@st.composite
def _geometries(draw, algo="auto"):
    """Random geometries; for 'winograd' only those it computes in every pass (3x3, stride 1, pads <= 2)."""
    winograd = algo == "winograd"
    kh, kw = (3, 3) if winograd else (draw(st.integers(1, 5)), draw(st.integers(1, 5)))
    pads = tuple(draw(st.integers(0, 2 if winograd else 3)) for _ in range(4))
    h = draw(st.integers(max(1, kh - pads[0] - pads[1]), 10))
    w = draw(st.integers(max(1, kw - pads[2] - pads[3]), 10))
    sh, sw = (1, 1) if winograd else (None, None)
    return (draw(st.integers(1, 3)), h, w, draw(st.integers(1, 20)), kh, kw, draw(st.integers(1, 40)),
            sh or draw(st.integers(1, 3)), sw or draw(st.integers(1, 3)), pads)


# The autouse conv fixture holds for all examples of a run (it only selects the algorithm).
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.data(), st.booleans(), st.booleans())
def test_conv2d_random_geometries_match_reference(conv, data, with_bias, relu):
    geometry = data.draw(_geometries(conv.name))
    n, h, w, cin, kh, kw, cout, sh, sw, pads = geometry
    rng = np.random.default_rng(abs(hash(geometry)) % 2**32)
    x, k, b = conv_data(rng, n, h, w, cin, kh, kw, cout)
    b = b if with_bias else None
    ref = conv2d_forward_ref(x, k, b, sh, sw, *pads)
    np.testing.assert_allclose(conv.conv2d_forward(x, k, b, sh, sw, *pads, relu=relu),
                               np.maximum(ref, 0.0) if relu else ref, rtol=2e-4, atol=2e-4)
    y = conv.conv2d_forward(x, k, b, sh, sw, *pads)
    dy = rng.standard_normal(y.shape).astype(np.float32)
    y_relu = conv.conv2d_forward(x, k, b, sh, sw, *pads, relu=True) if relu else None
    dx, dk, db = conv.conv2d_backward(dy, x, k, sh, sw, *pads, y=y_relu)
    rdx, rdk, rdb = conv2d_backward_ref(dy * (y_relu > 0) if relu else dy, x, k, sh, sw, *pads)
    scale = np.sqrt(y.size / cout)
    np.testing.assert_allclose(dx, rdx, rtol=2e-4, atol=2e-4)
    np.testing.assert_allclose(dk, rdk, rtol=2e-4, atol=1e-4 * scale)
    np.testing.assert_allclose(db, rdb, rtol=2e-4, atol=1e-4 * scale)


def test_kernel_benchmark_runs(tmp_path):
    # Smoke test of benchmarks/bench_kernels_conv.py on a tiny batch, importing the package under test.
    import pathlib
    import subprocess

    script = pathlib.Path(__file__).resolve().parent.parent / "benchmarks" / "bench_kernels_conv.py"
    if not script.exists():
        pytest.skip("benchmarks/ not present")
    package_root = os.path.dirname(os.path.dirname(os.path.abspath(cnnlite.__file__)))
    env = dict(os.environ, PYTHONPATH=package_root)
    out = subprocess.run([sys.executable, str(script), "--threads", "1", "--batch", "2", "--repeats", "1",
                          "--padding", "same"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "numpy float32 2048x2048 matmul" in out.stdout
    assert out.stdout.count(" fwd ") == 5 and "dense 128 -> 10 bwd" in out.stdout
