"""Keras-style layers: Dense, Conv2D, MaxPooling2D, AveragePooling2D, Dropout, Flatten, Activation, Input."""
from cnnlite._registry import Registry
from cnnlite.layers.base import Layer
from cnnlite.layers.core import Activation, Dense, Dropout, Flatten, Input, InputLayer, KerasTensor
from cnnlite.layers.convolutional import Conv2D, Convolution2D
from cnnlite.layers.pooling import AveragePooling2D, AvgPool2D, MaxPool2D, MaxPooling2D

REGISTRY = Registry("layer")
for _cls in (Dense, Conv2D, MaxPooling2D, AveragePooling2D, Dropout, Flatten, Activation, InputLayer):
    REGISTRY.register(_cls)
REGISTRY.alias("Convolution2D", Conv2D)
REGISTRY.alias("MaxPool2D", MaxPooling2D)
REGISTRY.alias("AvgPool2D", AveragePooling2D)


def serialize(layer):
    """`{"class_name": "Dense", "config": {...}}` (JSON-able)."""
    if not isinstance(layer, Layer):
        raise TypeError(f"serialize expects a cnnlite layer, received {type(layer).__name__}")
    return REGISTRY.serialize(layer)


def deserialize(config):
    """The layer described by `serialize`'s output; unknown class names raise ValueError."""
    return REGISTRY.deserialize(config, shown="all", label="Known layers")


__all__ = ["Layer", "Dense", "Conv2D", "Convolution2D", "MaxPooling2D", "MaxPool2D", "AveragePooling2D",
           "AvgPool2D", "Dropout", "Flatten", "Activation", "Input", "InputLayer", "KerasTensor",
           "serialize", "deserialize"]
