"""Winograd F(2x2, 3x3) path of conv2d (forward and input gradient): where it is chosen, its accuracy against float64
references on awkward geometries, and the explicit algorithm argument itself. The generic conv2d tests (test_conv2d.py,
test_properties.py) also run over every algorithm."""
import os
import subprocess
import sys

import numpy as np
import pytest

import cnnlite
from cnnlite import _kernels as K
from reference_conv import conv2d_backward_ref, conv2d_forward_ref, numeric_grad, same_pads
import conv_algos


# The conv2d bindings with algo='winograd' passed to every pass (tests/conv_algos.py).
W = conv_algos.Forced("winograd")


def _data(rng, n, h, w, cin, cout):
    x = rng.standard_normal((n, h, w, cin)).astype(np.float32)
    k = (rng.standard_normal((3, 3, cin, cout)) / np.sqrt(9 * cin)).astype(np.float32)
    b = rng.standard_normal(cout).astype(np.float32)
    return x, k, b


def _check(rng, n, h, w, cin, cout, pads, relu=False, tol=2e-4):
    """Winograd forward and weight gradient; the input gradient from Winograd where it applies, else (asserting
    that asking Winograd for it is a ValueError) from the GEMM path, named explicitly. Returns the latter's name."""
    x, k, b = _data(rng, n, h, w, cin, cout)
    assert K.conv2d_algo_applies("winograd", x.shape, k.shape, 1, 1, *pads)
    y = W.conv2d_forward(x, k, b, 1, 1, *pads, relu=relu)
    ref = conv2d_forward_ref(x, k, b, 1, 1, *pads)
    np.testing.assert_allclose(y, np.maximum(ref, 0) if relu else ref, rtol=tol, atol=tol)
    dy = rng.standard_normal(y.shape).astype(np.float32)
    dx_algo = "winograd" if K.conv2d_algo_applies("winograd", x.shape, k.shape, 1, 1, *pads,
                                                  backward_input=True) else "gemm"
    if dx_algo == "gemm":
        with pytest.raises(ValueError, match="algo_input='winograd' does not apply to the input gradient"):
            K.conv2d_backward(dy, x, k, 1, 1, *pads, algo_input="winograd", algo_weights="winograd")
    dx, dk, db = K.conv2d_backward(dy, x, k, 1, 1, *pads, algo_input=dx_algo, algo_weights="winograd")
    rdx, rdk, rdb = conv2d_backward_ref(dy, x, k, 1, 1, *pads)
    np.testing.assert_allclose(dx, rdx, rtol=tol, atol=tol)
    scale = np.sqrt(y.size / cout)
    np.testing.assert_allclose(dk, rdk, rtol=2e-4, atol=1e-4 * scale)
    np.testing.assert_allclose(db, rdb, rtol=2e-4, atol=1e-4 * scale)
    return dx_algo


@pytest.mark.parametrize("n,h,w,cin,cout,pads", [
    (2, 7, 9, 3, 5, (0, 0, 0, 0)),      # odd output sizes 5x7: partial tiles on the bottom and right edges
    (1, 3, 3, 2, 2, (0, 0, 0, 0)),      # a single output pixel: one tile, three quarters cut off
    (3, 6, 5, 4, 3, (0, 2, 1, 0)),      # asymmetric pads
    (2, 5, 8, 6, 4, (2, 0, 0, 2)),
    (1, 4, 4, 1, 1, (2, 2, 2, 2)),      # pads of 2: the input gradient has no padding at all
    (2, 1, 6, 3, 3, (1, 1, 1, 1)),      # a one-row image: every tile overlaps the padding
    (3, 12, 12, 32, 64, (0, 0, 0, 0)),  # the chapter's conv3 (108 tiles: several blocks, the last partial)
    (2, 26, 26, 16, 32, (0, 0, 0, 0)),  # the chapter's conv2
    (1, 14, 14, 32, 64, (1, 1, 1, 1)),  # 'same', batch 1
])
def test_forward_and_input_gradient_match_reference(rng, n, h, w, cin, cout, pads):
    assert _check(rng, n, h, w, cin, cout, pads) == "winograd"


@pytest.mark.parametrize("cin,cout", [(70, 130), (17, 9), (8, 1), (1, 25), (300, 20)])
def test_large_and_ragged_channel_counts(rng, cin, cout):
    # 16-, 8- and 1-wide lanes of the transforms; 300 input channels need two depth blocks in the small GEMMs.
    _check(rng, 2, 5, 6, cin, cout, (1, 1, 1, 1), tol=5e-4)


@pytest.mark.parametrize("h,w", [(28, 28), (7, 7), (8, 5)])
def test_same_padding(rng, h, w):
    pads = same_pads(h, 3, 1) + same_pads(w, 3, 1)
    assert pads == (1, 1, 1, 1)
    _check(rng, 2, h, w, 8, 8, pads, relu=True)


def test_forward_pad_above_two_leaves_the_input_gradient_to_gemm(rng):
    # The gradient would need a negative pad (2 - 3): Winograd does not apply to it (asking is a ValueError), the GEMM
    # path computes it; the forward pass and weight gradient stay Winograd.
    assert _check(rng, 2, 5, 6, 3, 4, (3, 0, 1, 1)) == "gemm"


def test_finite_differences(rng):
    x, k, b = (t.astype(np.float64) for t in _data(rng, 2, 5, 4, 2, 3))
    for pads in [(1, 1, 1, 1), (0, 2, 2, 0)]:
        r = rng.standard_normal(conv2d_forward_ref(x, k, b, 1, 1, *pads).shape)

        def loss():
            return float((conv2d_forward_ref(x, k, b, 1, 1, *pads) * r).sum())

        y = W.conv2d_forward(x.astype(np.float32), k.astype(np.float32), b.astype(np.float32), 1, 1, *pads)
        np.testing.assert_allclose(y, conv2d_forward_ref(x, k, b, 1, 1, *pads), rtol=1e-5, atol=1e-5)
        dx, _, _ = W.conv2d_backward(r.astype(np.float32), x.astype(np.float32), k.astype(np.float32), 1, 1, *pads)
        np.testing.assert_allclose(dx, numeric_grad(loss, x), rtol=1e-4, atol=1e-4)


def test_chapter_shapes_error_against_float64(rng):
    # Max error relative to the largest output magnitude, measured: ~2-3e-7 for forward and input gradient (the GEMM
    # path: ~2-6e-7). The bound leaves room for other ISAs' summation orders.
    for n, h, cin, cout in [(4, 26, 16, 32), (4, 12, 32, 64)]:
        x, k, b = _data(rng, n, h, h, cin, cout)
        y = W.conv2d_forward(x, k, b, 1, 1, 0, 0, 0, 0)
        ref = conv2d_forward_ref(x, k, b, 1, 1, 0, 0, 0, 0)
        assert np.abs(y - ref).max() / np.abs(ref).max() < 2e-6
        dy = rng.standard_normal(y.shape).astype(np.float32)
        dx = W.conv2d_backward(dy, x, k, 1, 1, 0, 0, 0, 0, need_db=False)[0]
        rdx = conv2d_backward_ref(dy, x, k, 1, 1, 0, 0, 0, 0)[0]
        assert np.abs(dx - rdx).max() / np.abs(rdx).max() < 2e-6


def test_fused_relu_keeps_nan_and_equals_relu_of_output(rng):
    x, k, b = _data(rng, 2, 9, 8, 16, 20)
    x[1, 3, 3, 5] = np.nan
    y = W.conv2d_forward(x, k, b, 1, 1, 1, 1, 1, 1)
    fused = W.conv2d_forward(x, k, b, 1, 1, 1, 1, 1, 1, relu=True)
    assert np.isnan(fused).any() and (fused == 0).any()
    np.testing.assert_array_equal(fused, K.relu_forward(y))


def test_bitwise_identical_for_1_and_2_threads_over_many_blocks(rng):
    x, k, b = _data(rng, 40, 12, 12, 32, 64)  # 1440 tiles, ~30 blocks
    dy = rng.standard_normal((40, 10, 10, 64)).astype(np.float32)
    old = cnnlite.get_num_threads()
    results = []
    try:
        for threads in (1, 2):
            cnnlite.set_num_threads(threads)
            results.append((W.conv2d_forward(x, k, b, 1, 1, 0, 0, 0, 0, relu=True),
                            W.conv2d_backward(dy, x, k, 1, 1, 0, 0, 0, 0)[0]))
    finally:
        cnnlite.set_num_threads(old)
    for one, two in zip(*results):
        assert one.tobytes() == two.tobytes()


def test_binding_still_rejects_bad_input():
    x = np.ones((2, 6, 6, 4), np.float32)
    k = np.ones((3, 3, 4, 8), np.float32)
    with pytest.raises(ValueError, match="x must be C-contiguous"):
        K.conv2d_forward(np.ones((2, 6, 6, 8), np.float32)[..., ::2], k, None, 1, 1, 0, 0, 0, 0)
    with pytest.raises(TypeError, match="x must have dtype float32"):
        K.conv2d_forward(x.astype(np.float64), k, None, 1, 1, 0, 0, 0, 0)
    with pytest.raises(ValueError, match="w must be C-contiguous"):
        K.conv2d_forward(x, np.asfortranarray(k), None, 1, 1, 0, 0, 0, 0)
    with pytest.raises(ValueError, match=r"dy must have shape \(2, 4, 4, 8\)"):
        K.conv2d_backward(np.ones((2, 4, 5, 8), np.float32), x, k, 1, 1, 0, 0, 0, 0)
    with pytest.raises(ValueError, match="dy must be C-contiguous"):
        K.conv2d_backward(np.ones((2, 4, 4, 16), np.float32)[..., ::2], x, k, 1, 1, 0, 0, 0, 0)


def test_empty_batch():
    x = np.empty((0, 6, 6, 4), np.float32)
    k = np.ones((3, 3, 4, 8), np.float32)
    assert W.conv2d_forward(x, k, None, 1, 1, 1, 1, 1, 1).shape == (0, 6, 6, 8)
    dx, dk, db = W.conv2d_backward(np.empty((0, 6, 6, 8), np.float32), x, k, 1, 1, 1, 1, 1, 1)
    assert dx.shape == x.shape and not dk.any() and not db.any()


@pytest.mark.parametrize("kh,kw,sh,sw,pads,forward,backward_input", [
    (3, 3, 1, 1, (0, 0, 0, 0), "winograd", "winograd"),
    (3, 3, 1, 1, (2, 2, 2, 2), "winograd", "winograd"),
    (3, 3, 1, 1, (0, 3, 0, 0), "winograd", "gemm"),  # gradient pad 2 - 3 < 0
    (3, 3, 2, 2, (1, 1, 1, 1), "gemm", "gemm"),      # stride 2
    (5, 5, 1, 1, (2, 2, 2, 2), "gemm", "gemm"),
    (3, 2, 1, 1, (0, 0, 0, 0), "gemm", "gemm"),
])
def test_forced_winograd_applies_only_where_it_can(rng, kh, kw, sh, sw, pads, forward, backward_input):
    # forward / backward_input: 'winograd' where it applies, 'gemm' (the only other path there) where it does not.
    x_shape, w_shape = (1, 8, 8, 16), (kh, kw, 16, 32)
    applies = {which: K.conv2d_algo_applies("winograd", x_shape, w_shape, sh, sw, *pads, **{which: True})
               for which in ("backward_input", "backward_weights")}
    assert ("winograd" if K.conv2d_algo_applies("winograd", x_shape, w_shape, sh, sw, *pads) else "gemm") == forward
    assert ("winograd" if applies["backward_input"] else "gemm") == backward_input
    assert ("winograd" if applies["backward_weights"] else "gemm") == forward
    x = rng.standard_normal(x_shape).astype(np.float32)
    k = (rng.standard_normal(w_shape) / 12).astype(np.float32)
    if forward == "gemm":  # never silently replaced
        with pytest.raises(ValueError, match="algo='winograd' does not apply to the forward pass"):
            K.conv2d_forward(x, k, None, sh, sw, *pads, algo="winograd")
    y = K.conv2d_forward(x, k, None, sh, sw, *pads, algo=forward)
    if backward_input == "gemm":
        with pytest.raises(ValueError, match="algo='winograd' does not apply to the input gradient"):
            K.conv2d_backward_input(y, k, 8, 8, sh, sw, *pads, algo="winograd")


@pytest.mark.skipif(K.cpu_isa() != "avx512", reason="thresholds for the AVX-512 micro-kernel; the others: "
                    "test_automatic_choice_depends_on_the_gemm_micro_kernel")
def test_automatic_choice_on_the_chapter_shapes():
    for x_shape, w_shape, pad in [((1000, 26, 26, 16), (3, 3, 16, 32), 0), ((1000, 12, 12, 32), (3, 3, 32, 64), 0),
                                  ((1000, 28, 28, 16), (3, 3, 16, 32), 1), ((1000, 14, 14, 32), (3, 3, 32, 64), 1)]:
        for which in ({}, {"backward_input": True}, {"backward_weights": True}):
            assert K.conv2d_algo(x_shape, w_shape, 1, 1, pad, pad, pad, pad, **which) == "winograd"
    # One input channel (conv1, the CNN-8's convolution): the transforms cost more than they save; the direct
    # kernel takes the forward pass (tests/test_conv2d_direct.py), GEMM the input gradient.
    for w_shape, pad in [((3, 3, 1, 16), 0), ((3, 3, 1, 8), 1)]:
        assert K.conv2d_algo((1000, 28, 28, 1), w_shape, 1, 1, pad, pad, pad, pad) == "direct"
        assert K.conv2d_algo((1000, 28, 28, 1), w_shape, 1, 1, pad, pad, pad, pad, backward_input=True) == "gemm"
    # Few input channels: the forward pass stays off Winograd below 8, the input gradient below 4.
    assert K.conv2d_algo((10, 28, 28, 6), (3, 3, 6, 16), 1, 1, 1, 1, 1, 1) == "gemm"
    assert K.conv2d_algo((10, 28, 28, 6), (3, 3, 6, 16), 1, 1, 1, 1, 1, 1, backward_input=True) == "winograd"
    assert K.conv2d_algo((10, 28, 28, 8), (3, 3, 8, 2), 1, 1, 1, 1, 1, 1) == "winograd"
    # The weight gradient from 16 input channels.
    for w_shape, expected in [((3, 3, 16, 32), "winograd"), ((3, 3, 32, 64), "winograd"), ((3, 3, 8, 16), "gemm"),
                              ((3, 3, 16, 8), "winograd"), ((3, 3, 1, 16), "direct")]:
        x_shape = (10, 28, 28, w_shape[2])
        assert K.conv2d_algo(x_shape, w_shape, 1, 1, 0, 0, 0, 0, backward_weights=True) == expected
    assert K.conv2d_algo_applies("gemm", (1000, 26, 26, 16), (3, 3, 16, 32), 1, 1, 0, 0, 0, 0)


def test_algorithm_argument_is_checked(rng):
    # No process-wide forced algorithm: each call names its own.
    assert not hasattr(K, "set_conv2d_algo") and not hasattr(K, "get_conv2d_algo")
    x, k, b = _data(rng, 1, 5, 5, 3, 8)
    with pytest.raises(ValueError, match="algo must be None, 'gemm', 'winograd' or 'direct', got 'fast'"):
        K.conv2d_forward(x, k, b, 1, 1, 0, 0, 0, 0, algo="fast")
    with pytest.raises(ValueError, match="'gemm', 'winograd' or 'direct', got 'auto'"):
        K.conv2d_algo_applies("auto", x.shape, k.shape, 1, 1, 0, 0, 0, 0)
    with pytest.raises(TypeError, match="algo must be None or a str"):
        K.conv2d_forward(x, k, b, 1, 1, 0, 0, 0, 0, algo=1)
    with pytest.raises(ValueError, match="algo='direct' does not apply to the input gradient"):
        K.conv2d_backward_input(np.ones((1, 3, 3, 8), np.float32), k, 5, 5, 1, 1, 0, 0, 0, 0, algo="direct")
    with pytest.raises(ValueError, match="algo_weights='winograd' does not apply to the weight gradient"):
        K.conv2d_backward(np.ones((1, 2, 2, 8), np.float32), x, k, 2, 2, 0, 0, 0, 0, algo_weights="winograd")
    assert not K.conv2d_algo_applies("direct", x.shape, k.shape, 1, 1, 0, 0, 0, 0, backward_input=True)
    assert K.conv2d_algo_applies("direct", x.shape, k.shape, 1, 1, 0, 0, 0, 0, backward_weights=True)
    with pytest.raises(ValueError, match="x_shape has 3 channels but w_shape expects 4"):
        K.conv2d_algo((1, 5, 5, 3), (3, 3, 4, 8), 1, 1, 0, 0, 0, 0)
    with pytest.raises(ValueError, match="output size <= 0"):
        K.conv2d_algo((1, 2, 5, 3), (3, 3, 3, 8), 1, 1, 0, 0, 0, 0)
    with pytest.raises(ValueError, match="sh must be a positive integer"):
        K.conv2d_algo((1, 5, 5, 3), (3, 3, 3, 8), 0, 1, 0, 0, 0, 0)
    with pytest.raises(ValueError, match="cannot both be true"):
        K.conv2d_algo((1, 5, 5, 3), (3, 3, 3, 8), 1, 1, 0, 0, 0, 0, backward_input=True, backward_weights=True)


_SUBPROCESS = r"""
import numpy as np
from cnnlite import _kernels as K
from reference_conv import conv2d_backward_ref, conv2d_forward_ref
print(K.conv2d_algo((2, 9, 7, 20), (3, 3, 20, 33), 1, 1, 1, 0, 0, 1), K.cpu_isa())
rng = np.random.default_rng(0)
x = rng.standard_normal((2, 9, 7, 20)).astype(np.float32)
k = (rng.standard_normal((3, 3, 20, 33)) / 13).astype(np.float32)
y = K.conv2d_forward(x, k, None, 1, 1, 1, 0, 0, 1, algo="winograd")
np.testing.assert_allclose(y, conv2d_forward_ref(x, k, None, 1, 1, 1, 0, 0, 1), rtol=2e-4, atol=2e-4)
dy = rng.standard_normal(y.shape).astype(np.float32)
dx = K.conv2d_backward_input(dy, k, 9, 7, 1, 1, 1, 0, 0, 1, algo="winograd")
np.testing.assert_allclose(dx, conv2d_backward_ref(dy, x, k, 1, 1, 1, 0, 0, 1)[0], rtol=2e-4, atol=2e-4)
"""


# The first word: the automatic choice, which CNNLITE_CONV_ALGO no longer changes (it is not read at all).
_AUTO = K.conv2d_algo((2, 9, 7, 20), (3, 3, 20, 33), 1, 1, 1, 0, 0, 1)


@pytest.mark.parametrize("env,expected", [
    ({"CNNLITE_ISA": "generic"}, "gemm generic"),
    ({"CNNLITE_ISA": "avx2"}, "gemm avx2"),  # AVX2: Winograd's forward pass from 32 input channels
    ({"CNNLITE_CONV_ALGO": "gemm"}, _AUTO + " "),
    ({"CNNLITE_CONV_ALGO": "no-such-algo"}, _AUTO + " "),
])
def test_winograd_on_every_gemm_isa_and_no_environment_forcing(tmp_path, env, expected):
    package_root = os.path.dirname(os.path.dirname(os.path.abspath(cnnlite.__file__)))
    tests_dir = os.path.dirname(os.path.abspath(__file__))
    full_env = dict(os.environ, PYTHONPATH=os.pathsep.join([package_root, tests_dir]), **env)
    out = subprocess.run([sys.executable, "-c", _SUBPROCESS], env=full_env, cwd=tmp_path,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith(expected)


@pytest.mark.parametrize("pads", [(0, 0, 0, 0), (1, 1, 1, 1), (2, 0, 1, 2)])
def test_input_gradient_through_fused_relu(rng, pads):
    # Given the forward's ReLU output, the input transform masks dy by y > 0 as it reads it: the same bits as masking
    # dy first, and the reference's gradient of the ReLU'd convolution.
    x, k, b = _data(rng, 3, 7, 8, 12, 10)
    y = W.conv2d_forward(x, k, b, 1, 1, *pads, relu=True)
    assert (y == 0).any() and (y > 0).any()
    dy = rng.standard_normal(y.shape).astype(np.float32)
    dx, dk, db = W.conv2d_backward(dy, x, k, 1, 1, *pads, y=y)
    masked = np.where(y > 0, dy, np.float32(0))
    dx_masked, dk_masked, db_masked = W.conv2d_backward(masked, x, k, 1, 1, *pads)
    assert dx.tobytes() == dx_masked.tobytes()
    assert dk.tobytes() == dk_masked.tobytes() and db.tobytes() == db_masked.tobytes()
    rdx, rdk, rdb = conv2d_backward_ref(masked, x, k, 1, 1, *pads)
    np.testing.assert_allclose(dx, rdx, rtol=2e-4, atol=2e-4)
    np.testing.assert_allclose(dk, rdk, rtol=2e-4, atol=1e-3)
    np.testing.assert_allclose(db, rdb, rtol=2e-4, atol=1e-3)


def test_weight_gradient_over_many_chunks_matches_gemm_and_is_thread_independent(rng):
    # 176 + 176 channels: blocks of 24 tiles; 2 x 56 x 56 tiles = 262 blocks in 33 chunks of 8, summed in order in
    # 5 waves of at most 8 chunks (the 16 x 176 x 176-float partials fill the 16 MiB budget).
    x, k, _ = _data(rng, 2, 114, 114, 176, 176)
    dy = rng.standard_normal((2, 112, 112, 176)).astype(np.float32)
    assert K.conv2d_algo_applies("winograd", x.shape, k.shape, 1, 1, 0, 0, 0, 0, backward_weights=True)
    old = cnnlite.get_num_threads()
    results = []
    try:
        for threads in (1, 2):
            cnnlite.set_num_threads(threads)
            results.append(K.conv2d_backward(dy, x, k, 1, 1, 0, 0, 0, 0, need_dx=False, algo_weights="winograd")[1:])
    finally:
        cnnlite.set_num_threads(old)
    assert all(one.tobytes() == two.tobytes() for one, two in zip(*results))
    _, gemm_dk, gemm_db = K.conv2d_backward(dy, x, k, 1, 1, 0, 0, 0, 0, need_dx=False, algo_weights="gemm")
    dk, db = results[0]
    assert np.abs(dk - gemm_dk).max() < 5e-6 * np.abs(gemm_dk).max()  # measured 4e-7
    np.testing.assert_allclose(db, gemm_db, rtol=1e-4, atol=1e-3)


_AUTO_CHOICE = r"""
from cnnlite import _kernels as K
paths = [K.cpu_isa()]
for x_shape, w_shape in [((8, 26, 26, 16), (3, 3, 16, 32)), ((8, 12, 12, 32), (3, 3, 32, 64))]:
    for which in ({}, {"backward_input": True}, {"backward_weights": True}):
        paths.append(K.conv2d_algo(x_shape, w_shape, 1, 1, 0, 0, 0, 0, **which))
print(" ".join(paths))
"""

# The automatic choice per GEMM micro-kernel (measured: the narrower kernels lose more to the small GEMMs' short
# depth): (conv2 forward, input gradient, weight gradient, conv3 forward, input gradient, weight gradient).
_EXPECTED_AUTO = {
    "avx512": "winograd winograd winograd winograd winograd winograd",
    "avx2": "gemm winograd winograd winograd winograd winograd",
    "generic": "gemm winograd gemm gemm winograd gemm",
}


@pytest.mark.parametrize("isa", ["", "avx2", "generic"])
def test_automatic_choice_depends_on_the_gemm_micro_kernel(tmp_path, isa):
    package_root = os.path.dirname(os.path.dirname(os.path.abspath(cnnlite.__file__)))
    env = dict(os.environ, PYTHONPATH=package_root, CNNLITE_ISA=isa)
    out = subprocess.run([sys.executable, "-c", _AUTO_CHOICE], env=env, cwd=tmp_path, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    chosen_isa, paths = out.stdout.split(" ", 1)
    assert paths.strip() == _EXPECTED_AUTO[chosen_isa]


def test_forced_direct_weight_gradient_with_a_winograd_input_gradient(rng):
    # Forced 'direct' covers the forward pass and weight gradient; the input gradient takes the automatic choice
    # (Winograd here). Asking for dx must not move the weight gradient off the direct kernel.
    x, k, b = _data(rng, 2, 7, 6, 16, 8)
    dy = rng.standard_normal((2, 7, 6, 8)).astype(np.float32)
    with conv_algos.forced("direct") as direct:
        assert direct.algo(x.shape, k.shape, 1, 1, 1, 1, 1, 1, backward_weights=True) == "direct"
        assert direct.algo(x.shape, k.shape, 1, 1, 1, 1, 1, 1, backward_input=True) == "winograd"
        dx, dk, db = direct.conv2d_backward(dy, x, k, 1, 1, 1, 1, 1, 1)
        _, dk_alone, db_alone = direct.conv2d_backward(dy, x, k, 1, 1, 1, 1, 1, 1, need_dx=False)
    assert dk.tobytes() == dk_alone.tobytes() and db.tobytes() == db_alone.tobytes()
    rdx, rdk, _ = conv2d_backward_ref(dy, x, k, 1, 1, 1, 1, 1, 1)
    np.testing.assert_allclose(dx, rdx, rtol=2e-4, atol=2e-4)
    np.testing.assert_allclose(dk, rdk, rtol=2e-4, atol=1e-3)
