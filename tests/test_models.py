"""Sequential: construction (list, add, Input), shape inference, summary, parameter counts, weights, configs,
and a NumPy forward pass that predict() must match."""
import json

import numpy as np
import pytest

import cnnlite
import reference_net as ref
from cnnlite.layers import (AveragePooling2D, Conv2D, Dense, Dropout, Flatten, Input, InputLayer, MaxPooling2D)
from cnnlite.models import Sequential, model_from_json


def chapter_mlp():
    model = Sequential()
    model.add(Dense(16, input_dim=784, activation="sigmoid"))
    model.add(Dense(10, activation="softmax"))
    return model


def chapter_cnn():
    return Sequential([
        Conv2D(16, kernel_size=(3, 3), activation="relu", input_shape=(28, 28, 1)),
        Conv2D(32, (3, 3), activation="relu"),
        MaxPooling2D(pool_size=(2, 2)),
        Conv2D(64, (3, 3), activation="relu"),
        MaxPooling2D(pool_size=(2, 2)),
        Dropout(0.25),
        Flatten(),
        Dense(128, activation="relu"),
        Dropout(0.5),
        Dense(10, activation="softmax"),
    ])


def test_chapter_parameter_counts():
    assert chapter_mlp().count_params() == 12730
    assert chapter_cnn().count_params() == 229514


def test_summary_table(capsys):
    chapter_mlp().summary()
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].startswith('Model: "sequential')
    assert lines[2].split() == ["Layer", "(type)", "Output", "Shape", "Param", "#"]
    rows = [l for l in lines if "(Dense)" in l]
    assert len(rows) == 2
    assert "(None, 16)" in rows[0] and rows[0].rstrip().endswith("12560")
    assert "(None, 10)" in rows[1] and rows[1].rstrip().endswith("170")
    assert "Total params: 12,730" in out
    assert "Trainable params: 12,730" in out
    assert "Non-trainable params: 0" in out


def test_summary_of_cnn_and_print_fn(monkeypatch):
    import collections
    from cnnlite.layers import base
    # fresh layer-name counters: where the wrap falls depends on the name's length (max_pooling2d_1 vs _123), which
    # depends on how many layers the tests before this one built
    monkeypatch.setattr(base, "_NAME_UIDS", collections.defaultdict(int))
    lines = []
    chapter_cnn().summary(print_fn=lines.append)
    text = "\n".join(lines)
    assert "Total params: 229,514" in text
    assert "(None, 5, 5, 64)" in text and "(None, 1600)" in text
    assert sum("max_pooling2d" in line for line in lines) == 2
    assert "(MaxPooling" in text   # a long name+type wraps onto the next line rather than being cut


def test_summary_shows_the_plan_on_request():
    model = chapter_cnn()
    model.compile("adam", "categorical_crossentropy", ["accuracy"])
    lines = []
    model.summary(print_fn=lines.append, show_plan=True)
    text = "\n".join(lines)
    assert "Total params: 229,514" in text and text.endswith(model.plan.table())
    assert 'Execution plan of "' + model.name + '"' in text
    for step in model.plan.steps:
        assert any(step.name in line and (step.algorithms["forward"] or "-") in line for line in lines)
    # Both max-pools run in the Winograd stores where conv2 and conv3 choose Winograd for every pass (avx512); at avx2
    # conv2's forward (16 input channels) is GEMM, at generic both are (winograd_min_channels).
    pooled = {"avx512": 2, "avx2": 1, "generic": 0}[cnnlite.config.get_isa()]
    assert text.count("bias+relu+max-pool in the winograd store") == pooled
    assert text.count("fused into the previous conv") == pooled
    assert "fused softmax + cross-entropy" in text
    quiet = []
    model.summary(print_fn=quiet.append)
    assert "Execution plan" not in "\n".join(quiet)


def test_summary_wraps_long_names():
    lines = []
    model = Sequential([Dense(2, input_dim=3, name="a_really_long_layer_name_that_overflows")])
    model.summary(print_fn=lines.append)
    row = next(i for i, line in enumerate(lines) if line.startswith("a_really"))
    assert "(None, 2)" in lines[row] and lines[row].rstrip().endswith("8")
    assert lines[row + 1] == "t_overflows (Dense)"


def test_summary_before_build_is_an_error():
    with pytest.raises(ValueError, match="not yet been built"):
        Sequential([Dense(3)]).summary()


def test_layers_infer_shapes_from_first_layer():
    model = chapter_cnn()
    shapes = [layer.output_shape for layer in model.layers]
    assert shapes == [(None, 26, 26, 16), (None, 24, 24, 32), (None, 12, 12, 32), (None, 10, 10, 64),
                      (None, 5, 5, 64), (None, 5, 5, 64), (None, 1600), (None, 128), (None, 128), (None, 10)]
    assert model.input_shape == (None, 28, 28, 1)
    assert model.output_shape == (None, 10)


@pytest.mark.parametrize("first", [lambda: Input(shape=(784,)), lambda: cnnlite.Input((784,)),
                                   lambda: InputLayer(input_shape=(784,))])
def test_input_as_first_element(first):
    model = Sequential([first(), Dense(16, activation="relu"), Dense(10, activation="softmax")])
    assert model.built and model.count_params() == 12730
    assert len(model.layers) == 2   # the input is not a layer of model.layers (Keras)


def test_model_without_input_shape_builds_on_build_or_data():
    model = Sequential([Dense(4, activation="relu"), Dense(2)])
    assert not model.built
    with pytest.raises(ValueError, match="not yet been built"):
        model.count_params()
    model.build((None, 3))
    assert model.built and model.count_params() == 3 * 4 + 4 + 4 * 2 + 2
    lazy = Sequential([Dense(4), Dense(2)])
    out = lazy.predict(np.ones((5, 6)), verbose=0)
    assert out.shape == (5, 2) and lazy.input_shape == (None, 6)


def test_add_validation():
    model = Sequential()
    with pytest.raises(TypeError, match="instance of class Layer"):
        model.add("dense")
    model.add(Dense(3, input_dim=2, name="a"))
    with pytest.raises(ValueError, match="unique names"):
        model.add(Dense(3, name="a"))
    with pytest.raises(ValueError, match="first layer"):
        model.add(Input((2,)))
    with pytest.raises(ValueError, match="expected ndim=4"):
        model.add(Conv2D(3, 3))
    assert len(model.layers) == 1   # a layer that failed to fit is not kept
    with pytest.raises(TypeError, match="list of layers"):
        Sequential(Dense(3))


def test_pop_and_get_layer():
    model = chapter_mlp()
    assert model.get_layer(index=0) is model.layers[0]
    assert model.get_layer(model.layers[1].name) is model.layers[1]
    with pytest.raises(ValueError, match="No such layer"):
        model.get_layer("nope")
    model.pop()
    assert len(model.layers) == 1


def test_model_get_set_weights():
    model = chapter_mlp()
    weights = model.get_weights()
    assert [w.shape for w in weights] == [(784, 16), (16,), (16, 10), (10,)]
    new = [np.full(w.shape, i, np.float64) for i, w in enumerate(weights)]
    model.set_weights(new)
    for i, w in enumerate(model.get_weights()):
        assert (w == i).all() and w.dtype == np.float32
    with pytest.raises(ValueError, match="expecting 4 weights"):
        model.set_weights(new[:3])
    with pytest.raises(ValueError, match=r"Weight 2 .* \(16, 10\).*\(10, 16\)"):
        model.set_weights(new[:2] + [np.zeros((10, 16)), new[3]])
    assert (model.get_weights()[0] == 0).all()   # nothing changed by a rejected list


def test_set_weights_before_build_is_an_error():
    with pytest.raises(ValueError, match="not yet been built"):
        Sequential([Dense(3)]).set_weights([])


# ----- the NumPy forward reference --------------------------------------------------------------------------
def test_predict_matches_numpy_forward_pass():
    """conv 'same' stride 2 + pool + dense + softmax with weights given by set_weights."""
    model = Sequential([
        Conv2D(6, (3, 3), strides=2, padding="same", activation="relu", input_shape=(11, 9, 3)),
        MaxPooling2D((2, 2), padding="same"),
        Conv2D(5, (2, 3), activation="tanh"),
        AveragePooling2D((2, 1)),
        Flatten(),
        Dense(7, activation="sigmoid"),
        Dense(4, activation="softmax"),
    ])
    spec = [("conv", dict(stride=(2, 2), padding="same", act="relu")),
            ("maxpool", dict(pool=(2, 2), stride=(2, 2), padding="same")),
            ("conv", dict(stride=(1, 1), padding="valid", act="tanh")),
            ("avgpool", dict(pool=(2, 1), stride=(2, 1), padding="valid")),
            ("flatten", {}), ("dense", dict(act="sigmoid")), ("dense", dict(act="softmax"))]
    rng = np.random.default_rng(7)
    weights = [rng.normal(scale=0.4, size=w.shape) for w in model.get_weights()]
    model.set_weights(weights)
    x = rng.normal(size=(13, 11, 9, 3))
    want, _ = ref.forward(spec, weights, x)
    got = model.predict(x, batch_size=5, verbose=0)
    assert got.shape == (13, 4) and got.dtype == np.float32
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)
    np.testing.assert_allclose(model.predict_on_batch(x), want, atol=1e-5, rtol=0)
    np.testing.assert_allclose(model(x), want, atol=1e-5, rtol=0)


# ----- configs ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("make", [chapter_mlp, chapter_cnn,
                                  lambda: Sequential([Input((5,)), Dense(3), Dense(2, activation="softmax")])])
def test_config_round_trip(make):
    model = make()
    config = model.get_config()
    json.dumps(config)
    again = Sequential.from_config(json.loads(json.dumps(config)))
    assert again.get_config() == config
    assert again.count_params() == model.count_params()
    assert [type(l) for l in again.layers] == [type(l) for l in model.layers]
    assert model_from_json(model.to_json()).get_config() == config


def test_config_of_model_built_by_build_keeps_input_shape():
    model = Sequential([Dense(3), Dense(1)], name="m")
    model.build((None, 4))
    again = Sequential.from_config(model.get_config())
    assert again.built and again.input_shape == (None, 4)


def test_save_and_load_model(tmp_path):
    model = chapter_mlp()
    model.compile("adam", "categorical_crossentropy", ["accuracy"])
    x = np.random.default_rng(0).random((20, 784))
    model.fit(x, np.eye(10)[np.arange(20) % 10], epochs=1, verbose=0)
    path = tmp_path / "m.keras"
    model.save(path)
    again = cnnlite.models.load_model(path)
    for a, b in zip(model.get_weights(), again.get_weights()):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(model.predict(x, verbose=0), again.predict(x, verbose=0))
    assert again.optimizer.iterations == model.optimizer.iterations
