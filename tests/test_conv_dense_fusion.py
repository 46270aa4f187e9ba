"""Conv2D -> Flatten -> Dense fused across the Flatten (conv_dense_fusion; the CNN-8 is such a model). Forward: the
direct convolution's kernel runs the Dense's product a few images at a time from the output it just wrote
(conv2d_forward_dense, DenseInput). Backward, for a first layer: the Dense hands back dz and its kernel
(DenseGradient) and the conv's weight-gradient kernel forms dy = dz @ kernel^T a few images at a time
(conv2d_backward_weights_shards_from_dense). Everything is compared bitwise with the unfused kernel calls and with
unfused training."""
import numpy as np
import pytest

import cnnlite
from cnnlite import _kernels as K
from cnnlite import config, layers, mixed_precision, models
from settings import isa, threads

# (n, h, w, cin, cout, kernel, stride, pads, units): the CNN-8's shape, odd batches and sizes, channel counts on and
# off the 16/8/4 lanes, strides, 'valid', 5x5 and asymmetric pads, 1 and 16 units.
SHAPES = [
    (150, 28, 28, 1, 8, 3, 1, (1, 1, 1, 1), 10),
    (37, 9, 7, 1, 4, 3, 1, (0, 0, 0, 0), 3),
    (5, 6, 6, 3, 16, 3, 2, (1, 1, 1, 1), 16),
    (9, 11, 8, 2, 5, 5, 1, (2, 1, 0, 2), 1),
    (70, 12, 12, 1, 24, 3, 1, (1, 1, 1, 1), 7),
]


def _bits(arrays):
    return [None if a is None else a.tobytes() for a in arrays]


def _bits_any_nan(arrays):
    """_bits with every NaN made the same NaN. Below the avx512 level the fused and unfused paths form dy by one
    GEMM over different row counts, whose edge tiles may add two NaNs in the other operand order: the NaN then has
    the other sign (IEEE leaves which NaN propagates open). Every number is still bitwise equal."""
    return _bits([None if a is None else np.where(np.isnan(a), np.float32(np.nan), a) for a in arrays])


def _case(rng, n, h, w, cin, cout, kernel, stride, pads, units, kind="normal"):
    oh = (h + pads[0] + pads[1] - kernel) // stride + 1
    ow = (w + pads[2] + pads[3] - kernel) // stride + 1
    x = rng.standard_normal((n, h, w, cin)).astype(np.float32)
    gate = np.maximum(rng.standard_normal((n, oh, ow, cout)), 0).astype(np.float32)
    dz = rng.standard_normal((n, units)).astype(np.float32)
    dense_w = (rng.standard_normal((oh * ow * cout, units)) * 0.1).astype(np.float32)
    if kind == "special":  # NaN and infinities in dz, -0 in the Dense kernel
        dz.reshape(-1)[rng.choice(dz.size, max(1, dz.size // 7), replace=False)] = np.nan
        dz.reshape(-1)[: max(1, dz.size // 11)] = np.inf
        dense_w.reshape(-1)[::5] = -0.0
    return x, gate, dz, dense_w, (oh, ow)


def _unfused(x, gate, dz, dense_w, geometry, kernel, stride, pads, bounds, need_db=True):
    n = len(x)
    dy = K.dense_backward(dz, np.zeros((n, dense_w.shape[0]), np.float32), dense_w, need_dx=True, need_db=False,
                          need_dw=False, algo="gemm skinny")[0].reshape((n,) + geometry + (gate.shape[3],))
    return K.conv2d_backward_weights_shards(dy, x, kernel, kernel, stride, stride, *pads, bounds, need_db=need_db,
                                            y=gate, algo="direct")


def _fused(x, gate, dz, dense_w, kernel, stride, pads, bounds, need_db=True):
    return K.conv2d_backward_weights_shards_from_dense(dz, dense_w, x, kernel, kernel, gate.shape[3], stride, stride,
                                                       *pads, bounds, need_db=need_db, y=gate)


def _bounds(n, shards):
    k = max(1, min(shards, n))
    return [s * n // k for s in range(k + 1)]


@pytest.mark.parametrize("kind", ["normal", "special"])
@pytest.mark.parametrize("n, h, w, cin, cout, kernel, stride, pads, units", SHAPES)
def test_the_fused_weight_gradient_equals_the_unfused_calls_bitwise(rng, n, h, w, cin, cout, kernel, stride, pads,
                                                                     units, kind):
    x, gate, dz, dense_w, geometry = _case(rng, n, h, w, cin, cout, kernel, stride, pads, units, kind)
    same = _bits if K.get_isa() == "avx512" else _bits_any_nan
    for shards in (1, 2, 12):
        bounds = _bounds(n, shards)
        want = _unfused(x, gate, dz, dense_w, geometry, kernel, stride, pads, bounds)
        for t in (1, 2, 3):
            with threads(t):
                got = _fused(x, gate, dz, dense_w, kernel, stride, pads, bounds)
            assert same(got) == same(want), f"{shards} shards, {t} threads"


def test_the_fused_gradient_matches_a_numpy_reference(rng):
    n, h, w, cout, units = 6, 7, 5, 4, 3
    x, gate, dz, dense_w, (oh, ow) = _case(rng, n, h, w, 1, cout, 3, 1, (1, 1, 1, 1), units)
    dw, db = _fused(x, gate, dz, dense_w, 3, 1, (1, 1, 1, 1), [0, n])
    dy = (dz.astype(np.float64) @ dense_w.T.astype(np.float64)).reshape(n, oh, ow, cout) * (gate > 0)
    xp = np.pad(x.astype(np.float64), ((0, 0), (1, 1), (1, 1), (0, 0)))
    want = np.zeros((3, 3, 1, cout))
    for ky in range(3):
        for kx in range(3):
            want[ky, kx, 0] = np.einsum("nhw,nhwc->c", xp[:, ky:ky + oh, kx:kx + ow, 0], dy)
    np.testing.assert_allclose(dw[0], want, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(db[0], dy.sum(axis=(0, 1, 2)), rtol=1e-4, atol=1e-5)


def test_without_gate_and_without_bias(rng):
    x, gate, dz, dense_w, geometry = _case(rng, 20, 10, 10, 1, 8, 3, 1, (1, 1, 1, 1), 10)
    bounds = _bounds(20, 3)
    want = _unfused(x, np.ones_like(gate), dz, dense_w, geometry, 3, 1, (1, 1, 1, 1), bounds, need_db=False)
    got = K.conv2d_backward_weights_shards_from_dense(dz, dense_w, x, 3, 3, 8, 1, 1, 1, 1, 1, 1, bounds,
                                                      need_db=False)
    assert got[1] is None and _bits(got) == _bits(want)


@pytest.mark.parametrize("level", ["avx2", "generic"])
def test_lower_isa_levels_give_the_unfused_bits_of_that_level(rng, level):
    if level not in K.available_isas():
        pytest.skip(f"the CPU has no {level}")
    x, gate, dz, dense_w, geometry = _case(rng, 30, 28, 28, 1, 8, 3, 1, (1, 1, 1, 1), 10)
    bounds = _bounds(30, 4)
    with isa(level):
        assert _bits(_fused(x, gate, dz, dense_w, 3, 1, (1, 1, 1, 1), bounds)) == \
            _bits(_unfused(x, gate, dz, dense_w, geometry, 3, 1, (1, 1, 1, 1), bounds))


def test_bad_input_is_a_clear_error(rng):
    x, gate, dz, dense_w, _ = _case(rng, 4, 6, 6, 1, 8, 3, 1, (1, 1, 1, 1), 10)
    call = K.conv2d_backward_weights_shards_from_dense
    with pytest.raises(ValueError, match=r"dz must be \(n, units\)"):
        call(dz[:3], dense_w, x, 3, 3, 8, 1, 1, 1, 1, 1, 1, [0, 4])
    with pytest.raises(ValueError, match=r"units <= 16"):
        call(np.zeros((4, 17), np.float32), np.zeros((288, 17), np.float32), x, 3, 3, 8, 1, 1, 1, 1, 1, 1, [0, 4])
    with pytest.raises(ValueError, match=r"dense_w"):
        call(dz, dense_w[:-1], x, 3, 3, 8, 1, 1, 1, 1, 1, 1, [0, 4])
    with pytest.raises(ValueError, match=r"\by\b"):
        call(dz, dense_w, x, 3, 3, 8, 1, 1, 1, 1, 1, 1, [0, 4], y=gate[:, :5])
    with pytest.raises(TypeError, match=r"dz"):
        call(dz.astype(np.float64), dense_w, x, 3, 3, 8, 1, 1, 1, 1, 1, 1, [0, 4])
    with pytest.raises(ValueError, match=r"shards"):
        call(dz, dense_w, x, 3, 3, 8, 1, 1, 1, 1, 1, 1, [0, 2])
    with pytest.raises(ValueError, match=r"cout"):
        call(dz, dense_w, x, 3, 3, 0, 1, 1, 1, 1, 1, 1, [0, 4])


# ----- forward: the Dense's product in the conv's kernel --------------------------------------------------------------

@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("n, h, w, cin, cout, kernel, stride, pads, units", SHAPES + [(13, 8, 8, 2, 3, 3, 1,
                                                                                       (0, 0, 0, 0), 40)])
def test_the_fused_forward_equals_conv_then_dense_bitwise(rng, n, h, w, cin, cout, kernel, stride, pads, units, bias):
    x, _, _, dense_w, _ = _case(rng, n, h, w, cin, cout, kernel, stride, pads, units)
    k = rng.standard_normal((kernel, kernel, cin, cout)).astype(np.float32)
    b = rng.standard_normal(cout).astype(np.float32) if bias else None
    dense_b = rng.standard_normal(units).astype(np.float32) if bias else None
    x.reshape(-1)[:: 17] = np.nan
    for relu in (True, False):
        y = K.conv2d_forward(x, k, b, stride, stride, *pads, relu=relu, algo="direct")
        want = (y.tobytes(), K.dense_forward(y.reshape(n, -1), dense_w, dense_b).tobytes())
        for t in (1, 2, 3):
            with threads(t):
                got = K.conv2d_forward_dense(x, k, b, stride, stride, *pads, dense_w, dense_b, relu=relu)
            assert (got[0].tobytes(), got[1].tobytes()) == want, f"relu={relu}, {t} threads"


def test_the_fused_forward_on_an_empty_batch_and_bad_input(rng):
    x = np.zeros((0, 6, 6, 1), np.float32)
    k = np.ones((3, 3, 1, 4), np.float32)
    y, z = K.conv2d_forward_dense(x, k, None, 1, 1, 0, 0, 0, 0, np.ones((64, 3), np.float32), None)
    assert y.shape == (0, 4, 4, 4) and z.shape == (0, 3)
    x = np.ones((2, 6, 6, 1), np.float32)
    with pytest.raises(ValueError, match=r"dense_w must be \(oh \* ow \* cout, units\)"):
        K.conv2d_forward_dense(x, k, None, 1, 1, 0, 0, 0, 0, np.ones((63, 3), np.float32), None)
    with pytest.raises(ValueError, match=r"dense_b"):
        K.conv2d_forward_dense(x, k, None, 1, 1, 0, 0, 0, 0, np.ones((64, 3), np.float32), np.ones(2, np.float32))
    with pytest.raises(TypeError, match=r"relu"):
        K.conv2d_forward_dense(x, k, None, 1, 1, 0, 0, 0, 0, np.ones((64, 3), np.float32), None, relu=1)


# ----- the plan -----------------------------------------------------------------------------------------------------

def _cnn8(**kw):
    conv = {"padding": "same", "activation": "relu", **kw.pop("conv", {})}
    dense = {"activation": "softmax", **kw.pop("dense", {})}
    return models.Sequential([layers.Input((28, 28, 1)), layers.Conv2D(8, 3, **conv), layers.Flatten(),
                              layers.Dense(10, **dense)])


def _compiled(model):
    model.compile("adam", "categorical_crossentropy", ["accuracy"])
    return model


def _fused_steps(model):
    """(steps fused forward, steps fused backward) of the compiled model's plan."""
    plan = _compiled(model).plan
    forward = [s.index for s in plan.steps if s.feeds_dense or s.carries_dense_input or s.product_from_previous_conv]
    backward = [s.index for s in plan.steps if s.dy_from_dense or s.carries_dense_gradient or s.dx_deferred]
    return forward, backward


AVX512 = K.get_isa() == "avx512"


def test_the_cnn8_plan_says_so():
    plan = _compiled(_cnn8()).plan
    assert "conv_dense_fusion=True" in str(plan).splitlines()[0]
    assert "runs the next dense's product from its output in cache" in plan.steps[0].summary()
    assert "passes the fused conv/dense values through" in plan.steps[1].summary()
    assert "product run by the previous conv" in plan.steps[2].summary()
    if AVX512:
        assert "dy from the next dense's dz in the weight-gradient kernel" in plan.steps[0].summary()
        assert "input gradient computed in the previous conv's weight-gradient kernel" in plan.steps[2].summary()


def _two_convs():
    return models.Sequential([layers.Input((28, 28, 1)), layers.Conv2D(8, 3, activation="relu"),
                              layers.Conv2D(4, 3, activation="relu"), layers.Flatten(), layers.Dense(10)])


@pytest.mark.parametrize("build", [
    pytest.param(lambda: _cnn8(dense={"activation": "relu"}), id="dense-with-relu"),
    pytest.param(lambda: _cnn8(conv={"activation": "sigmoid"}), id="conv-with-sigmoid"),
    pytest.param(lambda: models.Sequential([layers.Input((12, 12, 16)), layers.Conv2D(8, 3, activation="relu"),
                                            layers.Flatten(), layers.Dense(10)]), id="conv-not-direct"),
    pytest.param(lambda: models.Sequential([layers.Input((28, 28, 1)), layers.Conv2D(8, 3, activation="relu"),
                                            layers.Flatten(), layers.Dropout(0.5), layers.Dense(10)]),
                 id="dropout-between"),
    pytest.param(lambda: models.Sequential([layers.Input((28, 28, 1)), layers.Conv2D(8, 3, activation="relu"),
                                            layers.MaxPooling2D(2), layers.Flatten(), layers.Dense(10)]),
                 id="pool-between"),
])
def test_no_fusion_where_it_does_not_apply(build):
    model = build()
    forward, backward = _fused_steps(model)
    assert backward == []
    assert forward == [] or model.plan.steps[0].algorithms["forward"] != "direct" and forward == [0, 1, 2]


def test_the_forward_alone_where_the_backward_does_not_apply():
    wide = models.Sequential([layers.Input((28, 28, 1)), layers.Conv2D(8, 3, activation="relu"), layers.Flatten(),
                              layers.Dense(17)])
    assert _fused_steps(wide) == ([0, 1, 2], [])
    model = _two_convs()
    forward, backward = _fused_steps(model)
    assert backward == []  # the second conv computes its input gradient
    assert forward == ([1, 2, 3] if model.plan.steps[1].algorithms["forward"] == "direct" else [])


def test_settings_and_policies_turn_it_off():
    with config.override(conv_dense_fusion=False):
        assert _fused_steps(_cnn8()) == ([], [])
    with config.override(dense_algo="gemm"):
        assert _fused_steps(_cnn8()) == ([0, 1, 2], [])
    with pytest.raises(ValueError, match="conv_dense_fusion"):
        with config.override(conv_dense_fusion=1):
            pass
    old = mixed_precision.global_policy().name
    mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        assert _fused_steps(_cnn8()) == ([], [])
    finally:
        mixed_precision.set_global_policy(old)
    assert _fused_steps(_cnn8()) == ([0, 1, 2], [0, 1, 2] if AVX512 else [])


def test_a_plan_prefix_cut_inside_the_fusion_returns_the_conv_and_flatten_outputs():
    model = _compiled(_cnn8())
    x = np.random.default_rng(0).random((5, 28, 28, 1), dtype=np.float32)
    with config.override(conv_dense_fusion=False):
        apart = _compiled(_cnn8())
    apart.set_weights(model.get_weights())
    for stop in (1, 2, 3):
        got = model.plan.prefix(stop).forward(x, training=False)[0]
        want = apart.plan.prefix(stop).forward(x, training=False)[0]
        assert isinstance(got, np.ndarray) and got.tobytes() == want.tobytes()


# ----- training -----------------------------------------------------------------------------------------------------

def _train(fusion, build, n=300, t=2):
    rng = np.random.default_rng(5)
    x = rng.random((n, 28, 28, 1), dtype=np.float32)
    with config.override(conv_dense_fusion=fusion), threads(t):
        cnnlite.utils.set_random_seed(3)
        model = _compiled(build())
        assert bool(_fused_steps(model)[0]) == fusion
        units = model.plan.steps[-1].output_shape[-1]
        y = np.eye(units, dtype=np.float32)[rng.integers(0, units, n)]
        history = model.fit(x, y, batch_size=150, epochs=2, verbose=0, validation_data=(x[:100], y[:100]))
        out = model.predict(x[:70], verbose=0)
    return model.get_weights(), history.history, out


@pytest.mark.parametrize("t", [1, 3])
@pytest.mark.parametrize("build", [
    pytest.param(_cnn8, id="cnn8"),
    pytest.param(lambda: _cnn8(conv={"padding": "valid", "use_bias": False, "activation": None},
                               dense={"activation": "sigmoid", "use_bias": False}),
                 id="valid-no-bias-linear-conv-sigmoid-dense"),
    pytest.param(lambda: models.Sequential([layers.Input((28, 28, 1)), layers.Conv2D(8, 3, activation="relu"),
                                            layers.Flatten(), layers.Dense(17, activation="softmax")]),
                 id="forward-only"),
])
def test_fused_training_equals_unfused_bitwise(build, t):
    fused, unfused = _train(True, build, t=t), _train(False, build, t=t)
    assert [w.tobytes() for w in fused[0]] == [w.tobytes() for w in unfused[0]]
    assert fused[1] == unfused[1]
    assert fused[2].tobytes() == unfused[2].tobytes()
