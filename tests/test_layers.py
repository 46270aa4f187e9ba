"""Layers: Keras arguments, defaults and validation; shape inference; weights; configs; initialisers."""
import json

import numpy as np
import pytest

from cnnlite import initializers, layers
from cnnlite.engine.plan import build_plan
from cnnlite.models import Sequential
from cnnlite.layers import (Activation, AveragePooling2D, Conv2D, Dense, Dropout, Flatten, Input, InputLayer,
                            MaxPooling2D)


# ----- constructor validation ---------------------------------------------------------------------------------
@pytest.mark.parametrize("make,match", [
    (lambda: Dense(0), r"units.*received units=0"),
    (lambda: Dense(2.5), r"units.*received units=2.5"),
    (lambda: Dense("10"), r"units.*received units='10'"),
    (lambda: Dense(3, activation="swishy"), "swishy"),
    (lambda: Dense(3, use_bias="no"), "use_bias"),
    (lambda: Dense(3, kernel_initializer="glorot_nope"), "glorot_nope"),
    (lambda: Dense(3, input_dim=0), r"input_dim.*received input_dim=0"),
    (lambda: Dense(3, input_shape=(0,)), "input_shape"),
    (lambda: Conv2D(0, 3), r"filters.*received filters=0"),
    (lambda: Conv2D(4, (3, 3, 3)), r"kernel_size.*received kernel_size=\(3, 3, 3\)"),
    (lambda: Conv2D(4, 3, strides=0), r"strides.*received strides=0"),
    (lambda: Conv2D(4, 3, padding="full"), r"padding.*received padding='full'"),
    (lambda: Conv2D(4, 3, data_format="nhwc"), "data_format"),
    (lambda: MaxPooling2D(pool_size=-2), r"pool_size.*received pool_size=-2"),
    (lambda: MaxPooling2D(padding="causal"), "padding"),
    (lambda: AveragePooling2D(strides=(1, 0)), "strides"),
    (lambda: Dropout(1.0), r"rate.*received rate=1.0"),
    (lambda: Dropout(-0.1), r"rate.*received rate=-0.1"),
    (lambda: Dropout("half"), "rate"),
    (lambda: Dropout(0.5, seed=-1), "seed"),
    (lambda: Activation("nope"), "nope"),
    (lambda: Dense(3, name=""), "name"),
    (lambda: Input(), "shape"),
])
def test_constructor_validation(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_unknown_keyword_is_a_type_error():
    with pytest.raises(TypeError, match="kernal_size"):
        Conv2D(4, 3, kernal_size=3)


def test_unsupported_keras_options_say_so():
    with pytest.raises(NotImplementedError, match="kernel_regularizer"):
        Dense(3, kernel_regularizer="l2")
    with pytest.raises(NotImplementedError, match="dilation_rate"):
        Conv2D(3, 3, dilation_rate=2)
    with pytest.raises(NotImplementedError, match="channels_last"):
        Conv2D(3, 3, data_format="channels_first")


def test_keras_defaults():
    d = Dense(4)
    assert d.use_bias and isinstance(d.kernel_initializer, initializers.GlorotUniform)
    assert isinstance(d.bias_initializer, initializers.Zeros)
    c = Conv2D(8, 3)
    assert (c.kernel_size, c.strides, c.padding) == ((3, 3), (1, 1), "valid")
    p = MaxPooling2D()
    assert (p.pool_size, p.strides, p.padding) == ((2, 2), (2, 2), "valid")
    assert MaxPooling2D(3).strides == (3, 3)
    assert MaxPooling2D(3, strides=1).strides == (1, 1)
    assert Conv2D(8, 3, padding="SAME").padding == "same"


def test_automatic_names_are_unique_per_class():
    a, b = Dense(1), Dense(1)
    assert a.name.startswith("dense") and b.name.startswith("dense") and a.name != b.name
    assert Conv2D(1, 1).name.startswith("conv2d")
    assert MaxPooling2D().name.startswith("max_pooling2d")
    assert Dense(1, name="out").name == "out"


# ----- shapes -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("layer,in_shape,out_shape", [
    (Dense(7), (None, 5), (None, 7)),
    (Dense(7), (None, 3, 5), (None, 3, 7)),
    (Conv2D(4, 3), (None, 28, 28, 1), (None, 26, 26, 4)),
    (Conv2D(4, 3, strides=2), (None, 28, 28, 1), (None, 13, 13, 4)),
    (Conv2D(4, 3, strides=2, padding="same"), (None, 7, 5, 2), (None, 4, 3, 4)),
    (Conv2D(4, (5, 2), strides=(3, 1), padding="same"), (None, 10, 9, 2), (None, 4, 9, 4)),
    (MaxPooling2D(), (None, 5, 5, 3), (None, 2, 2, 3)),
    (MaxPooling2D(padding="same"), (None, 5, 5, 3), (None, 3, 3, 3)),
    (AveragePooling2D(3, strides=1), (None, 5, 4, 2), (None, 3, 2, 2)),
    (Flatten(), (None, 5, 5, 64), (None, 1600)),
    (Dropout(0.5), (None, 9), (None, 9)),
    (Activation("relu"), (None, 2, 3), (None, 2, 3)),
])
def test_output_shapes(layer, in_shape, out_shape):
    model = Sequential([layer])
    model.build(in_shape)
    assert model.output_shape == out_shape
    assert layer.output_shape == out_shape
    assert layer.input_shape == in_shape


@pytest.mark.parametrize("layer,in_shape,match", [
    (Conv2D(4, 3), (None, 784), "expected ndim=4"),
    (Conv2D(4, 5), (None, 3, 3, 1), r"<= 0"),
    (MaxPooling2D(), (None, 1, 1, 3), r"<= 0"),
    (MaxPooling2D(), (None, 8, 3), "expected ndim=4"),
    (Flatten(), (None, None, 3), "fully defined"),
    (Dense(3), (None,), "min_ndim=2"),
])
def test_incompatible_input_shapes(layer, in_shape, match):
    with pytest.raises(ValueError, match=match):
        if len(in_shape) < 2:   # a model refuses such a shape before its layer sees it: call the layer eagerly
            layer(np.zeros(3, np.float32))
        else:
            Sequential([layer]).build(in_shape)


def test_parameter_counts():
    d = Dense(16)
    Sequential([d]).build((None, 784))
    assert d.count_params() == 12560
    c = Conv2D(32, 3)
    Sequential([c]).build((None, 26, 26, 16))
    assert c.count_params() == 4640
    nb = Conv2D(32, 3, use_bias=False)
    Sequential([nb]).build((None, 26, 26, 16))
    assert nb.count_params() == 4608 and len(nb.get_weights()) == 1


def test_count_params_before_build_is_an_error():
    with pytest.raises(ValueError, match="isn't built"):
        Dense(3).count_params()


# ----- weights ------------------------------------------------------------------------------------------------
def test_get_set_weights_round_trip_and_order():
    layer = Dense(3)
    Sequential([layer]).build((None, 2))
    kernel, bias = layer.get_weights()
    assert kernel.shape == (2, 3) and bias.shape == (3,)
    assert kernel.dtype == np.float32 and not bias.any()
    layer.set_weights([np.arange(6).reshape(2, 3), [1, 2, 3]])   # any numeric dtype, lists too
    k, b = layer.get_weights()
    np.testing.assert_array_equal(k, np.arange(6).reshape(2, 3))
    np.testing.assert_array_equal(b, [1, 2, 3])
    assert k.dtype == np.float32
    k[...] = 99  # get_weights returns copies
    assert layer.get_weights()[0].max() == 5


def test_set_weights_keeps_the_live_arrays():
    layer = Dense(3)
    Sequential([layer]).build((None, 2))
    live = layer.weights[0]
    layer.set_weights([np.ones((2, 3)), np.zeros(3)])
    assert layer.weights[0] is live and live.sum() == 6


@pytest.mark.parametrize("weights,error,match", [
    ([np.ones((2, 3))], ValueError, "expecting 2 weights"),
    ([np.ones((3, 2)), np.zeros(3)], ValueError, r"\(2, 3\).*\(3, 2\)"),
    ([np.ones((2, 3)), np.zeros(4)], ValueError, r"\(3,\).*\(4,\)"),
    (np.ones((2, 3)), TypeError, "list"),
    ([np.ones((2, 3)), ["a", "b", "c"]], TypeError, "numeric"),
])
def test_set_weights_validation(weights, error, match):
    layer = Dense(3)
    Sequential([layer]).build((None, 2))
    before = layer.get_weights()
    with pytest.raises(error, match=match):
        layer.set_weights(weights)
    for a, b in zip(before, layer.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_set_weights_on_unbuilt_layer():
    with pytest.raises(ValueError, match="expecting 0 weights"):
        Dense(3).set_weights([np.ones((2, 3)), np.zeros(3)])


def test_weights_keyword_sets_initial_values():
    layer = Dense(2, weights=[np.ones((3, 2)), np.full(2, 5.0)])
    Sequential([layer]).build((None, 3))
    np.testing.assert_array_equal(layer.get_weights()[1], [5, 5])


# ----- eager calls --------------------------------------------------------------------------------------------
def test_dense_call_computes_activation_of_affine_map():
    layer = Dense(2, activation="relu")
    x = np.array([[1.0, -2.0, 0.5]])
    y = layer(x)
    k, b = layer.get_weights()
    np.testing.assert_allclose(y, np.maximum(x @ k + b, 0), rtol=1e-6)


@pytest.mark.parametrize("make,in_shape", [
    (lambda act: Dense(7, activation=act), (6, 5)),
    (lambda act: Dense(7, activation=act), (2, 3, 5)),          # Dense on the last axis of a 3-D input
    (lambda act: Conv2D(6, 3, padding="same", activation=act), (2, 7, 6, 3)),
    (lambda act: Conv2D(5, (2, 3), strides=2, activation=act, use_bias=False), (3, 9, 8, 4)),
])
def test_fused_relu_layers_equal_linear_layer_then_relu(make, in_shape):
    # Dense/Conv2D with relu run the ReLU inside their kernels (forward store, backward mask): same numbers, bitwise,
    # as the layer without activation followed by Activation("relu").
    rng = np.random.default_rng(7)
    x = rng.standard_normal(in_shape).astype(np.float32)
    fused, linear, relu = make("relu"), make(None), Activation("relu")
    shape = (None,) + in_shape[1:]
    fused_model, linear_model = Sequential([fused]), Sequential([linear, relu])
    for model in (fused_model, linear_model):
        model.build(shape)
    if fused.use_bias:
        fused.set_weights([fused.get_weights()[0], rng.standard_normal(fused.get_weights()[1].shape)])
    linear.set_weights(fused.get_weights())
    fused_plan = build_plan("fused", [fused], shape, input_grad=True)
    linear_plan = build_plan("linear", [linear, relu], shape, input_grad=True)
    assert fused_plan.steps[0].relu_in_kernel and fused_plan.steps[0].mask_relu
    assert not linear_plan.steps[0].relu_in_kernel
    y, fused_tape = fused_plan.forward(x, training=True)
    y_linear, linear_tape = linear_plan.forward(x, training=True)
    np.testing.assert_array_equal(y, y_linear)
    assert (y == 0).any() and (y > 0).any()
    dy = rng.standard_normal(y.shape).astype(np.float32)
    dx, (fused_grads,) = fused_plan.backward(dy, fused_tape)
    dx_linear, (linear_grads, relu_grads) = linear_plan.backward(dy, linear_tape)
    np.testing.assert_array_equal(dx, dx_linear)
    assert relu_grads == [] and len(fused_grads) == len(linear_grads) == len(fused.weights)
    for g_fused, g_linear in zip(fused_grads, linear_grads):
        np.testing.assert_array_equal(g_fused, g_linear)


def _pool_net_run(fold):
    """Two training steps of Conv2D(relu) -> MaxPooling2D -> Conv2D(relu) -> MaxPooling2D -> Flatten -> Dense; with
    fold=False a linear Activation stands between each convolution and its max-pool (the same function), so the
    plan cannot fold and each convolution masks its own gradient."""
    import cnnlite
    cnnlite.utils.set_random_seed(5)
    rng = np.random.default_rng(3)
    x = rng.random((16, 12, 12, 2), dtype=np.float32)
    y = np.eye(3, dtype=np.float32)[rng.integers(0, 3, 16)]
    between = [] if fold else [Activation("linear")]
    model = Sequential([Conv2D(4, 3, activation="relu", input_shape=(12, 12, 2), kernel_initializer="he_normal"),
                        *between, MaxPooling2D(2),
                        Conv2D(6, 2, activation="relu", kernel_initializer="he_normal"),
                        *[Activation("linear") for _ in between], MaxPooling2D(2), Flatten(),
                        Dense(3, activation="softmax")])
    model.compile("adam", "categorical_crossentropy")
    model.fit(x, y, batch_size=8, epochs=1, verbose=0, shuffle=False)
    return model.get_weights(), model.plan


def test_maxpool_folds_the_relu_backward_of_the_conv_before_it():
    # A max-pool fed straight by Conv2D(relu) masks the gradient itself (y > 0 at its argmax cells), and the
    # convolution's kernel then gets no y: same bits as letting each convolution mask its own gradient.
    folded, folded_plan = _pool_net_run(fold=True)
    plain, plain_plan = _pool_net_run(fold=False)
    convs = [s for s in folded_plan.steps if s.kind == "Conv2D"]
    pools = [s for s in folded_plan.steps if s.kind == "MaxPooling2D"]
    assert [(s.relu_in_kernel, s.mask_relu) for s in convs] == [(True, False)] * 2
    assert [s.fold_previous_relu for s in pools] == [True, True]
    assert [s.mask_relu for s in plain_plan.steps if s.kind == "Conv2D"] == [True, True]
    assert not any(s.fold_previous_relu for s in plain_plan.steps)
    for a, b in zip(folded, plain):
        assert a.tobytes() == b.tobytes()


@pytest.mark.parametrize("first", [
    lambda: Conv2D(3, 2, activation="sigmoid"),       # no ReLU to fold
    lambda: Activation("relu"),                      # a ReLU outside a kernel: nothing to skip
])
def test_maxpool_folds_only_a_relu_computed_in_the_kernel_right_before_it(first):
    shape = (None, 6, 6, 2)
    model = Sequential([Conv2D(2, 1, input_shape=shape[1:]), first(), MaxPooling2D(2)])
    steps = model.plan.steps
    assert not steps[2].fold_previous_relu and steps[1].mask_relu == steps[1].relu_in_kernel
    gap = Sequential([Conv2D(3, 2, activation="relu", input_shape=shape[1:]), Dropout(0.5), MaxPooling2D(2)])
    assert gap.plan.steps[0].mask_relu and not gap.plan.steps[2].fold_previous_relu
    # An eager call runs the layer alone: its own step, nothing folded.
    conv, pool = Conv2D(3, 2, activation="relu"), MaxPooling2D(2)
    x = np.random.default_rng(4).standard_normal((2, 6, 6, 2)).astype(np.float32)
    np.testing.assert_array_equal(pool(conv(x)), Sequential([conv, pool]).predict(x, verbose=0))


def test_dropout_only_in_training():
    layer = Dropout(0.5, seed=3)
    x = np.ones((50, 40), np.float32)
    np.testing.assert_array_equal(layer(x), x)
    y = layer(x, training=True)
    assert set(np.unique(y)) <= {0.0, 2.0}
    assert 0.4 < (y == 0).mean() < 0.6
    y2 = layer(x, training=True)
    assert not np.array_equal(y, y2)  # a new mask each training step


def test_dropout_noise_shape_broadcasts_the_mask():
    layer = Dropout(0.5, noise_shape=(None, 1, 1, 6), seed=1)
    y = layer(np.ones((4, 3, 3, 6), np.float32), training=True)
    for sample in y:   # every spatial position of a channel shares the mask value
        assert (sample == sample[:1, :1, :]).all()


def test_flatten_and_pooling_calls():
    x = np.arange(2 * 4 * 4 * 1, dtype=np.float32).reshape(2, 4, 4, 1)
    np.testing.assert_array_equal(MaxPooling2D()(x)[0, :, :, 0], [[5, 7], [13, 15]])
    np.testing.assert_array_equal(AveragePooling2D()(x)[0, :, :, 0], [[2.5, 4.5], [10.5, 12.5]])
    assert Flatten()(x).shape == (2, 16)


# ----- configs ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("layer", [
    Dense(5, activation="relu", use_bias=False, kernel_initializer="he_normal", input_dim=3, name="d"),
    Conv2D(4, (3, 2), strides=2, padding="same", activation="sigmoid", input_shape=(8, 8, 1)),
    MaxPooling2D(3, strides=1, padding="same"),
    AveragePooling2D(),
    Dropout(0.3, seed=4),
    Flatten(),
    Activation("softmax"),
    InputLayer(input_shape=(4,)),
])
def test_serialize_round_trip(layer):
    blob = layers.serialize(layer)
    json.dumps(blob)  # JSON-able
    again = layers.deserialize(json.loads(json.dumps(blob)))
    assert type(again) is type(layer)
    assert again.get_config() == layer.get_config()


def test_first_layer_config_keeps_input_shape():
    assert Dense(16, input_dim=784).get_config()["batch_input_shape"] == [None, 784]


def test_deserialize_unknown_class():
    with pytest.raises(ValueError, match="Unknown layer: 'LSTM'"):
        layers.deserialize({"class_name": "LSTM", "config": {}})


# ----- initialisers -------------------------------------------------------------------------------------------
def test_fans_follow_keras():
    assert initializers.compute_fans((784, 16)) == (784, 16)
    assert initializers.compute_fans((3, 3, 16, 32)) == (144, 288)
    assert initializers.compute_fans((10,)) == (10, 10)


@pytest.mark.parametrize("name,shape,check", [
    ("glorot_uniform", (300, 200), lambda a: abs(a).max() <= np.sqrt(6 / 500) and a.std() == pytest.approx(
        np.sqrt(2 / 500), rel=0.03)),
    ("he_normal", (3, 3, 64, 32), lambda a: a.std() == pytest.approx(np.sqrt(2 / 576), rel=0.05)
     and abs(a).max() <= 2 * np.sqrt(2 / 576) / 0.87962566103423978 + 1e-6),
    ("he_uniform", (400, 100), lambda a: abs(a).max() <= np.sqrt(6 / 400)),
    ("lecun_normal", (500, 100), lambda a: a.std() == pytest.approx(np.sqrt(1 / 500), rel=0.05)),
    ("zeros", (3, 4), lambda a: not a.any()),
    ("ones", (3, 4), lambda a: (a == 1).all()),
])
def test_initializer_statistics(name, shape, check):
    values = initializers.get(name)(shape, rng=np.random.default_rng(0))
    assert values.shape == shape and values.dtype == np.float32
    assert check(values)


def test_seeded_initializer_repeats_and_unseeded_uses_rng():
    init = initializers.GlorotUniform(seed=5)
    np.testing.assert_array_equal(init((4, 4)), init((4, 4)))
    a = initializers.GlorotUniform()((4, 4), rng=np.random.default_rng(1))
    b = initializers.GlorotUniform()((4, 4), rng=np.random.default_rng(1))
    np.testing.assert_array_equal(a, b)


def test_initializer_serialize_round_trip():
    init = initializers.VarianceScaling(2.0, "fan_out", "uniform", seed=3)
    again = initializers.deserialize(initializers.serialize(init))
    assert again.get_config() == init.get_config()
    with pytest.raises(ValueError, match="mode"):
        initializers.VarianceScaling(mode="fan_sideways")
