"""Keras's file formats for cnnlite models: `.keras` (Keras 3), legacy `.h5` and `.weights.h5`, both ways.

`sniff(path)` tells the formats apart by content; `load_model`, `load_weights`, `save_keras`, `save_h5` and
`save_weights_h5` move a cnnlite Sequential model to and from them (the plain-data readers and writers are in
keras_format, legacy_h5 and convert; h5 wraps h5py). Nothing in a file runs code: configs are JSON mapped through
fixed tables, arrays are numeric HDF5 datasets checked against the model before anything is set. Like
cnnlite_format, this module reaches a model only through public methods (`layers`, `get_config`,
`get_build_config`, `get_compile_config`/`compile`, `get_rng_state`/`set_rng_state`, `build_optimizer`, the
layers' `get_weights`/`set_weights`/`weight_names` and the optimizer's `variables`/`set_variables`/`variable_shapes`)
and finds the Sequential class through the model-class registry; writes go through archive.atomic_write.
"""
import io
import math
import os
import warnings
import zipfile

import numpy as np

from cnnlite._version import __version__
from cnnlite.saving import convert, h5, h5_bounded, keras_format, legacy_h5
from cnnlite.saving.archive import atomic_write, check_path
from cnnlite.saving.model_state import (optimizer_mismatch, restore_optimizer, restore_training_state,
                                        training_state)
from cnnlite.saving.object_registry import get_model_class

__all__ = ["sniff", "load_model", "load_weights", "save_keras", "save_h5", "save_weights_h5"]

EXTRAS_FORMAT = "cnnlite-extras"
EXTRAS_VERSION = 1
_SLOT_KINDS = {"Adam": ["momentum", "velocity"], "SGD": ["momentum"], "RMSprop": ["velocity"]}


def sniff(path):
    """'cnnlite' (cnnlite's own 0.1 zip), 'keras' (Keras 3 .keras zip), 'weights_h5' (Keras 3 weights store),
    'legacy_h5' (legacy Keras HDF5) or None (something else; the caller's reader then says what is wrong).
    An HDF5 file is first read in full in a bounded child (h5_bounded): one that makes the HDF5 library hang or
    crash is a ValueError naming it here, and the reads that follow in this process are the ones the child made."""
    path = os.fspath(path)
    if h5.is_hdf5(path):
        h5_bounded.preflight(path, lambda: _read_hdf5(path), os.path.getsize(path))
        return _hdf5_kind(path)
    try:
        if not zipfile.is_zipfile(path):
            return None
        with zipfile.ZipFile(path) as zf:
            names = set(zf.namelist())
    except (OSError, zipfile.BadZipFile, ValueError, EOFError, NotImplementedError, RuntimeError):
        return None  # damaged: the reader it falls to says what is wrong, naming the file
    if keras_format.WEIGHTS in names:
        return "keras"
    return "cnnlite" if "config.json" in names else None


def _hdf5_kind(path):
    h5py = h5.import_h5py(path)
    try:
        with h5py.File(path, "r") as f:
            return "weights_h5" if "layers" in f and "model_weights" not in f else "legacy_h5"
    except (OSError, ValueError, RuntimeError, KeyError, TypeError):  # h5py's forms of a damaged file
        return "legacy_h5"  # its reader reports the damage


def _read_hdf5(path):
    """Everything a load reads of an HDF5 file (what the bounded child runs)."""
    if _hdf5_kind(path) == "weights_h5":
        return keras_format.read_weights_store(path, path)
    return legacy_h5.read(path)


class _Failure:
    def __init__(self, path):
        self.path = path

    def error(self, problem):
        return ValueError(f"cannot load {self.path!r}: {problem}")

    def __call__(self, problem):
        raise self.error(problem)


# --- building a model from Keras data ------------------------------------------------------------------------

def _build_model(spec, fail):
    config = convert.model_from_keras(spec, fail)
    cls = get_model_class("Sequential")
    if cls is None:  # pragma: no cover - cnnlite.models registers it
        fail("no Sequential model class is registered")
    try:
        return cls.from_config(config)
    except (ValueError, TypeError, KeyError, NotImplementedError) as e:
        fail(f"the model it describes cannot be built in cnnlite: {e}")


def _cnnlite_input(spec, extras):
    """Keras writes the input shape as an InputLayer; a cnnlite model that declared it on its first layer (its
    extras say so) gets it back there, so its config round-trips."""
    if not (extras or {}).get("input_on_first_layer") or not isinstance(spec, dict):
        return spec
    config = spec.get("config")
    layers = config.get("layers") if isinstance(config, dict) else None
    if not layers or len(layers) < 2 or not isinstance(layers[0], dict) or layers[0].get("class_name") != "InputLayer":
        return spec
    input_config = layers[0].get("config") or {}
    shape = input_config.get("batch_shape", input_config.get("batch_input_shape"))
    first = dict(layers[1], config=dict(layers[1].get("config") or {}, batch_input_shape=shape))
    return dict(spec, config=dict(config, layers=[first] + layers[2:]))


def _check_layer_arrays(layer, arrays, fail, where):
    expected = [tuple(w.shape) for w in layer.get_weights()]
    got = [tuple(a.shape) for a in arrays]
    if expected != got:
        fail(f"layer {layer.name!r} ({type(layer).__name__}) has weights of shapes {expected}, {where} holds {got}")


def _plan_store_weights(model, data, fail):
    """[(layer, arrays)] from a Keras 3 weights store: by Keras's store keys, else by the layer name the file
    records; every count and shape checked, nothing set."""
    layers = model.layers
    keys = keras_format.store_keys([type(layer).__name__ for layer in layers])
    by_name = {name: arrays for name, arrays in data.layers.values() if name is not None}
    plan = []
    for layer, key in zip(layers, keys):
        entry = data.layers.get(key)
        arrays = entry[1] if entry is not None else by_name.get(layer.name)
        if arrays is None:
            if not layer.get_weights():
                continue
            fail(f"it holds no weights for layer {layer.name!r} (expected group layers/{key})")
        _check_layer_arrays(layer, arrays, fail, f"layers/{key} in the file")
        plan.append((layer, arrays))
    return plan


def _plan_legacy_weights(model, data, fail):
    """Keras's legacy rule: the file's layers with weights, in order, go to the model's layers with weights."""
    file_layers = [(name, arrays) for name, arrays in data.layers if arrays]
    model_layers = [layer for layer in model.layers if layer.get_weights()]
    if len(file_layers) != len(model_layers):
        fail(f"it holds weights for {len(file_layers)} layers ({', '.join(n for n, _ in file_layers)}) but the "
             f"model has {len(model_layers)} layers with weights ({', '.join(l.name for l in model_layers)})")
    plan = []
    for layer, (name, arrays) in zip(model_layers, file_layers):
        _check_layer_arrays(layer, arrays, fail, f"model_weights/{name} in the file")
        plan.append((layer, arrays))
    return plan


def _apply(plan):
    for layer, arrays in plan:
        if arrays:
            layer.set_weights(arrays)


def _compile(model, compile_config, extras, fail):
    own = (extras or {}).get("compile")
    if isinstance(own, dict):  # cnnlite wrote this file: its exact settings
        optimizer_config, loss, metric_names = own.get("optimizer"), own.get("loss"), own.get("metrics") or []
    else:
        optimizer_config, loss, metric_names = convert.compile_from_keras(compile_config, fail)
    if loss is None:
        return False
    try:
        model.compile_from_config({"optimizer": optimizer_config, "loss": loss, "metrics": metric_names or None})
    except (ValueError, TypeError, KeyError, NotImplementedError) as e:
        fail(f"its compile settings are not supported by cnnlite: {e}")
    return True


def _restore_optimizer(model, state, extras, label, built_hint=None):
    """Put Keras-ordered optimizer state into the compiled model's optimizer (warns and skips what does not fit)."""
    optimizer = model.optimizer
    own = (extras or {}).get("optimizer_state") or {}
    built = bool(state["slots"]) if built_hint is None else built_hint
    problem = optimizer_mismatch(model, None, built, state["slots"])
    if problem is not None:
        warnings.warn(f"{label!r}: {problem}; the optimizer starts fresh.", stacklevel=3)
        return
    restore_optimizer(model, built, state["slots"], int(own.get("iterations", state["iterations"])))
    if isinstance(own.get("learning_rate"), float):
        optimizer.learning_rate = own["learning_rate"]  # exact (the file's variable is float32)
    elif state.get("learning_rate") is not None and math.isfinite(state["learning_rate"]) and \
            np.float32(optimizer.learning_rate) != np.float32(state["learning_rate"]):
        optimizer.learning_rate = state["learning_rate"]  # changed during training (a callback): Keras keeps it


def _restore_extras(model, extras, fail, strict=True):
    if not extras:
        return
    if extras.get("format") != EXTRAS_FORMAT or extras.get("version") != EXTRAS_VERSION:
        fail(f"its cnnlite extras are of an unknown format {extras.get('format')!r} "
             f"version {extras.get('version')!r}")
    restore_training_state(model, extras.get("training_state"), fail, strict=strict)


def _finish(model, spec_compile, data_optimizer, extras, fail, compile):
    if compile and spec_compile is not None:
        if _compile(model, spec_compile, extras, fail) and data_optimizer is not None:
            own = (extras or {}).get("optimizer_state") or {}
            _restore_optimizer(model, data_optimizer, extras, fail.path, own.get("built"))
    return model


def load_model(path, compile=True, kind=None):
    """A cnnlite model from a Keras `.keras` or legacy `.h5` file (`kind`: what `sniff` says, when known)."""
    fail = _Failure(path)
    kind = kind or sniff(path)
    if kind == "keras":
        data = keras_format.read_archive(path)
        spec = dict(data.config)
        compile_config = spec.pop("compile_config", None)
        extras = data.weights.extras
        model = _build_model(_cnnlite_input(spec, extras), fail)
        if not model.built:
            if any(arrays for _, arrays in data.weights.layers.values()):
                fail("the model has no input shape, so its weights cannot be placed")
        else:
            _apply(_plan_store_weights(model, data.weights, fail))
        _restore_extras(model, extras, fail)
        return _finish(model, compile_config, data.weights.optimizer, extras, fail, compile)
    if kind == "legacy_h5":
        data = legacy_h5.read(path)
        if data.model_config is None:
            fail("it holds weights only (no model_config); build the model and call model.load_weights()")
        model = _build_model(_cnnlite_input(data.model_config, data.extras), fail)
        if not model.built:
            if any(arrays for _, arrays in data.layers):
                fail("the model has no input shape, so its weights cannot be placed")
        else:
            _apply(_plan_legacy_weights(model, data, fail))
        _restore_extras(model, data.extras, fail)
        return _finish(model, data.training_config, data.optimizer, data.extras, fail, compile)
    if kind == "weights_h5":
        fail("it is a Keras weights file (.weights.h5); build the model and call model.load_weights()")
    fail("not a Keras file")


def load_weights(model, path, kind=None):
    """Weights (and, when the model is compiled with a fitting optimizer, its state) from a Keras file (`kind`: what
    `sniff` says, when known)."""
    fail = _Failure(path)
    kind = kind or sniff(path)
    if kind == "keras":
        data = keras_format.read_archive(path).weights
        plan = _plan_store_weights(model, data, fail)
    elif kind == "weights_h5":
        data = keras_format.read_weights_store(path, path)
        plan = _plan_store_weights(model, data, fail)
    elif kind == "legacy_h5":
        data = legacy_h5.read(path)
        plan = _plan_legacy_weights(model, data, fail)
    else:
        fail("not a Keras file")
    if data.optimizer is not None and data.optimizer["slots"] and getattr(model, "optimizer", None) is not None:
        _restore_optimizer(model, data.optimizer, data.extras, path)
    _restore_extras(model, data.extras, fail, strict=False)
    _apply(plan)


# --- writing -------------------------------------------------------------------------------------------------

def save_path(filepath, overwrite, what):
    """The checked str path of a save (FileExistsError when it exists and `overwrite` is False)."""
    path = check_path(filepath, what)
    if not overwrite and os.path.exists(path):
        raise FileExistsError(f"{what}: {path!r} exists and overwrite=False")
    return path


def _atomic_write_bytes(path, data):
    atomic_write(path, lambda f: f.write(data))


def _compile_config(model):
    """`model.get_compile_config()`, or None when its loss or a metric cannot be written (convert warns)."""
    try:
        return model.get_compile_config()
    except ValueError:
        return None


def _extras(model):
    layer_configs = model.get_config().get("layers") or []
    first = layer_configs[0] if layer_configs else {}
    extras = {"format": EXTRAS_FORMAT, "version": EXTRAS_VERSION, "cnnlite_version": __version__,
              "training_state": training_state(model),
              "input_on_first_layer": first.get("class_name") != "InputLayer" and
              (first.get("config") or {}).get("batch_input_shape") is not None}
    optimizer = getattr(model, "optimizer", None)
    if optimizer is not None:
        compile_config = _compile_config(model)
        if compile_config is not None:
            extras["compile"] = compile_config
        extras["optimizer_state"] = {"class_name": type(optimizer).__name__, "built": bool(optimizer.built),
                                     "iterations": int(optimizer.iterations),
                                     "learning_rate": float(optimizer.learning_rate),
                                     "config": {"class_name": type(optimizer).__name__,
                                                "config": optimizer.get_config()}}
    return extras


def _optimizer_state(model):
    optimizer = getattr(model, "optimizer", None)
    if optimizer is None:
        return None
    slots = [np.ascontiguousarray(v, dtype=np.float32) for v in optimizer.variables()]
    return {"name": str(optimizer.name).lower(), "iterations": int(optimizer.iterations),
            "learning_rate": float(optimizer.learning_rate), "slots": slots}


def _check_float32(model):
    for layer in model.layers:
        for w in layer.get_weights():
            if w.dtype != np.float32:
                raise TypeError(f"cannot save layer {layer.name!r}: weight dtype {w.dtype}, expected float32")


def _warn(problems):
    for problem in problems:
        warnings.warn(f"Saving for Keras: {problem}", stacklevel=4)


def save_keras(model, path):
    """A Keras 3 `.keras` archive that `keras.models.load_model` opens (and cnnlite reads back exactly)."""
    _check_float32(model)
    spec = convert.model_to_keras(model)
    compile_config, problems = convert.compile_to_keras(model)
    _warn(problems)
    if compile_config is not None:
        spec["compile_config"] = compile_config
    keys = keras_format.store_keys([type(layer).__name__ for layer in model.layers])
    layers = [(key, layer.name, layer.get_weights()) for key, layer in zip(keys, model.layers)]
    weights = keras_format.weights_store_bytes(layers, _optimizer_state(model), model.name)
    metadata = {"keras_version": convert.KERAS_VERSION, "saved_by": f"cnnlite {__version__}"}
    buffer = io.BytesIO()
    keras_format.write_archive(buffer, spec, metadata, weights, _extras(model))
    _atomic_write_bytes(path, buffer.getvalue())


def save_weights_h5(model, path):
    """A Keras 3 weights file (`.weights.h5`): the weights store of a `.keras` archive, optimizer included."""
    _check_float32(model)
    keys = keras_format.store_keys([type(layer).__name__ for layer in model.layers])
    layers = [(key, layer.name, layer.get_weights()) for key, layer in zip(keys, model.layers)]
    _atomic_write_bytes(path, keras_format.weights_store_bytes(layers, _optimizer_state(model), model.name,
                                                               _extras(model), sealed=True))


def save_h5(model, path):
    """A legacy Keras HDF5 model (`.h5`) that Keras 3 and tf.keras load."""
    _check_float32(model)
    spec = convert.model_to_keras(model, legacy=True)
    training_config, problems = convert.compile_to_keras(model, legacy=True)
    _warn(problems)
    layers = [(layer.name, [(f"{layer.name}/{name}:0", w) for name, w in zip(layer.weight_names,
                                                                              layer.get_weights())])
              for layer in model.layers]
    state = _optimizer_state(model)
    if state is not None:
        kinds = _SLOT_KINDS.get(type(model.optimizer).__name__, [])
        if state["slots"]:
            paths = [f"{model.name}/{layer.name}/{name}" for layer in model.layers if layer.trainable
                     for name in layer.weight_names]
            state["slot_names"] = legacy_h5.slot_names(state["name"], paths, kinds)
            if len(state["slot_names"]) != len(state["slots"]):
                state = None
        else:
            state["slot_names"] = []
    buffer = io.BytesIO()
    legacy_h5.write(buffer, spec, training_config, layers, state, _extras(model), convert.KERAS_VERSION)
    _atomic_write_bytes(path, buffer.getvalue())
