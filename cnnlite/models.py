"""Sequential models (Keras API): build from a list or with add(), then compile, fit, evaluate, predict."""
import json

import numpy as np

from cnnlite import layers as layers_mod
from cnnlite.engine.summary import print_summary
from cnnlite.engine.training import Model as _TrainingModel
from cnnlite.layers.base import Layer, unique_name
from cnnlite.layers.core import InputLayer, KerasTensor
from cnnlite import saving


@saving.register_model_class
class Sequential(_TrainingModel):
    """A linear stack of layers. The input shape comes from `input_shape=`/`input_dim=` on the first layer or
    from an `Input(...)`; every later layer infers its own. Weights are created as soon as shapes are known."""

    def __init__(self, layers=None, name=None, trainable=True):
        if name is not None and (not isinstance(name, str) or not name):
            raise ValueError(f"Sequential: `name` must be a non-empty string, received name={name!r}")
        self.name = name if name is not None else unique_name("sequential")
        self._layers = []
        self._trainable = bool(trainable)
        self._input_layer = None
        self._build_input_shape = None
        self._init_training_state()
        if layers is not None:
            if isinstance(layers, (Layer, KerasTensor)) or not isinstance(layers, (list, tuple)):
                raise TypeError(f"Sequential: `layers` must be a list of layers, received {type(layers).__name__}")
            for layer in layers:
                self.add(layer)

    # ----- structure --------------------------------------------------------------------------------------------
    @property
    def trainable(self):
        return self._trainable

    @trainable.setter
    def trainable(self, value):
        """Setting it sets every layer's `trainable` too (Keras)."""
        self._trainable = bool(value)
        for layer in self._layers:
            layer.trainable = self._trainable

    @property
    def layers(self):
        return list(self._layers)

    def add(self, layer):
        """Append a layer (or put an `Input(...)`/`InputLayer` first); builds it when the input shape is known."""
        if isinstance(layer, KerasTensor):
            layer = layer._input_layer
        if not isinstance(layer, Layer):
            raise TypeError(f"The added layer must be an instance of class Layer, received layer={layer!r} "
                            f"of type {type(layer).__name__}")
        if isinstance(layer, InputLayer):
            if self._layers or self._input_layer is not None:
                raise ValueError("An Input/InputLayer can only be the first layer of a Sequential model")
            self._input_layer = layer
            self._build_input_shape = layer._batch_input_shape
            return
        names = {l.name for l in self._layers} | ({self._input_layer.name} if self._input_layer else set())
        if layer.name in names:
            raise ValueError(f"All layers added to a Sequential model should have unique names. Name {layer.name!r} "
                             f"is already the name of a layer in this model. Update the `name` argument to pass a "
                             f"unique name")
        if not self._layers and self._input_layer is None and layer._batch_input_shape is not None:
            self._build_input_shape = layer._batch_input_shape
        elif self._layers and layer._batch_input_shape is not None and self.built:
            expected = self._layers[-1].output_shape
            if tuple(layer._batch_input_shape[1:]) != tuple(expected[1:]):
                raise ValueError(f"Layer {layer.name!r} declares input shape {layer._batch_input_shape} but the "
                                 f"previous layer outputs {expected}")
        self._layers.append(layer)
        if self._build_input_shape is not None:
            try:
                self._build_layers(self._build_input_shape, start=len(self._layers) - 1)
            except Exception:
                self._layers.pop()
                raise

    def pop(self):
        if not self._layers:
            raise TypeError("There are no layers in the model")
        return self._layers.pop()

    def get_layer(self, name=None, index=None):
        if index is not None:
            if not -len(self._layers) <= index < len(self._layers):
                raise ValueError(f"Was asked to retrieve layer at index {index} but the model only has "
                                 f"{len(self._layers)} layers")
            return self._layers[index]
        for layer in self._layers:
            if layer.name == name:
                return layer
        raise ValueError(f"No such layer: {name!r}. Existing layers are: {[l.name for l in self._layers]}")

    # ----- building ---------------------------------------------------------------------------------------------
    @property
    def built(self):
        return bool(self._layers) and all(layer.built for layer in self._layers) and \
            self._build_input_shape is not None

    def _build_layers(self, input_shape, start=0):
        self._ensure_rngs()
        shape = tuple(input_shape) if start == 0 else self._layers[start - 1].output_shape
        for layer in self._layers[start:]:
            shape = layer._build_for(shape, self._init_rng)

    def _build_from(self, input_shape):
        input_shape = tuple(input_shape)
        if len(input_shape) < 2:
            raise ValueError(f"build: the input shape must be (batch, ...) with at least one feature dimension, "
                             f"received {input_shape}")
        self._build_layers(input_shape)
        self._build_input_shape = input_shape

    def build(self, input_shape=None):
        """Build every layer for `input_shape` (batch first, e.g. (None, 784)); creates the weights."""
        if input_shape is None:
            input_shape = self._build_input_shape
        if input_shape is None:
            raise ValueError("You must provide an `input_shape` argument to build() (e.g. (None, 784)) or give the "
                             "first layer an input_shape")
        if not self._layers:
            raise ValueError("Sequential.build: the model has no layers")
        self._build_from(tuple(None if d is None else int(d) for d in input_shape))

    def _input_spec(self):
        return self._build_input_shape

    def _require_built(self, what):
        if not self.built:
            raise ValueError(f"This model has not yet been built, so {what} is not available. Build the model "
                             f"first by calling `build()`, by giving the first layer an `input_shape`, or by calling "
                             f"`fit()` or `predict()` on data")

    @property
    def input_shape(self):
        if self._build_input_shape is None:
            raise AttributeError(f"The model {self.name!r} has no defined input shape yet")
        return self._build_input_shape

    @property
    def output_shape(self):
        self._require_built("its output shape")
        return self._layers[-1].output_shape

    @property
    def inputs(self):
        return [self._build_input_shape] if self._build_input_shape is not None else None

    # ----- weights ----------------------------------------------------------------------------------------------
    @property
    def weights(self):
        return [w for layer in self._layers for w in layer.weights]

    @property
    def trainable_weights(self):
        return [w for layer in self._layers for w in layer.trainable_weights]

    @property
    def non_trainable_weights(self):
        return [w for layer in self._layers for w in layer.non_trainable_weights]

    def get_weights(self):
        """Copies of every weight, layer by layer, kernel then bias."""
        return [w.copy() for w in self.weights]

    def set_weights(self, weights):
        """Set every weight from a list in get_weights() order (shapes checked before anything changes)."""
        self._require_built("set_weights")
        if isinstance(weights, np.ndarray) or not isinstance(weights, (list, tuple)):
            raise TypeError(f"set_weights expects a list of arrays, received {type(weights).__name__}")
        expected = self.weights
        if len(weights) != len(expected):
            raise ValueError(f"You called `set_weights(weights)` on model {self.name!r} with a weight list of length "
                             f"{len(weights)}, but the model was expecting {len(expected)} weights")
        for i, (own, new) in enumerate(zip(expected, weights)):
            shape = np.shape(new)
            if tuple(shape) != own.shape:
                raise ValueError(f"Weight {i} of model {self.name!r} has shape {own.shape}, but the provided weight "
                                 f"has shape {tuple(shape)}")
        pos = 0
        for layer in self._layers:
            n = len(layer.weights)
            layer.set_weights(list(weights[pos:pos + n]))
            pos += n

    def count_params(self):
        self._require_built("count_params()")
        return int(sum(layer.count_params() for layer in self._layers))

    def summary(self, line_length=None, positions=None, print_fn=None, show_plan=False, **kwargs):
        """Print a Keras-style table: layer name and type, output shape, parameter count, totals; with
        `show_plan=True` also the execution plan (the algorithm of each pass and the fusions; `model.plan`)."""
        self._require_built("summary()")
        print_summary(self, line_length, positions, print_fn)
        if show_plan:
            (print_fn or print)(self.plan.table())

    # ----- configuration and persistence ------------------------------------------------------------------------
    def get_config(self):
        layer_configs = []
        if self._input_layer is not None:
            layer_configs.append(layers_mod.serialize(self._input_layer))
        layer_configs += [layers_mod.serialize(layer) for layer in self._layers]
        config = {"name": self.name, "layers": layer_configs}
        first_declares = self._input_layer is not None or (self._layers and
                                                           self._layers[0]._batch_input_shape is not None)
        if self._build_input_shape is not None and not first_declares:
            config["build_input_shape"] = list(self._build_input_shape)
        return config

    @classmethod
    def from_config(cls, config, custom_objects=None):
        if not isinstance(config, dict) or "layers" not in config:
            raise ValueError(f"A Sequential config must be a dict with 'layers', received {config!r}")
        model = cls(name=config.get("name"))
        for layer_config in config["layers"]:
            model.add(layers_mod.deserialize(layer_config))
        if config.get("build_input_shape") is not None and not model.built:
            model.build(tuple(config["build_input_shape"]))
        return model

    def get_build_config(self):
        """`{"input_shape": [None, ...]}`, the batch input shape the model was built for, or None when it is not
        built (Keras's name: `build_from_config` builds a model from its config for the same shape)."""
        if not self.built or not self._layers:
            return None
        return {"input_shape": [None if d is None else int(d) for d in self._build_input_shape]}

    def build_from_config(self, config):
        """Build the model for a `get_build_config()` result (nothing to do for None)."""
        if config is None:
            return
        if not isinstance(config, dict) or "input_shape" not in config:
            raise ValueError(f"build_from_config: `config` must be a dict with 'input_shape' from "
                             f"get_build_config(), received {config!r}")
        self.build(tuple(config["input_shape"]))

    def to_json(self, **kwargs):
        return json.dumps({"class_name": "Sequential", "config": self.get_config()}, **kwargs)

    def save(self, filepath, overwrite=True):
        """Save architecture, weights, compile settings and optimizer state: `.keras` writes a Keras 3 archive,
        `.h5` a legacy Keras HDF5 model (both open in Keras; see cnnlite.saving)."""
        return saving.save_model(self, filepath, overwrite=overwrite)

    def save_weights(self, filepath, overwrite=True):
        """Save the layers' weights and, when built, the optimizer state: `.weights.h5` in Keras 3's weights
        format, `.weights.npz` in cnnlite's own."""
        return saving.save_weights(self, filepath, overwrite=overwrite)

    def load_weights(self, filepath):
        """Load weights (and optimizer and random state when they fit) saved by `save_weights` or `save`, or by
        Keras (`.keras`, `.weights.h5`, legacy `.h5`; told apart by content)."""
        return saving.load_weights(self, filepath)

    def __repr__(self):
        return f"<Sequential name={self.name!r} layers={len(self._layers)} built={self.built}>"


def model_from_json(json_string, custom_objects=None):
    data = json.loads(json_string)
    if data.get("class_name") != "Sequential":
        raise ValueError(f"Only Sequential models are supported, received class_name={data.get('class_name')!r}")
    return Sequential.from_config(data["config"])


def load_model(filepath, custom_objects=None, compile=True, safe_mode=True):
    """Load a model saved with `model.save(path)`, or by Keras (`.keras`, legacy `.h5`; see cnnlite.saving)."""
    return saving.load_model(filepath, custom_objects=custom_objects, compile=compile, safe_mode=safe_mode)


__all__ = ["Sequential", "load_model", "model_from_json"]
