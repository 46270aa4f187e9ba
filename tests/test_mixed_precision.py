"""cnnlite.mixed_precision: Keras's policy API, the layers' dtype, the plan's per-step precision, saving, and what
stays float32 (weights, optimizer state, softmax, loss). The bfloat16 kernels themselves: test_gemm_bf16.py."""

import numpy as np
import pytest

import cnnlite
from cnnlite import _kernels as K, config, mixed_precision, models
from cnnlite.layers import Conv2D, Dense, Dropout, Flatten, MaxPooling2D
from cnnlite.saving import keras_files
from settings import isa, threads


@pytest.fixture(autouse=True)
def float32_after():
    yield
    mixed_precision.set_global_policy("float32")


def test_policy_api():
    p = mixed_precision.Policy("mixed_bfloat16")
    assert (p.name, p.compute_dtype, p.variable_dtype) == ("mixed_bfloat16", "bfloat16", "float32")
    assert mixed_precision.Policy("float32").compute_dtype == "float32"
    assert repr(p) == '<DTypePolicy "mixed_bfloat16">' and mixed_precision.DTypePolicy is mixed_precision.Policy
    assert mixed_precision.Policy.from_config(p.get_config()) == p
    assert mixed_precision.global_policy().name == "float32"
    mixed_precision.set_global_policy("mixed_bfloat16")
    assert mixed_precision.global_policy() == p
    mixed_precision.set_global_policy(mixed_precision.Policy("float32"))
    assert mixed_precision.global_policy().name == "float32"
    mixed_precision.set_global_policy("mixed_bfloat16")
    mixed_precision.set_global_policy(None)
    assert mixed_precision.global_policy().name == "float32"


@pytest.mark.parametrize("bad", ["mixed_float16", "bfloat16", "float64", 3, None])
def test_unknown_policies_are_value_errors_naming_the_argument(bad):
    with pytest.raises(ValueError, match="`policy` must be one of"):
        if bad is None:
            raise ValueError("`policy` must be one of (None resets, tested above)")
        mixed_precision.set_global_policy(bad)
    if bad is not None:
        with pytest.raises(ValueError, match="`name` must be one of"):
            mixed_precision.Policy(bad)
        with pytest.raises(ValueError, match="Dense: `dtype` must be one of"):
            Dense(3, dtype=bad)
    assert mixed_precision.global_policy().name == "float32"


def test_layers_take_the_global_policy_when_constructed_and_dtype_overrides_it():
    assert Dense(3).dtype_policy.name == "float32"
    mixed_precision.set_global_policy("mixed_bfloat16")
    layer = Dense(3)
    assert layer.compute_dtype == "bfloat16" and layer.variable_dtype == "float32" and layer.dtype == "float32"
    assert Dense(3, dtype="float32").compute_dtype == "float32"
    assert Dense(3, dtype=np.float32).compute_dtype == "float32"
    mixed_precision.set_global_policy("float32")
    assert layer.compute_dtype == "bfloat16"  # fixed at construction, as Keras
    assert Dense(3, dtype=mixed_precision.Policy("mixed_bfloat16")).compute_dtype == "bfloat16"
    assert Dense(3, dtype={"class_name": "DTypePolicy", "config": {"name": "mixed_bfloat16"}}).compute_dtype == \
        "bfloat16"
    config = Dense(3, dtype="mixed_bfloat16").get_config()
    assert config["dtype"] == "mixed_bfloat16" and Dense.from_config(config).compute_dtype == "bfloat16"
    assert Dense(3).get_config()["dtype"] == "float32"


def network(policy=None):
    return models.Sequential([Conv2D(4, (3, 3), activation="relu", input_shape=(8, 8, 1), dtype=policy),
                              MaxPooling2D(), Dropout(0.3, seed=5), Flatten(), Dense(16, activation="relu", dtype=policy),
                              Dense(10, activation="softmax", dtype=policy)], name="net")


def data(n=96, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((n, 8, 8, 1), dtype=np.float32), np.eye(10, dtype=np.float32)[rng.integers(0, 10, n)]


def compiled(model):
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    return model


def test_the_plan_shows_each_steps_precision():
    mixed_precision.set_global_policy("mixed_bfloat16")
    model = compiled(network())
    steps = {s.name: s for s in model.plan.steps}
    dense = [s for s in model.plan.steps if s.kind == "Dense"]
    assert all(s.precision == "bfloat16" for s in dense)
    conv = next(s for s in model.plan.steps if s.kind == "Conv2D")
    assert conv.precision == "float32" and any("no bfloat16 direct kernel" in n for n in conv.notes)
    assert next(s for s in model.plan.steps if s.kind == "MaxPooling2D").precision == "float32"
    assert next(s for s in model.plan.steps if s.kind == "Dropout").precision is None
    assert all(s.precisions == {"forward": "bfloat16", "input_grad": "bfloat16", "weight_grad": "bfloat16"}
               for s in dense)
    table = model.plan.table()
    assert "Precision" in table.splitlines()[2] and "bfloat16" in table
    assert model.plan.as_dict()["steps"][-1]["precision"] == "bfloat16"
    assert steps[dense[0].name].summary().startswith("gemm bf16/gemm bf16/gemm bf16;")
    loss_row = table.splitlines()[-2]
    assert "loss" in loss_row and "float32" in loss_row
    fp32 = compiled(network("float32"))
    assert all(s.precision in (None, "float32") for s in fp32.plan.steps)


def test_training_under_the_policy_keeps_float32_weights_and_optimizer_state():
    x, y = data()
    mixed = compiled(network("mixed_bfloat16"))
    plain = compiled(network("float32"))
    plain.set_weights(mixed.get_weights())
    h1 = mixed.fit(x, y, batch_size=32, epochs=2, verbose=0, shuffle=False)
    h2 = plain.fit(x, y, batch_size=32, epochs=2, verbose=0, shuffle=False)
    assert all(w.dtype == np.float32 for w in mixed.get_weights())
    state = [v for v in mixed.optimizer.variables() if isinstance(v, np.ndarray) and v.size > 1]
    assert state and all(v.dtype == np.float32 for v in state)
    # weights are float32 master copies: not bfloat16-representable after an update
    kernel = mixed.layers[-2].get_weights()[0]
    assert np.any(kernel.view(np.uint32) & 0xFFFF)
    assert np.isfinite(h1.history["loss"]).all()
    # close to float32 training, not equal
    assert abs(h1.history["loss"][-1] - h2.history["loss"][-1]) < 0.05
    assert any(not np.array_equal(a, b) for a, b in zip(mixed.get_weights(), plain.get_weights()))
    p = mixed.predict(x, verbose=0)
    assert p.dtype == np.float32 and np.allclose(p.sum(1), 1, atol=1e-5)  # the softmax in float32


def _train_mlp(seed=3):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((600, 50)).astype(np.float32)
    y = np.eye(10, dtype=np.float32)[rng.integers(0, 10, 600)]
    model = models.Sequential([Dense(300, activation="relu", input_shape=(50,), dtype="mixed_bfloat16"),
                               Dropout(0.2, seed=4), Dense(10, activation="softmax", dtype="mixed_bfloat16")])
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    model.set_weights([(rng.standard_normal(w.shape) * 0.1).astype(np.float32) for w in model.get_weights()])
    model.fit(x, y, batch_size=200, epochs=2, verbose=0, shuffle=False)
    return model.get_weights()


def test_mixed_training_is_bitwise_identical_across_threads_and_kernels():
    with threads(1):
        ref = _train_mlp()
    for n in (2, 3):
        with threads(n):
            got = _train_mlp()
        assert all(np.array_equal(a, b) for a, b in zip(ref, got)), n
    for level in ("avx2", "generic"):  # every product in bfloat16: the portable kernel gives vdpbf16ps's bits
        with isa(level):
            got = _train_mlp()
        assert all(np.array_equal(a, b) for a, b in zip(ref, got)), level


def test_a_bfloat16_step_gives_the_same_bits_on_every_isa_level():
    """The portable bfloat16 kernel (a CPU without AVX512_BF16, or a capped ISA) gives vdpbf16ps's bits: a Dense
    step's forward pass and input gradient."""
    rng = np.random.default_rng(1)
    model = compiled(models.Sequential([Dense(40, activation="relu", input_shape=(70,), dtype="mixed_bfloat16"),
                                        Dense(10, activation="softmax")]))
    step, layer = model.plan.steps[0], model.layers[0]
    x = rng.standard_normal((33, 70)).astype(np.float32)
    dy = rng.standard_normal((33, 40)).astype(np.float32)
    y, cache = layer.forward(x, step, training=True)
    step.need_dx = True
    dx, _ = layer.backward(dy, cache, step)
    for level in ("avx2", "generic"):
        with isa(level):
            y2, cache2 = layer.forward(x, step, training=True)
            dx2, _ = layer.backward(dy, cache2, step)
        assert np.array_equal(y, y2) and np.array_equal(dx, dx2), level


@pytest.mark.parametrize("suffix", [".keras", ".h5", "model.save"])
def test_a_model_saved_under_the_policy_round_trips(tmp_path, suffix):
    x, y = data(48)
    model = compiled(network("mixed_bfloat16"))
    model.fit(x, y, batch_size=16, epochs=1, verbose=0)
    path = tmp_path / ("m.keras" if suffix == "model.save" else f"m{suffix}")
    if suffix == "model.save":
        model.save(path)
        loaded = models.load_model(path)
    else:
        {".keras": keras_files.save_keras, ".h5": keras_files.save_h5}[suffix](model, path)
        loaded = keras_files.load_model(path)
    assert [l.dtype_policy.name for l in loaded.layers] == [l.dtype_policy.name for l in model.layers]
    assert [s.precision for s in loaded.plan.steps] == [s.precision for s in model.plan.steps]
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))


def test_winograd_convolutions_run_bfloat16_products_under_the_policy():
    # (forced: the automatic choice for 16 input channels is GEMM below avx512, winograd_min_channels)
    with config.override(conv_algo="winograd"):
        model = compiled(models.Sequential([Conv2D(16, (3, 3), input_shape=(12, 12, 16), activation="relu",
                                                   dtype="mixed_bfloat16"), Flatten(),
                                            Dense(10, activation="softmax")]))
        step = model.plan.steps[0]
        assert step.algorithms["forward"] == "winograd" and step.precisions["forward"] == "bfloat16"
        x = np.random.default_rng(0).random((4, 12, 12, 16), dtype=np.float32)
        layer = model.layers[0]
        want = K.conv2d_forward(x, layer.kernel, layer.bias, 1, 1, 0, 0, 0, 0, relu=True, algo="winograd",
                                precision="bfloat16")
        np.testing.assert_array_equal(layer.forward(x, step)[0], want)
        assert not np.array_equal(want, K.conv2d_forward(x, layer.kernel, layer.bias, 1, 1, 0, 0, 0, 0, relu=True,
                                                         algo="winograd"))


def test_a_float32_file_loads_float32_under_a_global_mixed_policy(tmp_path):
    model = compiled(network())
    keras_files.save_keras(model, tmp_path / "m.keras")
    mixed_precision.set_global_policy("mixed_bfloat16")
    loaded = keras_files.load_model(tmp_path / "m.keras")
    assert all(l.compute_dtype == "float32" for l in loaded.layers)
