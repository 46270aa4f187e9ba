"""Max-pool in the Winograd store: a ReLU'd Winograd Conv2D followed by a 2x2, stride-2, unpadded MaxPooling2D over an
output of even height and width runs as one forward kernel (pooled max + argmax written by the output transform) and
two gradient kernels that rebuild each tile's gradient from the pool's (dy, argmax, pooled output as the ReLU gate).
Everything is compared bitwise with the unfused kernel calls and with unfused training."""
import numpy as np
import pytest

import cnnlite
from cnnlite import _kernels as K
from cnnlite import config, layers, mixed_precision, models
from settings import threads

WINDOW = (2, 2, 2, 2, 0, 0, 0, 0)

# (n, h, w, cin, cout, pads): valid convolutions (the chapter's, odd batch, channel counts off the 16/8 lanes), a
# 'same' one (its input-gradient patches straddle the pooling windows) and asymmetric pads; mixed pads of 0-2, where
# the input gradient's tile rows and columns start on a window or inside one (its column ring computes whole windows
# only where both are aligned), with 16 + 16 + 8 channels; and tile blocks that start mid tile row and mid image.
SHAPES = [
    (3, 26, 26, 16, 32, (0, 0, 0, 0)),
    (2, 12, 12, 32, 64, (0, 0, 0, 0)),
    (1, 6, 8, 3, 5, (0, 0, 0, 0)),
    (5, 10, 8, 20, 17, (1, 1, 1, 1)),
    (4, 7, 9, 9, 25, (0, 1, 0, 1)),
    (2, 9, 11, 24, 40, (2, 1, 1, 2)),
    (3, 14, 13, 40, 7, (1, 1, 0, 1)),
    (2, 8, 8, 6, 13, (2, 2, 2, 2)),
    (20, 10, 10, 16, 16, (0, 0, 0, 0)),
]


def _data(rng, n, h, w, cin, cout, kind):
    x = rng.standard_normal((n, h, w, cin)).astype(np.float32)
    k = (rng.standard_normal((3, 3, cin, cout)) / np.sqrt(9 * cin)).astype(np.float32)
    b = rng.standard_normal(cout).astype(np.float32)
    if kind == "ties":  # small integers: exact ties inside the windows (and many ReLU zeros)
        x = np.round(x * 2).astype(np.float32)
        k = np.round(k * 4).astype(np.float32)
        b = np.round(b).astype(np.float32)
    elif kind == "nan":  # NaN and large negative inputs: NaN outputs, windows cut wholly by the ReLU
        x.reshape(-1)[rng.choice(x.size, max(1, x.size // 200), replace=False)] = np.nan
        x[:, : h // 3] -= 8.0
    return x, k, b


def _pool_ref(z):
    """NumPy max-pool (2x2, stride 2) with maxpool2d_forward's rule: the cells compared in row-major order, a later
    one winning only when strictly greater; argmax the flat index r * w + c in the plane of z."""
    n, h, w, c = z.shape
    rows, cols = np.meshgrid(np.arange(0, h - 1, 2), np.arange(0, w - 1, 2), indexing="ij")
    best, arg = z[:, rows, cols], np.broadcast_to((rows * w + cols)[None, :, :, None], (n,) + rows.shape + (c,))
    for dr, dc in ((0, 1), (1, 0), (1, 1)):
        v = z[:, rows + dr, cols + dc]
        with np.errstate(invalid="ignore"):
            greater = v > best
        best = np.where(greater, v, best)
        arg = np.where(greater, ((rows + dr) * w + cols + dc)[None, :, :, None], arg)
    return best.astype(np.float32), arg.astype(np.int32)


def _unfused(x, k, b, pads, dy, bounds, precision):
    n, h, w, _ = x.shape
    z = K.conv2d_forward(x, k, b, 1, 1, *pads, relu=True, algo="winograd", precision=precision)
    y, argmax = K.maxpool2d_forward(z, *WINDOW)
    dz = K.maxpool2d_backward(dy, argmax, z.shape[1], z.shape[2], window=WINDOW, y=y)
    dx = K.conv2d_backward_input(dz, k, h, w, 1, 1, *pads, algo="winograd", precision=precision)
    dk, db = K.conv2d_backward_weights_shards(dz, x, 3, 3, 1, 1, *pads, bounds, algo="winograd",
                                              precision=precision)
    return z, y, argmax, dx, dk, db


def _fused(x, k, b, pads, dy, bounds, precision):
    n, h, w, _ = x.shape
    y, argmax = K.conv2d_maxpool_forward(x, k, b, 1, 1, *pads, relu=True, precision=precision)
    dx = K.conv2d_maxpool_backward_input(dy, argmax, k, h, w, 1, 1, *pads, y=y, precision=precision)
    dk, db = K.conv2d_maxpool_backward_weights_shards(dy, argmax, x, 3, 3, 1, 1, *pads, bounds, y=y,
                                                      precision=precision)
    return y, argmax, dx, dk, db


def _bits(a):
    return None if a is None else (a.dtype, a.shape, a.tobytes())


@pytest.mark.parametrize("precision", [None, "bfloat16"])
@pytest.mark.parametrize("kind", ["random", "ties", "nan"])
@pytest.mark.parametrize("n,h,w,cin,cout,pads", SHAPES)
def test_fused_kernels_equal_the_unfused_calls_bitwise(rng, n, h, w, cin, cout, pads, kind, precision):
    x, k, b = _data(rng, n, h, w, cin, cout, kind)
    assert K.conv2d_maxpool_applies(n, h, w, cin, 3, 3, cout, 1, 1, *pads)
    oh, ow = h + pads[0] + pads[1] - 2, w + pads[2] + pads[3] - 2
    dy = rng.standard_normal((n, oh // 2, ow // 2, cout)).astype(np.float32)
    dy.reshape(-1)[::7] = -0.0  # -0 reaches the kernels as +0 (0 + dy), as maxpool2d_backward writes it
    bounds = [0, n // 2, n] if n > 1 else [0, n]
    z, y, argmax, dx, dk, db = _unfused(x, k, b, pads, dy, bounds, precision)
    ref_y, ref_arg = _pool_ref(z)
    assert _bits(y) == _bits(ref_y) and _bits(argmax) == _bits(ref_arg)
    if kind == "nan":
        assert np.isnan(y).any() and (y == 0).any()
    expected = (y, argmax, dx, dk, db)
    for t in (1, 2, 3):
        with threads(t):
            got = _fused(x, k, b, pads, dy, bounds, precision)
        for name, a, e in zip(("y", "argmax", "dx", "dk", "db"), got, expected):
            assert _bits(a) == _bits(e), f"{name} differs with {t} threads"


def test_without_gate_and_without_relu(rng):
    """The gate is optional (no ReLU cut) and the forward's ReLU too: still the unfused bits."""
    x, k, b = _data(rng, 3, 10, 10, 8, 12, "random")
    z = K.conv2d_forward(x, k, b, 1, 1, 0, 0, 0, 0, relu=False, algo="winograd")
    y, argmax = K.maxpool2d_forward(z, *WINDOW)
    fy, fa = K.conv2d_maxpool_forward(x, k, b, 1, 1, 0, 0, 0, 0, relu=False)
    assert _bits(fy) == _bits(y) and _bits(fa) == _bits(argmax) and (y < 0).any()
    dy = rng.standard_normal(y.shape).astype(np.float32)
    dz = K.maxpool2d_backward(dy, argmax, 8, 8, window=WINDOW)
    dx = K.conv2d_backward_input(dz, k, 10, 10, 1, 1, 0, 0, 0, 0, algo="winograd")
    assert _bits(K.conv2d_maxpool_backward_input(dy, argmax, k, 10, 10, 1, 1, 0, 0, 0, 0)) == _bits(dx)
    dk, db = K.conv2d_backward_weights_shards(dz, x, 3, 3, 1, 1, 0, 0, 0, 0, [0, 3], need_db=False,
                                              algo="winograd")
    fk, fb = K.conv2d_maxpool_backward_weights_shards(dy, argmax, x, 3, 3, 1, 1, 0, 0, 0, 0, [0, 3], need_db=False)
    assert fb is None and db is None and _bits(fk) == _bits(dk)


def test_empty_batch(rng):
    x, k, b = _data(rng, 2, 6, 6, 4, 4, "random")
    e, ea = K.conv2d_maxpool_forward(x[:0], k, b, 1, 1, 0, 0, 0, 0, relu=True)
    assert e.shape == (0, 2, 2, 4) and ea.shape == (0, 2, 2, 4)
    assert K.conv2d_maxpool_backward_input(e, ea, k, 6, 6, 1, 1, 0, 0, 0, 0, y=e).shape == (0, 6, 6, 4)


def test_bad_input_is_a_clear_error(rng):
    x, k, b = _data(rng, 2, 6, 6, 4, 4, "random")
    y, argmax = K.conv2d_maxpool_forward(x, k, b, 1, 1, 0, 0, 0, 0, relu=True)
    args = (k, 6, 6, 1, 1, 0, 0, 0, 0)
    with pytest.raises(ValueError, match="even height and width"):
        K.conv2d_maxpool_forward(np.ascontiguousarray(x[:, :5]), k, b, 1, 1, 0, 0, 0, 0, relu=True)
    with pytest.raises(ValueError, match="3x3, stride-1"):
        K.conv2d_maxpool_forward(x, np.zeros((5, 5, 4, 4), np.float32), b, 1, 1, 0, 0, 0, 0)
    with pytest.raises(TypeError, match="argmax"):
        K.conv2d_maxpool_backward_input(y, argmax.astype(np.int64), *args, y=y)
    with pytest.raises(ValueError, match="argmax"):
        K.conv2d_maxpool_backward_input(y, argmax[:, :1].copy(), *args, y=y)
    with pytest.raises(ValueError, match="dy"):
        K.conv2d_maxpool_backward_input(y[:, :1].copy(), argmax, *args, y=y)
    with pytest.raises(ValueError, match="y"):
        K.conv2d_maxpool_backward_input(y, argmax, *args, y=y[:, :, :1].copy())
    with pytest.raises(ValueError, match="even height and width"):
        K.conv2d_maxpool_backward_input(y, argmax, k, 7, 6, 1, 1, 0, 0, 0, 0)
    with pytest.raises(ValueError, match="precision"):
        K.conv2d_maxpool_forward(x, k, b, 1, 1, 0, 0, 0, 0, precision="float16")
    with pytest.raises(ValueError, match="shards"):
        K.conv2d_maxpool_backward_weights_shards(y, argmax, x, 3, 3, 1, 1, 0, 0, 0, 0, [0, 3], y=y)
    with pytest.raises(ValueError, match="argmax"):
        K.conv2d_maxpool_backward_weights_shards(y, argmax[:1].copy(), x, 3, 3, 1, 1, 0, 0, 0, 0, [0, 2], y=y)


# ----- the plan -----------------------------------------------------------------------------------------------------

def _full_network(**conv2):
    conv2 = {"activation": "relu", **conv2}
    return models.Sequential([
        layers.Input((28, 28, 1)), layers.Conv2D(16, 3, activation="relu"), layers.Conv2D(32, 3, **conv2),
        layers.MaxPooling2D(2), layers.Conv2D(64, 3, activation="relu"), layers.MaxPooling2D(2),
        layers.Dropout(0.25), layers.Flatten(), layers.Dense(128, activation="relu"), layers.Dropout(0.5),
        layers.Dense(10, activation="softmax")])


def _compiled(model):
    model.compile("adam", "categorical_crossentropy", ["accuracy"])
    return model


@pytest.fixture
def winograd_convs():
    """The full network's conv2 and conv3 on Winograd in all three passes: the automatic choice at avx512; at the
    levels whose choice is GEMM for some of those passes (generic: forward and weight gradient, avx2: conv2's
    forward) the tests below force it with conv_algo='winograd' (conv1 then runs Winograd too; it has no pool)."""
    steps = _compiled(_full_network()).plan.steps
    if all(steps[i].algorithms[p] == "winograd" for i in (1, 3) for p in ("forward", "input_grad", "weight_grad")):
        yield "auto"
        return
    with config.override(conv_algo="winograd"):
        yield "winograd"


def test_the_full_network_pools_in_both_winograd_stores(winograd_convs):
    plan = _compiled(_full_network()).plan
    text = str(plan)
    assert "pool_fusion=True" in text.splitlines()[0]
    for conv, pool in ((1, 2), (3, 4)):
        assert plan.steps[conv].pool_in_store and plan.steps[pool].pooled_in_previous_store
        assert "bias+relu+max-pool in the winograd store" in plan.steps[conv].summary()
        assert "relu and max-pool backward in the gradient kernels" in plan.steps[conv].summary()
        assert "fused into the previous conv" in plan.steps[pool].summary()
    assert text.count("fused into the previous conv") == 2
    assert not plan.steps[0].pool_in_store  # no pool after it


def _pool_fused(model):
    return [s.index for s in _compiled(model).plan.steps if s.pool_in_store]


def _pool_grad_fused(model):
    return [s.index for s in _compiled(model).plan.steps if s.pool_grad_in_kernels]


@pytest.mark.parametrize("build", [
    pytest.param(lambda: models.Sequential([layers.Input((7, 7, 8)), layers.Conv2D(8, 3, padding="same",
                                                                                   activation="relu"),
                                            layers.MaxPooling2D(2), layers.Flatten(), layers.Dense(10)]),
                 id="same-padding-odd-output"),
    pytest.param(lambda: models.Sequential([layers.Input((10, 10, 8)), layers.Conv2D(8, 3, activation="relu"),
                                            layers.MaxPooling2D(2, strides=1), layers.Flatten(), layers.Dense(10)]),
                 id="pool-stride-1"),
    pytest.param(lambda: models.Sequential([layers.Input((11, 11, 8)), layers.Conv2D(8, 3, activation="relu"),
                                            layers.MaxPooling2D(3), layers.Flatten(), layers.Dense(10)]),
                 id="pool-3x3"),
    pytest.param(lambda: models.Sequential([layers.Input((11, 11, 8)), layers.Conv2D(8, 3, activation="relu"),
                                            layers.MaxPooling2D(2, padding="same"), layers.Flatten(),
                                            layers.Dense(10)]),
                 id="conv-odd-output-pool-same"),
    pytest.param(lambda: models.Sequential([layers.Input((10, 10, 8)), layers.Conv2D(8, 3, activation="relu"),
                                            layers.AveragePooling2D(2), layers.Flatten(), layers.Dense(10)]),
                 id="average-pool"),
    pytest.param(lambda: _full_network(activation=None), id="conv-without-relu"),
    pytest.param(lambda: _full_network(activation="sigmoid"), id="conv-with-sigmoid"),
    pytest.param(lambda: models.Sequential([layers.Input((10, 10, 8)), layers.Conv2D(8, 3, strides=2,
                                                                                   activation="relu"),
                                            layers.MaxPooling2D(2), layers.Flatten(), layers.Dense(10)]),
                 id="conv-stride-2"),
])
def test_no_fusion_where_it_does_not_apply(build):
    model = build()
    fused = _pool_fused(model)
    if fused:  # only the full network's untouched second pair may fuse
        assert fused == [3]
    assert _pool_grad_fused(model) == []
    assert "max-pool in the winograd store" not in model.plan.steps[1].summary()
    assert "max-pool backward" not in model.plan.steps[1].summary()


def test_settings_turn_it_off(winograd_convs):
    with config.override(pool_fusion=False):
        assert _pool_fused(_full_network()) == []
    with config.override(conv_algo="gemm"):
        assert _pool_fused(_full_network()) == []
    with pytest.raises(ValueError, match="pool_fusion"):
        with config.override(pool_fusion=1):
            pass
    assert _pool_fused(_full_network()) == [1, 3]


@pytest.fixture
def gemm_forward_conv2():
    """The full network's conv2 (16 input channels) with a GEMM forward and Winograd gradients: the automatic choice
    at avx2 (winograd_min_channels: the forward from 32 input channels, the gradients from 4 and 16), which this
    fixture sets (every x86-64 CPU the kernels build for has it), then restores."""
    if "avx2" not in K.available_isas():
        pytest.skip("the CPU has no AVX2 (the level whose choice this is)")
    previous = config.set_isa("avx2")
    try:
        steps = _compiled(_full_network()).plan.steps
        assert [steps[1].algorithms[p] for p in ("forward", "input_grad", "weight_grad")] == \
            ["gemm", "winograd", "winograd"]
        yield
    finally:
        config.set_isa(previous)


def test_a_gemm_forward_hands_the_pool_gradient_to_its_winograd_gradient_kernels(gemm_forward_conv2):
    plan = _compiled(_full_network()).plan
    conv, pool = plan.steps[1], plan.steps[2]
    assert conv.pool_grad_in_kernels and pool.pool_grad_in_previous_kernels
    assert not conv.pool_in_store and not pool.pooled_in_previous_store
    assert "bias+relu in the gemm store" in conv.summary()
    assert "relu and max-pool backward in the gradient kernels" in conv.summary()
    assert "backward in the previous conv's gradient kernels" in pool.summary()
    assert plan.steps[3].pool_in_store and not plan.steps[3].pool_grad_in_kernels  # conv3 pools in its store
    with config.override(pool_fusion=False):
        assert _pool_grad_fused(_full_network()) == [] and _pool_fused(_full_network()) == []
    with config.override(conv_algo="gemm"):
        assert _pool_grad_fused(_full_network()) == []
    for activation in (None, "sigmoid"):  # the gate must be the pool's ReLU
        assert _pool_grad_fused(_full_network(activation=activation)) == []


# ----- training -----------------------------------------------------------------------------------------------------

def _train(fusion, policy="float32", n=160):
    rng = np.random.default_rng(5)
    x = rng.random((n, 28, 28, 1), dtype=np.float32)
    y = np.eye(10, dtype=np.float32)[rng.integers(0, 10, n)]
    old = mixed_precision.global_policy().name
    mixed_precision.set_global_policy(policy)
    try:
        with config.override(pool_fusion=fusion):
            cnnlite.utils.set_random_seed(3)
            model = _compiled(_full_network())
            assert bool(_pool_fused(model) + _pool_grad_fused(model)) == fusion
            history = model.fit(x, y, batch_size=64, epochs=2, verbose=0)
            out = model.predict(x[:40], verbose=0)
            score = model.evaluate(x[:80], y[:80], verbose=0)
    finally:
        mixed_precision.set_global_policy(old)
    return model.get_weights(), history.history, out, score


@pytest.mark.parametrize("policy", ["float32", "mixed_bfloat16"])
def test_fused_training_equals_unfused_bitwise(policy, winograd_convs):
    fused, unfused = _train(True, policy), _train(False, policy)
    assert [w.tobytes() for w in fused[0]] == [w.tobytes() for w in unfused[0]]
    assert fused[1] == unfused[1] and fused[3] == unfused[3]
    assert fused[2].tobytes() == unfused[2].tobytes()


@pytest.mark.parametrize("policy", ["float32", "mixed_bfloat16"])
def test_pool_gradient_in_the_kernels_after_a_gemm_forward_trains_bitwise_unfused(policy, gemm_forward_conv2):
    fused, unfused = _train(True, policy), _train(False, policy)
    assert [w.tobytes() for w in fused[0]] == [w.tobytes() for w in unfused[0]]
    assert fused[1] == unfused[1] and fused[3] == unfused[3]
    assert fused[2].tobytes() == unfused[2].tobytes()


def test_a_plan_prefix_ending_at_a_fused_conv_returns_its_own_output():
    model = _compiled(_full_network())
    x = np.random.default_rng(0).random((3, 28, 28, 1), dtype=np.float32)
    maps = model.plan.prefix(2).forward(x, training=False)[0]
    assert isinstance(maps, np.ndarray) and maps.shape == (3, 24, 24, 32)
    with config.override(pool_fusion=False):
        model2 = _compiled(_full_network())
    model2.set_weights(model.get_weights())
    assert maps.tobytes() == model2.plan.prefix(2).forward(x, training=False)[0].tobytes()
    assert model.plan.prefix(3).forward(x, training=False)[0].tobytes() == \
        model2.plan.prefix(3).forward(x, training=False)[0].tobytes()
