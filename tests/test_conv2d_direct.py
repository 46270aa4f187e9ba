"""The direct convolution for few input channels (cpp/conv2d_direct.cpp), asked for with algo='direct':
NumPy float64 references, finite differences, the fused ReLU, 1-vs-2-thread bitwise identity, and the automatic
choice of the path."""
import os
import subprocess
import sys

import numpy as np
import pytest

import cnnlite
from cnnlite import _kernels as K

import conv_algos
from reference_conv import (conv2d_backward_ref, conv2d_forward_ref, conv_data, conv_pads, direct_forward_bits,
                            direct_weights_bits, fused_widths, numeric_grad)


@pytest.fixture
def direct():
    """The conv2d bindings with algo='direct' for the forward pass and weight gradient (tests/conv_algos.py)."""
    with conv_algos.forced("direct") as forced:
        yield forced




# (n, h, w, cin, kh, kw, cout, sh, sw, pads). Output channels 16, 8, 4 and 1 wide blocks; rows wider than the
# 8-pixel register block and narrower; pads wider than the kernel (windows entirely in the padding).
CASES = [
    (3, 28, 28, 1, 3, 3, 16, 1, 1, "valid"),     # the chapter's first convolution
    (2, 28, 28, 1, 3, 3, 8, 1, 1, "same"),       # the CNN-8's convolution
    (2, 9, 11, 1, 3, 3, 29, 1, 1, "same"),       # 16 + 8 + 4 + 1 output channels
    (2, 7, 6, 3, 3, 3, 4, 1, 1, "same"),
    (2, 9, 7, 2, 2, 3, 16, 2, 1, "same"),        # 2x3 kernel, stride 2 down, asymmetric pads
    (1, 11, 10, 1, 5, 5, 3, 1, 1, "same"),
    (2, 12, 19, 3, 5, 5, 7, 2, 2, "valid"),
    (2, 7, 7, 3, 1, 1, 5, 2, 2, "valid"),        # 1x1 with stride
    (1, 6, 13, 4, 3, 3, 2, 1, 1, (0, 1, 2, 0)),  # explicit asymmetric pads
    (2, 4, 4, 1, 3, 3, 3, 3, 3, (2, 2, 2, 2)),   # windows of pure padding
    (1, 5, 21, 2, 2, 4, 9, 1, 3, (4, 3, 5, 4)),  # pads wider than the kernel
    (2, 8, 30, 6, 3, 3, 20, 1, 1, "same"),       # more channels than the automatic choice sends here
]


@pytest.mark.parametrize("case", CASES, ids=str)
@pytest.mark.parametrize("with_bias", [True, False])
@pytest.mark.parametrize("relu", [False, True])
def test_direct_forward_matches_reference(direct, rng, case, with_bias, relu):
    n, h, w, cin, kh, kw, cout, sh, sw, mode = case
    x, k, b = conv_data(rng, n, h, w, cin, kh, kw, cout)
    b = b if with_bias else None
    pads = conv_pads(mode, h, w, kh, kw, sh, sw)
    assert direct.algo(x.shape, k.shape, sh, sw, *pads) == "direct"
    y = direct.conv2d_forward(x, k, b, sh, sw, *pads, relu=relu)
    ref = conv2d_forward_ref(x, k, b, sh, sw, *pads)
    if relu:
        ref = np.maximum(ref, 0.0)
        assert (y == 0).any() and (y > 0).any()
    assert y.shape == ref.shape
    np.testing.assert_allclose(y, ref, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("case", CASES, ids=str)
@pytest.mark.parametrize("need_dx,need_db", [(False, True), (True, True), (False, False)])
@pytest.mark.parametrize("fused_relu", [False, True])
def test_direct_backward_matches_reference(direct, rng, case, need_dx, need_db, fused_relu):
    n, h, w, cin, kh, kw, cout, sh, sw, mode = case
    x, k, b = conv_data(rng, n, h, w, cin, kh, kw, cout)
    pads = conv_pads(mode, h, w, kh, kw, sh, sw)
    y = direct.conv2d_forward(x, k, b, sh, sw, *pads, relu=fused_relu)
    dy = rng.standard_normal(y.shape).astype(np.float32)
    dx, dk, db = direct.conv2d_backward(dy, x, k, sh, sw, *pads, need_dx=need_dx, need_db=need_db,
                                   y=y if fused_relu else None)
    rdx, rdk, rdb = conv2d_backward_ref(dy * (y > 0) if fused_relu else dy, x, k, sh, sw, *pads)
    scale = np.sqrt(y.size / cout)  # dk and db sum that many products
    np.testing.assert_allclose(dk, rdk, rtol=2e-4, atol=1e-4 * scale)
    assert (dx is not None) == need_dx and (db is not None) == need_db
    if need_dx:
        np.testing.assert_allclose(dx, rdx, rtol=2e-4, atol=2e-4)
    if need_db:
        np.testing.assert_allclose(db, rdb, rtol=2e-4, atol=1e-4 * scale)
    if fused_relu:  # masking inside the kernel sums the same products as masking first: bitwise equal
        unfused = direct.conv2d_backward(K.relu_backward(dy, y), x, k, sh, sw, *pads, need_dx=need_dx, need_db=need_db)
        for fused_grad, unfused_grad in zip((dx, dk, db), unfused):
            assert (fused_grad is None and unfused_grad is None) or np.array_equal(fused_grad, unfused_grad)


def test_direct_weight_gradient_does_not_depend_on_need_dx(direct, rng):
    x, k, _ = conv_data(rng, 3, 10, 10, 1, 3, 3, 16)
    dy = rng.standard_normal((3, 8, 8, 16)).astype(np.float32)
    with_dx = direct.conv2d_backward(dy, x, k, 1, 1, 0, 0, 0, 0, need_dx=True)
    without = direct.conv2d_backward(dy, x, k, 1, 1, 0, 0, 0, 0, need_dx=False)
    assert np.array_equal(with_dx[1], without[1]) and np.array_equal(with_dx[2], without[2])


def test_direct_many_chunks_in_several_waves(direct, rng):
    # 3 images per weight-gradient chunk at 28x28, 256 chunks per wave: 800 images make 4 waves.
    x, k, b = conv_data(rng, 800, 28, 28, 1, 3, 3, 16)
    dy = rng.standard_normal((800, 26, 26, 16)).astype(np.float32)
    _, dk, db = direct.conv2d_backward(dy, x, k, 1, 1, 0, 0, 0, 0, need_dx=False)
    _, rdk, rdb = conv2d_backward_ref(dy, x, k, 1, 1, 0, 0, 0, 0)
    scale = np.sqrt(800 * 26 * 26)
    np.testing.assert_allclose(dk, rdk, rtol=2e-4, atol=1e-4 * scale)
    np.testing.assert_allclose(db, rdb, rtol=2e-4, atol=1e-4 * scale)


@pytest.mark.parametrize("sh,sw,pads", [(1, 1, (1, 1, 1, 1)), (2, 1, (0, 1, 1, 0)), (2, 2, (0, 0, 0, 0))])
@pytest.mark.parametrize("fused_relu", [False, True])
def test_direct_gradients_match_finite_differences(direct, rng, sh, sw, pads, fused_relu):
    for seed in range(100):  # the first data with no pre-activation near the ReLU's kink (finite differences)
        x, k, b = (t.astype(np.float64) for t in conv_data(np.random.default_rng(seed), 2, 6, 5, 2, 3, 2, 5))
        z = conv2d_forward_ref(x, k, b, sh, sw, *pads)
        if np.abs(z).min() > 1e-3:
            break
    assert np.abs(z).min() > 1e-3 and (z < 0).any() and (z > 0).any()
    r = rng.standard_normal(z.shape)  # loss = sum(act(z) * r)

    def loss():
        out = conv2d_forward_ref(x, k, b, sh, sw, *pads)
        return float(((np.maximum(out, 0) if fused_relu else out) * r).sum())

    x32, k32, b32 = x.astype(np.float32), k.astype(np.float32), b.astype(np.float32)
    y = direct.conv2d_forward(x32, k32, b32, sh, sw, *pads, relu=fused_relu)
    dx, dk, db = direct.conv2d_backward(r.astype(np.float32), x32, k32, sh, sw, *pads, y=y if fused_relu else None)
    np.testing.assert_allclose(dx, numeric_grad(loss, x), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(dk, numeric_grad(loss, k), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(db, numeric_grad(loss, b), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("n,h,cin,cout,pads", [
    (40, 28, 1, 16, (0, 0, 0, 0)),   # conv1: parallel over rows / image chunks
    (30, 28, 1, 8, (1, 1, 1, 1)),    # CNN-8
    (24, 17, 3, 21, (2, 0, 1, 2)),   # every channel block width, pads
])
def test_direct_bitwise_identical_for_1_and_2_threads(direct, rng, n, h, cin, cout, pads):
    x, k, b = conv_data(rng, n, h, h, cin, 3, 3, cout)
    oh, ow = h + pads[0] + pads[1] - 2, h + pads[2] + pads[3] - 2
    dy = rng.standard_normal((n, oh, ow, cout)).astype(np.float32)
    old = cnnlite.get_num_threads()
    results = []
    try:
        for threads in (1, 2):
            cnnlite.set_num_threads(threads)
            y = direct.conv2d_forward(x, k, b, 1, 1, *pads)
            y_relu = direct.conv2d_forward(x, k, b, 1, 1, *pads, relu=True)
            results.append((y, y_relu) + direct.conv2d_backward(dy, x, k, 1, 1, *pads) +
                           direct.conv2d_backward(dy, x, k, 1, 1, *pads, need_dx=False, y=y_relu))
    finally:
        cnnlite.set_num_threads(old)
    for one, two in zip(*results):
        assert (one is None and two is None) or np.array_equal(one, two)


def test_direct_empty_batch(direct, rng):
    _, k, b = conv_data(rng, 1, 5, 5, 1, 3, 3, 4)
    x = np.empty((0, 5, 5, 1), np.float32)
    assert direct.conv2d_forward(x, k, b, 1, 1, 1, 1, 1, 1).shape == (0, 5, 5, 4)
    dx, dk, db = direct.conv2d_backward(np.empty((0, 5, 5, 4), np.float32), x, k, 1, 1, 1, 1, 1, 1)
    assert dx.shape == x.shape and not dk.any() and not db.any()


def test_automatic_choice_sends_few_input_channels_to_the_direct_path():
    assert K.conv2d_algo((1000, 28, 28, 1), (3, 3, 1, 16), 1, 1, 0, 0, 0, 0) == "direct"   # conv1
    assert K.conv2d_algo((1000, 28, 28, 1), (3, 3, 1, 8), 1, 1, 1, 1, 1, 1) == "direct"    # CNN-8
    assert K.conv2d_algo((1000, 26, 26, 16), (3, 3, 16, 32), 1, 1, 0, 0, 0, 0) != "direct"  # conv2
    # the input gradient never takes the direct path (it has none)
    assert K.conv2d_algo((8, 28, 28, 1), (3, 3, 1, 16), 1, 1, 0, 0, 0, 0, backward_input=True) != "direct"
    assert not K.conv2d_algo_applies("direct", (8, 28, 28, 1), (3, 3, 1, 16), 1, 1, 0, 0, 0, 0, backward_input=True)
    assert K.conv2d_algo_applies("gemm", (1000, 28, 28, 1), (3, 3, 1, 16), 1, 1, 0, 0, 0, 0)


def test_environment_variable_no_longer_forces_an_algorithm(tmp_path):
    # CNNLITE_CONV_ALGO is not read: the algorithm is an argument of each call.
    code = ("from cnnlite import _kernels as K; "
            "print(hasattr(K, 'set_conv2d_algo'), K.conv2d_algo((2, 9, 9, 32), (3, 3, 32, 8), 1, 1, 0, 0, 0, 0))")
    env = dict(os.environ, CNNLITE_CONV_ALGO="direct")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False", K.conv2d_algo((2, 9, 9, 32), (3, 3, 32, 8), 1, 1, 0, 0, 0, 0)]
    assert out.stdout.split()[1] != "direct"


def test_benchmark_script_runs(tmp_path):
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    for script, args in (("bench_conv_direct.py", ["--batch", "2", "--size", "8", "--cin", "1", "4", "--cout", "4",
                                                   "--repeats", "1", "--threads", "1"]),):
        out = subprocess.run([sys.executable, os.path.join(root, "benchmarks", script)] + args, cwd=tmp_path,
                             capture_output=True, text=True, timeout=300)
        assert out.returncode == 0, out.stderr
        lines = out.stdout.strip().splitlines()
        assert lines[-2].split()[-1] == "direct" and lines[-1].split()[-1] == "gemm"


# One input channel (the AVX-512 paths: 8-channel forward blocks with pixels in lanes; 16- and 8-channel weight-gradient
# blocks of 3x3 / 5x5 kernels on a zero-bordered copy). (n, h, w, kh, kw, cout, sh, sw, pads): widths around and
# below the 16-pixel step, every channel-block mix, strides (sw > 1 and other depths keep the channel-vector loops).
CIN1_CASES = [
    (3, 28, 28, 3, 3, 8, 1, 1, "same"),       # the CNN-8's convolution
    (3, 28, 28, 3, 3, 16, 1, 1, "valid"),     # the full network's conv1
    (2, 7, 17, 3, 3, 8, 1, 1, "valid"),       # 15 pixels: one partial step
    (2, 9, 33, 3, 3, 24, 1, 1, "same"),       # 16 + 8 channels, 33 = 2 * 16 + 1 pixels
    (2, 6, 5, 3, 3, 8, 1, 1, "same"),         # a row narrower than the pad-masked step
    (2, 11, 13, 5, 5, 12, 1, 1, "same"),      # 5x5, 8 + 4 channels
    (2, 10, 21, 5, 5, 25, 2, 1, "valid"),     # 16 + 8 + 1 channels, row stride 2
    (2, 9, 19, 3, 3, 9, 1, 1, (2, 0, 3, 1)),  # asymmetric pads, 8 + 1 channels
    (2, 4, 4, 3, 3, 8, 3, 3, (2, 2, 2, 2)),   # windows of pure padding, strides 3
    (2, 8, 20, 3, 3, 40, 1, 2, "same"),       # column stride 2 (channel-vector forward loops)
    (2, 6, 22, 2, 4, 8, 1, 1, "same"),        # 2x4 (depth 8: the generic weight-gradient loop)
]


def _cin1_data(rng, case, special):
    n, h, w, kh, kw, cout, sh, sw, mode = case
    x, k, b = conv_data(rng, n, h, w, 1, kh, kw, cout)
    if special:  # NaN / inf in the input and the kernel: they must reach exactly the outputs whose taps they are
        x.flat[rng.choice(x.size, 3, replace=False)] = [np.nan, np.inf, -np.inf]
        k.flat[rng.integers(k.size)] = np.inf
    return x, k, b, conv_pads(mode, h, w, kh, kw, sh, sw)


def _same_bits(a, b, nan_sign=True):
    """Bitwise equal; nan_sign=False: NaNs anywhere count equal whatever their sign and payload."""
    if a.shape != b.shape:
        return False
    if nan_sign:
        return a.tobytes() == b.tobytes()
    both = np.isnan(a) & np.isnan(b)
    return np.array_equal(np.isnan(a), np.isnan(b)) and np.where(both, 0, a).tobytes() == np.where(both, 0, b).tobytes()


@pytest.fixture(params=[i for i in ("avx512", "avx2", "generic")])
def isa(request):
    if request.param not in K.available_isas():
        pytest.skip(f"this CPU lacks {request.param}")
    old = K.set_isa(request.param)
    yield request.param
    K.set_isa(old)


@pytest.mark.parametrize("case", CIN1_CASES, ids=str)
@pytest.mark.parametrize("special", [False, True], ids=["finite", "nan_inf"])
def test_direct_cin1_forward_bits_match_the_rounding_reference(direct, rng, isa, case, special):
    # Every output: bias, then its taps inside the input in (ky, kx) order, each a multiply then an add, or an FMA
    # where the level's build fuses them (reference_conv.fused_widths); then the ReLU. Bit for bit.
    _, _, _, kh, kw, cout, sh, sw, _ = case
    x, k, b, pads = _cin1_data(rng, case, special)
    for bias in (b, None):
        for relu in (False, True):
            y = direct.conv2d_forward(x, k, bias, sh, sw, *pads, relu=relu)
            ref = direct_forward_bits(x, k, bias, sh, sw, *pads, relu, fused_widths(isa))
            assert _same_bits(y, ref, nan_sign=not special), (bias is None, relu)
    if not special:
        np.testing.assert_allclose(y, np.maximum(conv2d_forward_ref(x, k, None, sh, sw, *pads), 0), rtol=1e-5,
                                   atol=1e-5)


@pytest.mark.parametrize("case", CIN1_CASES, ids=str)
@pytest.mark.parametrize("special", [False, True], ids=["finite", "nan_inf"])
def test_direct_cin1_weight_gradient_bits_match_the_rounding_reference(direct, rng, isa, case, special):
    # Per chunk of images, every dk element sums x * g over the pixels in order (x = 0 for taps in the padding), then
    # the chunks in order; gated by the ReLU's output or not. Bit for bit. (The 2x4 kernel's loop skips padding
    # taps instead of adding 0 * g: only finite data there.)
    _, _, _, kh, kw, cout, sh, sw, _ = case
    if special and kh * kw not in (9, 25):
        pytest.skip("the generic weight-gradient loop skips the taps in the padding")
    x, k, b, pads = _cin1_data(rng, case, special)
    y = direct.conv2d_forward(x, k, b, sh, sw, *pads, relu=True)
    dy = rng.standard_normal(y.shape).astype(np.float32)
    if special:
        dy.flat[rng.choice(dy.size, 2, replace=False)] = [np.inf, np.nan]
    for gate in (None, y):
        _, dk, db = direct.conv2d_backward(dy, x, k, sh, sw, *pads, need_dx=False, y=gate)
        rdk, rdb = direct_weights_bits(dy, x, (kh, kw), sh, sw, *pads, gate, fused_widths(isa))
        assert _same_bits(dk, rdk, nan_sign=not special) and _same_bits(db, rdb, nan_sign=not special), gate is None
    if not special:
        rdk, rdb = conv2d_backward_ref(dy * (y > 0), x, k, sh, sw, *pads)[1:]
        scale = np.sqrt(y.size / cout)
        np.testing.assert_allclose(dk, rdk, rtol=2e-4, atol=1e-4 * scale)
        np.testing.assert_allclose(db, rdb, rtol=2e-4, atol=1e-4 * scale)


@pytest.mark.parametrize("cout", [8, 12])
def test_direct_cin1_avx512_equals_generic_where_neither_fuses(direct, rng, cout):
    # 8- and 4-channel blocks have no FMA at any level: the AVX-512 paths give the portable loops' bits.
    if "avx512" not in K.available_isas():
        pytest.skip("no AVX-512")
    x, k, b = conv_data(rng, 6, 28, 28, 1, 3, 3, cout)
    dy = rng.standard_normal((6, 28, 28, cout)).astype(np.float32)
    out = {}
    for level in ("avx512", "generic"):
        old = K.set_isa(level)
        try:
            y = direct.conv2d_forward(x, k, b, 1, 1, 1, 1, 1, 1, relu=True)
            out[level] = (y,) + direct.conv2d_backward(dy, x, k, 1, 1, 1, 1, 1, 1, need_dx=False, y=y)[1:]
        finally:
            K.set_isa(old)
    assert all(a.tobytes() == g.tobytes() for a, g in zip(out["avx512"], out["generic"]))


@pytest.mark.parametrize("cout,pads", [(8, (1, 1, 1, 1)), (16, (0, 0, 0, 0)), (24, (2, 0, 1, 2))])
def test_direct_cin1_bitwise_identical_for_1_2_3_threads(direct, rng, cout, pads):
    # 50 images: chunks of 2 (weight gradient) and tasks of 73-79 rows (forward) spread over the threads.
    x, k, b = conv_data(rng, 50, 28, 28, 1, 3, 3, cout)
    oh, ow = 28 + pads[0] + pads[1] - 2, 28 + pads[2] + pads[3] - 2
    dy = rng.standard_normal((50, oh, ow, cout)).astype(np.float32)
    old = cnnlite.get_num_threads()
    results = []
    try:
        for threads in (1, 2, 3):
            cnnlite.set_num_threads(threads)
            y = direct.conv2d_forward(x, k, b, 1, 1, *pads, relu=True)
            results.append((y,) + direct.conv2d_backward(dy, x, k, 1, 1, *pads, need_dx=False, y=y)[1:])
    finally:
        cnnlite.set_num_threads(old)
    for other in results[1:]:
        assert all(a.tobytes() == o.tobytes() for a, o in zip(results[0], other))
