"""The Keras API surface the chapter uses: module paths, names, signatures and defaults as in Keras."""
import importlib
import inspect

import pytest

import cnnlite


@pytest.mark.parametrize("path", [
    "cnnlite.models.Sequential", "cnnlite.models.load_model", "cnnlite.models.model_from_json",
    "cnnlite.layers.Dense", "cnnlite.layers.Conv2D", "cnnlite.layers.MaxPooling2D", "cnnlite.layers.AveragePooling2D",
    "cnnlite.layers.Dropout", "cnnlite.layers.Flatten", "cnnlite.layers.Activation", "cnnlite.layers.Input",
    "cnnlite.layers.InputLayer", "cnnlite.layers.MaxPool2D", "cnnlite.layers.serialize", "cnnlite.layers.deserialize",
    "cnnlite.optimizers.Adam", "cnnlite.optimizers.SGD", "cnnlite.optimizers.RMSprop", "cnnlite.optimizers.get",
    "cnnlite.losses.categorical_crossentropy", "cnnlite.losses.sparse_categorical_crossentropy",
    "cnnlite.losses.mean_squared_error", "cnnlite.losses.CategoricalCrossentropy",
    "cnnlite.metrics.categorical_accuracy", "cnnlite.metrics.CategoricalAccuracy",
    "cnnlite.activations.relu", "cnnlite.activations.softmax", "cnnlite.initializers.glorot_uniform",
    "cnnlite.initializers.he_normal", "cnnlite.callbacks.History", "cnnlite.callbacks.Callback",
    "cnnlite.utils.to_categorical", "cnnlite.utils.np_utils.to_categorical", "cnnlite.utils.set_random_seed",
    "cnnlite.datasets.mnist.load_data", "cnnlite.Input", "cnnlite.Sequential",
])
def test_keras_paths_exist(path):
    module, _, name = path.rpartition(".")
    assert callable(getattr(importlib.import_module(module), name))


def defaults(fn):
    return {k: p.default for k, p in inspect.signature(fn).parameters.items()
            if p.default is not inspect.Parameter.empty}


def test_fit_evaluate_predict_signatures_follow_keras():
    seq = cnnlite.models.Sequential
    fit = defaults(seq.fit)
    assert {k: fit[k] for k in ("batch_size", "epochs", "verbose", "callbacks", "validation_split",
                                "validation_data", "shuffle", "initial_epoch")} == dict(
        batch_size=None, epochs=1, verbose="auto", callbacks=None, validation_split=0.0, validation_data=None,
        shuffle=True, initial_epoch=0)
    assert list(inspect.signature(seq.fit).parameters)[1:4] == ["x", "y", "batch_size"]
    assert defaults(seq.evaluate)["batch_size"] is None and defaults(seq.evaluate)["verbose"] == "auto"
    assert defaults(seq.predict)["batch_size"] is None
    assert defaults(seq.compile)["optimizer"] == "rmsprop"


@pytest.mark.parametrize("cls,expected", [
    (cnnlite.layers.Dense, dict(activation=None, use_bias=True, kernel_initializer="glorot_uniform",
                                bias_initializer="zeros")),
    (cnnlite.layers.Conv2D, dict(strides=(1, 1), padding="valid", activation=None, use_bias=True,
                                 kernel_initializer="glorot_uniform", bias_initializer="zeros")),
    (cnnlite.layers.MaxPooling2D, dict(pool_size=(2, 2), strides=None, padding="valid")),
    (cnnlite.layers.AveragePooling2D, dict(pool_size=(2, 2), strides=None, padding="valid")),
    (cnnlite.layers.Dropout, dict(noise_shape=None, seed=None)),
    (cnnlite.optimizers.Adam, dict(learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7)),
    (cnnlite.optimizers.SGD, dict(learning_rate=0.01, momentum=0.0, nesterov=False)),
    (cnnlite.optimizers.RMSprop, dict(learning_rate=0.001, rho=0.9, epsilon=1e-7)),
])
def test_constructor_defaults_follow_keras(cls, expected):
    got = defaults(cls.__init__)
    assert {k: got[k] for k in expected} == expected


def test_required_arguments_follow_keras():
    assert list(inspect.signature(cnnlite.layers.Dense).parameters)[0] == "units"
    assert list(inspect.signature(cnnlite.layers.Conv2D).parameters)[:2] == ["filters", "kernel_size"]
    assert list(inspect.signature(cnnlite.layers.Dropout).parameters)[0] == "rate"


def test_layers_accept_keras_base_keywords():
    layer = cnnlite.layers.Dense(3, input_shape=(4,), name="d", trainable=False, dtype="float32")
    assert layer.name == "d" and not layer.trainable
    assert cnnlite.layers.Dense(3, batch_input_shape=(None, 4)).input_shape == (None, 4)
