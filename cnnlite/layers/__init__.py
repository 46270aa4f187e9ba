"""Keras-style layers: Dense, Conv2D, MaxPooling2D, AveragePooling2D, Dropout, Flatten, Activation, Input."""
from cnnlite.layers.base import Layer
from cnnlite.layers.core import Activation, Dense, Dropout, Flatten, Input, InputLayer, KerasTensor
from cnnlite.layers.convolutional import Conv2D, Convolution2D
from cnnlite.layers.pooling import AveragePooling2D, AvgPool2D, MaxPool2D, MaxPooling2D

_REGISTRY = {cls.__name__: cls for cls in (Dense, Conv2D, MaxPooling2D, AveragePooling2D, Dropout, Flatten,
                                           Activation, InputLayer)}
_REGISTRY.update(Convolution2D=Conv2D, MaxPool2D=MaxPooling2D, AvgPool2D=AveragePooling2D)


def serialize(layer):
    """`{"class_name": "Dense", "config": {...}}` (JSON-able)."""
    if not isinstance(layer, Layer):
        raise TypeError(f"serialize expects a cnnlite layer, received {type(layer).__name__}")
    return {"class_name": type(layer).__name__, "config": layer.get_config()}


def deserialize(config):
    """The layer described by `serialize`'s output; unknown class names raise ValueError."""
    if not isinstance(config, dict) or "class_name" not in config or not isinstance(config.get("config", {}), dict):
        raise ValueError(f"A layer config must be a dict with 'class_name' and 'config', received {config!r}")
    cls = _REGISTRY.get(config["class_name"])
    if cls is None:
        raise ValueError(f"Unknown layer: {config['class_name']!r}. Known layers: {sorted(_REGISTRY)}")
    return cls.from_config(dict(config.get("config", {})))


__all__ = ["Layer", "Dense", "Conv2D", "Convolution2D", "MaxPooling2D", "MaxPool2D", "AveragePooling2D",
           "AvgPool2D", "Dropout", "Flatten", "Activation", "Input", "InputLayer", "KerasTensor",
           "serialize", "deserialize"]
