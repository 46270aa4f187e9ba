"""The public state methods saving goes through: Layer/Dropout/Model get_rng_state and set_rng_state, the build and
compile configs, Model.build_optimizer and Optimizer.variable_shapes (round trips and validation errors)."""
import json

import numpy as np
import pytest

from cnnlite import optimizers
from cnnlite.layers import Dense, Dropout
from cnnlite.models import Sequential


def mlp(seed=None):
    model = Sequential([Dense(8, activation="relu", input_shape=(4,)), Dropout(0.5, seed=seed),
                        Dense(3, activation="softmax")])
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    return model


def data(n=16):
    rng = np.random.default_rng(1)
    return rng.standard_normal((n, 4)).astype(np.float32), np.eye(3, dtype=np.float32)[rng.integers(0, 3, n)]


# --- layers --------------------------------------------------------------------------------------------------

def test_a_layer_without_randomness_has_no_rng_state():
    layer = Dense(2)
    assert layer.get_rng_state() is None
    layer.set_rng_state(None)
    with pytest.raises(ValueError, match="has no random state"):
        layer.set_rng_state({"seed": 1, "step": 0})


def test_dropout_rng_state_round_trip_repeats_the_masks():
    x = np.ones((4, 32), np.float32)
    layer = Dropout(0.5, seed=3)
    assert layer.get_rng_state() == {"seed": 3, "step": 0}
    layer(x, training=True)
    state = layer.get_rng_state()
    assert state == {"seed": 3, "step": 1} and json.loads(json.dumps(state)) == state
    expected = layer(x, training=True)
    twin = Dropout(0.5)
    twin.set_rng_state(state)
    assert twin.get_rng_state() == state
    np.testing.assert_array_equal(twin(x, training=True), expected)


def test_dropout_seed_drawn_at_build_is_in_the_state():
    model = mlp()
    assert isinstance(model.layers[1].get_rng_state()["seed"], int)


@pytest.mark.parametrize("state, error, match", [
    ([3, 0], TypeError, "expects a dict"),
    ({"seed": 3}, ValueError, "expects the keys 'seed' and 'step'"),
    ({"seed": 3, "step": 0, "extra": 1}, ValueError, "expects the keys 'seed' and 'step'"),
    ({"seed": -1, "step": 0}, ValueError, r"`seed` must be None or a non-negative integer, received seed=-1"),
    ({"seed": 1, "step": -2}, ValueError, r"`step` must be a non-negative integer, received step=-2"),
    ({"seed": 1, "step": 1.5}, ValueError, r"`step` must be a non-negative integer"),
    ({"seed": True, "step": 0}, ValueError, r"`seed` must be None or a non-negative integer"),
])
def test_dropout_set_rng_state_validates_and_changes_nothing(state, error, match):
    layer = Dropout(0.5, seed=9)
    with pytest.raises(error, match=match):
        layer.set_rng_state(state)
    assert layer.get_rng_state() == {"seed": 9, "step": 0}


def test_dropout_accepts_a_none_seed_and_numpy_integers():
    layer = Dropout(0.5)
    layer.set_rng_state({"seed": None, "step": np.int64(4)})
    assert layer.get_rng_state() == {"seed": None, "step": 4}


# --- models --------------------------------------------------------------------------------------------------

def test_a_model_that_never_drew_a_seed_has_no_rng_state():
    model = Sequential([Dense(2)])
    assert model.get_rng_state() is None


def test_model_rng_state_round_trip_makes_a_twin_train_identically():
    x, y = data()
    model = mlp(seed=5)
    state = model.get_rng_state()
    assert set(state) == {"seed", "init_rng", "shuffle_rng"}
    assert json.loads(json.dumps(state)) == state
    twin = mlp(seed=5)
    twin.set_weights(model.get_weights())
    twin.set_rng_state(state)
    assert twin.get_rng_state() == state
    model.fit(x, y, batch_size=4, epochs=2, verbose=0)
    twin.fit(x, y, batch_size=4, epochs=2, verbose=0)
    for a, b in zip(model.get_weights(), twin.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert model.get_rng_state() == twin.get_rng_state() != state


def test_model_set_rng_state_none_forgets_the_seed():
    model = mlp()
    model.set_rng_state(None)
    assert model.get_rng_state() is None


@pytest.mark.parametrize("change, error, match", [
    (lambda s: [s], TypeError, "must be a dict"),
    (lambda s: {"seed": s["seed"]}, ValueError, "lacks"),
    (lambda s: dict(s, seed=-3), ValueError, r"set_rng_state: `seed` must be a non-negative integer, received seed=-3"),
    (lambda s: dict(s, init_rng={"bit_generator": "MT19937"}), ValueError, r"`init_rng` must be a PCG64"),
    (lambda s: dict(s, shuffle_rng=dict(s["shuffle_rng"], state="nope")), ValueError,
     r"`shuffle_rng` must be a valid PCG64"),
])
def test_model_set_rng_state_validates_and_changes_nothing(change, error, match):
    model = mlp()
    before = model.get_rng_state()
    with pytest.raises(error, match=match):
        model.set_rng_state(change(model.get_rng_state()))
    assert model.get_rng_state() == before


def test_build_config_round_trip():
    model = Sequential([Dense(3), Dense(2)])
    assert model.get_build_config() is None
    model.build((None, 5))
    config = model.get_build_config()
    assert config == {"input_shape": [None, 5]}
    twin = Sequential([Dense(3), Dense(2)])
    twin.build_from_config(config)
    assert twin.built and [w.shape for w in twin.get_weights()] == [w.shape for w in model.get_weights()]
    twin.build_from_config(None)
    with pytest.raises(ValueError, match="must be a dict with 'input_shape'"):
        Sequential([Dense(2)]).build_from_config([None, 5])


def test_compile_config_round_trip():
    model = Sequential([Dense(2, input_shape=(3,))])
    assert model.get_compile_config() is None
    model.compile(optimizer=optimizers.SGD(learning_rate=0.5, momentum=0.9), loss="mse", metrics=["mae"])
    config = model.get_compile_config()
    assert json.loads(json.dumps(config)) == config
    assert config == {"optimizer": {"class_name": "SGD", "config": model.optimizer.get_config()}, "loss": "mse",
                      "metrics": ["mae"]}
    twin = Sequential([Dense(2, input_shape=(3,))])
    twin.compile_from_config(config)
    assert twin.get_compile_config() == config and twin.optimizer is not model.optimizer
    with pytest.raises(TypeError, match="must be a dict"):
        twin.compile_from_config("sgd")


def test_compile_config_of_a_loss_object_and_an_unnamed_metric():
    from cnnlite import losses, metrics

    model = Sequential([Dense(2, input_shape=(3,))])
    model.compile(optimizer="adam", loss=losses.CategoricalCrossentropy(label_smoothing=0.1))
    assert model.get_compile_config()["loss"]["class_name"] == "CategoricalCrossentropy"
    model.compile(optimizer="adam", loss="mse", metrics=[metrics.MeanAbsoluteError(name="my_mae")])
    with pytest.raises(ValueError, match="its metric 'my_mae' cannot be re-created from its name"):
        model.get_compile_config()


def test_build_optimizer_creates_the_slots_once_and_matches_variable_shapes():
    model = mlp()
    assert not model.optimizer.built
    expected = model.optimizer.variable_shapes(model.trainable_weights)
    assert expected == [s for w in model.trainable_weights for s in (w.shape, w.shape)]
    model.build_optimizer()
    assert model.optimizer.built and [v.shape for v in model.optimizer.variables()] == expected
    slots = model.optimizer.variables()
    model.build_optimizer()
    assert all(a is b for a, b in zip(slots, model.optimizer.variables()))
    assert optimizers.SGD().variable_shapes(model.trainable_weights) == []
