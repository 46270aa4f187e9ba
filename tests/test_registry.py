"""cnnlite._registry.Registry, the one name -> object mechanism behind activations, losses, metrics, optimizers,
initializers, layers and the loadable model classes; every accepted name is still accepted."""
import pytest

from cnnlite import activations, initializers, layers, losses, metrics, optimizers
from cnnlite._registry import Registry
from cnnlite.saving import get_model_class
from cnnlite.models import Sequential


class Thing:
    def __init__(self, size=1):
        self.size = size

    def get_config(self):
        return {"size": self.size}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def test_register_find_get_and_aliases():
    registry = Registry("thing")
    assert registry.register(Thing, aliases=("thing",)) is Thing
    assert registry.find("Thing") is registry.find("thing") is registry.get("THING", fold_case=True) is Thing
    assert registry.find("thing", which="classes") is None and registry.find(3) is None
    assert registry.names() == ["Thing", "thing"] and registry.names("aliases") == ["thing"]
    assert registry.owns(Thing) and not registry.owns(Thing()) and registry.name_of(Thing) == "Thing"
    with pytest.raises(ValueError, match=r"Unknown thing: 'other'. Known: \['Thing', 'thing'\]"):
        registry.get("other")
    with pytest.raises(ValueError, match=r"Unknown thing: 'other'. Supported: \['thing'\]"):
        registry.get("other", which="aliases", label="Supported")
    with pytest.raises(ValueError, match="already registered"):
        registry.register(Thing, name="thing")
    with pytest.raises(ValueError, match="is not registered"):
        registry.alias("t", int)


def test_serialize_deserialize_round_trip_and_config_errors():
    registry = Registry("item")
    registry.register(Thing)
    config = registry.serialize(Thing(3))
    assert config == {"class_name": "Thing", "config": {"size": 3}}
    assert registry.deserialize(config).size == 3
    with pytest.raises(ValueError, match="An item config must be a dict with 'class_name' and 'config'"):
        registry.deserialize({"config": {}})
    with pytest.raises(ValueError, match="Unknown item: 'Other'"):
        registry.deserialize({"class_name": "Other"})


@pytest.mark.parametrize("registry, names", [
    (activations.REGISTRY, ["linear", "relu", "sigmoid", "softmax", "tanh"]),
    (optimizers.REGISTRY, ["Adam", "RMSprop", "SGD", "adam", "rmsprop", "sgd"]),
    (losses.REGISTRY, ["CategoricalCrossentropy", "MSE", "MeanSquaredError", "SparseCategoricalCrossentropy",
                       "categorical_crossentropy", "mean_squared_error", "mse", "sparse_categorical_crossentropy"]),
    (metrics.REGISTRY, ["BinaryAccuracy", "CategoricalAccuracy", "MeanAbsoluteError", "MeanSquaredError",
                        "SparseCategoricalAccuracy", "binary_accuracy", "categorical_accuracy", "mae",
                        "mean_absolute_error", "mean_squared_error", "mse", "sparse_categorical_accuracy"]),
    (layers.REGISTRY, ["Activation", "AveragePooling2D", "AvgPool2D", "Conv2D", "Convolution2D", "Dense", "Dropout",
                       "Flatten", "InputLayer", "MaxPool2D", "MaxPooling2D"]),
])
def test_every_module_keeps_its_names(registry, names):
    assert registry.names() == names


def test_initializer_names():
    assert initializers.REGISTRY.names("aliases") == sorted([
        "zeros", "zero", "ones", "one", "constant", "random_normal", "normal", "random_uniform", "uniform",
        "truncated_normal", "variance_scaling", "glorot_uniform", "glorot_normal", "he_normal", "he_uniform",
        "lecun_normal", "lecun_uniform", "orthogonal", "identity"])
    assert len(initializers.REGISTRY.names("classes")) == 15


def test_sequential_is_a_registered_model_class():
    assert get_model_class("Sequential") is Sequential and get_model_class("Functional") is None
