"""cnnlite's own file format (version 1): saving and loading models and weights as a zip of JSON and .npy; never
pickle.

A file is a zip archive (stored, not compressed) holding
  config.json               format name and version, what the file holds ("model" or "weights"), the model
                            architecture, compile settings, optimizer configuration + iterations, the random state
                            that decides how training continues (model seed and generators, dropout seeds and
                            steps), and the shapes of every array below (so a file is checked before anything is
                            set); a weights file holds no architecture or compile settings;
  weights/00000.npy ...     the layers' weights in model order (each layer's `get_weights()` order);
  optimizer/00000.npy ...   the optimizer's state (`Optimizer.variables()` order), when it has been built.
Arrays are written and read with `allow_pickle=False`: an object array or a pickle inside a file raises ValueError and
runs nothing. JSON is parsed with `json`, layers are rebuilt through the layer registry (`cnnlite.layers.deserialize`)
by the model class's `from_config`; the model class itself is looked up by name among the registered ones
(`object_registry`), so this module imports no model module.

Everything a model holds is reached through public methods: `layers` and each layer's `get_weights`/`set_weights`
and `get_rng_state`/`set_rng_state`; the model's `get_config`, `get_build_config`/`build_from_config`,
`get_compile_config`/`compile_from_config`, `get_rng_state`/`set_rng_state`, `optimizer` and `build_optimizer`;
the optimizer's `variables`/`set_variables`, `iterations`/`set_iterations`, `built` and `variable_shapes`.

Paths: `save_model` wants a name ending in `.keras`, `save_weights` one ending in `.weights.npz` (HDF5 `.h5` is not
supported: cnnlite has no HDF5 writer). Loading looks at the content, not the extension; `load_weights` also reads
the weights out of a `.keras` file. Writes are atomic (see archive.py).
"""
import os
import warnings

import numpy as np

from cnnlite._version import __version__
from cnnlite.saving.archive import (ZipReader, atomic_write, check_path, check_suffix, npy_member, require_built,
                                    write_zip)
from cnnlite.saving.model_state import (is_count, optimizer_mismatch, restore_optimizer, restore_training_state,
                                        training_state)
from cnnlite.saving.object_registry import get_model_class, model_class_names

__all__ = ["save_model", "load_model", "save_weights", "load_weights", "FORMAT_NAME", "FORMAT_VERSION",
           "MODEL_SUFFIX", "WEIGHTS_SUFFIX"]

FORMAT_NAME = "cnnlite"
FORMAT_VERSION = 1
CONFIG_MEMBER = "config.json"
MODEL_SUFFIX = ".keras"
WEIGHTS_SUFFIX = ".weights.npz"
_MAX_CONFIG_BYTES = 64 << 20


# --- writing -------------------------------------------------------------------------------------------------

def _float32(array, what):
    array = np.asarray(array)
    if array.dtype != np.float32:
        raise TypeError(f"cannot save {what}: expected a float32 array, got dtype {array.dtype}")
    return np.ascontiguousarray(array)


def _weights_entries(model):
    entries, arrays = [], []
    for layer in model.layers:
        for array in layer.get_weights():
            array = _float32(array, f"weight of layer {layer.name!r}")
            entries.append({"layer": layer.name, "shape": list(array.shape)})
            arrays.append(array)
    return entries, arrays


def _optimizer_state(optimizer):
    """(JSON entry, arrays) describing the optimizer's iterations and slot variables, or (None, [])."""
    if optimizer is None:
        return None, []
    arrays = [_float32(v, "optimizer variable") for v in optimizer.variables()]
    entry = {
        "class_name": type(optimizer).__name__,
        "built": bool(getattr(optimizer, "built", True)),
        "iterations": int(optimizer.iterations),
        "variables": [list(a.shape) for a in arrays],
    }
    return entry, arrays


def _compile_config(model):
    """The model's `get_compile_config()`, or None (with a warning) when its settings cannot be written as JSON."""
    try:
        return model.get_compile_config()
    except ValueError as e:
        warnings.warn(
            f"The model is saved without its compile settings and optimizer state because {e}; compile it "
            "again after loading.",
            stacklevel=3,
        )
        return None


def _build_input_shape(model):
    build_config = model.get_build_config()
    return None if build_config is None else build_config["input_shape"]


def _write(path, config, weights, optimizer_arrays):
    atomic_write(path, lambda f: write_zip(f, CONFIG_MEMBER, config,
                                           {"weights": weights, "optimizer": optimizer_arrays}))


def _target(filepath, suffix, overwrite, what):
    """The checked path to write: a str ending in `suffix`, not an existing file unless `overwrite`."""
    path = check_path(filepath, what)
    check_suffix(path, suffix, what)
    if not overwrite and os.path.exists(path):
        raise FileExistsError(f"{what}: {path!r} exists and overwrite=False")
    return path


def save_model(model, filepath, overwrite=True):
    """Save architecture, weights, compile settings and optimizer state to `filepath` (ending in `.keras`)."""
    path = _target(filepath, MODEL_SUFFIX, overwrite, "save_model")
    entries, weights = _weights_entries(model)
    compile_config = _compile_config(model)
    optimizer_entry, optimizer_arrays = (
        _optimizer_state(model.optimizer) if compile_config is not None else (None, [])
    )
    config = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "kind": "model",
        "cnnlite_version": __version__,
        "model": {"class_name": type(model).__name__, "config": model.get_config()},
        "build_input_shape": _build_input_shape(model),
        "compile": compile_config,
        "optimizer_state": optimizer_entry,
        "training_state": training_state(model),
        "weights": entries,
    }
    _write(path, config, weights, optimizer_arrays)


def save_weights(model, filepath, overwrite=True):
    """Save the layers' weights (and the optimizer state, if built) to `filepath` (ending in `.weights.npz`)."""
    path = _target(filepath, WEIGHTS_SUFFIX, overwrite, "save_weights")
    entries, weights = _weights_entries(model)
    optimizer_entry, optimizer_arrays = _optimizer_state(getattr(model, "optimizer", None))
    config = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "kind": "weights",
        "cnnlite_version": __version__,
        "optimizer_state": optimizer_entry,
        "training_state": training_state(model),
        "weights": entries,
    }
    _write(path, config, weights, optimizer_arrays)


# --- reading -------------------------------------------------------------------------------------------------

class _CnnliteFile(ZipReader):
    """A validated, open cnnlite zip: `config` (dict), `weights()` and `optimizer_arrays()`."""

    def __init__(self, path):
        super().__init__(path)
        try:
            self.config = self._read_config()
        except BaseException:
            self.close()
            raise

    def _read_config(self):
        if CONFIG_MEMBER not in self:
            raise self.error(f"no {CONFIG_MEMBER!r} in the zip archive, so it is not a cnnlite file")
        config = self.read_json(CONFIG_MEMBER, _MAX_CONFIG_BYTES)
        if not isinstance(config, dict) or config.get("format") != FORMAT_NAME:
            if "model.weights.h5" in self:
                raise self.error("it is a Keras .keras file (HDF5 weights inside); cnnlite reads only files "
                                 "written by cnnlite")
            raise self.error(f"{CONFIG_MEMBER!r} does not describe a cnnlite file (format != {FORMAT_NAME!r})")
        version = config.get("format_version")
        if version != FORMAT_VERSION or isinstance(version, bool):
            raise self.error(
                f"format version {version!r} is not supported (this cnnlite reads version {FORMAT_VERSION})"
            )
        if config.get("kind") not in ("model", "weights"):
            raise self.error(f"unknown file kind {config.get('kind')!r} (expected 'model' or 'weights')")
        self._check_shape_list([e.get("shape") if isinstance(e, dict) else None
                                for e in self._list(config, "weights")], "weights")
        state = config.get("optimizer_state")
        if state is not None:
            if not isinstance(state, dict):
                raise self.error("'optimizer_state' must be an object")
            if not isinstance(state.get("built", False), bool):
                raise self.error(f"optimizer 'built' must be true or false, got {state.get('built')!r}")
            iterations = state.get("iterations")
            if not is_count(iterations):
                raise self.error(f"optimizer iterations must be a non-negative integer, got {iterations!r}")
            self._check_shape_list(self._list(state, "variables"), "optimizer variables")
        return config

    def _list(self, mapping, key):
        value = mapping.get(key)
        if not isinstance(value, list):
            raise self.error(f"{key!r} in {CONFIG_MEMBER!r} must be a list, got {type(value).__name__}")
        return value

    def _check_shape_list(self, shapes, what):
        for i, shape in enumerate(shapes):
            if not isinstance(shape, list) or not all(is_count(d) for d in shape):
                raise self.error(f"{what}[{i}] has an invalid shape {shape!r}")

    def weights(self):
        entries = self.config["weights"]
        return [self.read_float32(npy_member("weights", i), e["shape"]) for i, e in enumerate(entries)]

    def optimizer_arrays(self):
        state = self.config.get("optimizer_state")
        if state is None:
            return None
        return [self.read_float32(npy_member("optimizer", i), shape) for i, shape in enumerate(state["variables"])]


# --- setting state into a model ------------------------------------------------------------------------------

def _plan_layer_weights(model, arrays, archive):
    """[(layer, its slice of `arrays`)] after checking the count and every shape; changes nothing."""
    expected = [(layer, [np.shape(w) for w in layer.get_weights()]) for layer in model.layers]
    total = sum(len(shapes) for _, shapes in expected)
    if total != len(arrays):
        raise archive.error(
            f"the file holds {len(arrays)} weight arrays but the model has {total} "
            f"(layers: {', '.join(f'{layer.name}: {len(shapes)}' for layer, shapes in expected)})"
        )
    start = 0
    plan = []
    for layer, shapes in expected:
        chunk = arrays[start:start + len(shapes)]
        got = [tuple(a.shape) for a in chunk]
        if got != [tuple(s) for s in shapes]:
            raise archive.error(
                f"weight shapes for layer {layer.name!r} do not match: the model has {[tuple(s) for s in shapes]}, "
                f"the file has {got}"
            )
        plan.append((layer, chunk))
        start += len(shapes)
    return plan


def _apply_layer_weights(plan):
    for layer, chunk in plan:
        if chunk:
            layer.set_weights(chunk)


def _optimizer_mismatch(model, state, arrays):
    return optimizer_mismatch(model, state.get("class_name"), state.get("built", bool(arrays)), arrays)


def _restore_optimizer(model, state, arrays):
    restore_optimizer(model, state.get("built", bool(arrays)), arrays, state["iterations"])


def load_model(filepath, custom_objects=None, compile=True, safe_mode=True):
    """Rebuild a model saved by `save_model`: architecture, weights, random state and (with `compile`) the compile
    settings and optimizer state. Only cnnlite's own layers are known (`custom_objects` must be empty); loading never
    runs code from the file whatever `safe_mode` says."""
    del safe_mode  # accepted for Keras compatibility: nothing in a cnnlite file is executable
    path = check_path(filepath, "load_model")
    if custom_objects:
        raise ValueError("load_model: custom_objects are not supported; cnnlite models use only built-in layers")
    with _CnnliteFile(path) as archive:
        config = archive.config
        if config["kind"] != "model":
            raise archive.error(
                "it holds only weights (saved by save_weights); build the model and call model.load_weights()"
            )
        weights = archive.weights()  # read and check every array before building anything
        optimizer_arrays = archive.optimizer_arrays()
        model = _model_from_config(config, archive)
        _apply_layer_weights(_plan_layer_weights(model, weights, archive))
        restore_training_state(model, config.get("training_state"), archive)
        compile_config = config.get("compile")
        if compile and compile_config is not None:
            _compile(model, compile_config, archive)
            state = config.get("optimizer_state")
            if state is not None:
                problem = _optimizer_mismatch(model, state, optimizer_arrays)
                if problem is not None:
                    raise archive.error(f"the optimizer state does not fit the model: {problem}")
                _restore_optimizer(model, state, optimizer_arrays)
    return model


def _model_from_config(config, archive):
    spec = config.get("model")
    if not isinstance(spec, dict) or not isinstance(spec.get("config"), dict):
        raise archive.error("'model' in config.json must be an object with a 'config' object")
    class_name = spec.get("class_name")
    cls = get_model_class(class_name)
    if cls is None:
        known = ", ".join(repr(name) for name in model_class_names())
        raise archive.error(f"unknown model class {class_name!r} (cnnlite loads {known} models)")
    try:
        model = cls.from_config(spec["config"])
    except (ValueError, TypeError, KeyError) as e:
        raise archive.error(f"invalid model config: {e}") from None
    shape = config.get("build_input_shape")
    if shape is not None and not model.built:
        if not isinstance(shape, list) or not all(d is None or (isinstance(d, int) and d > 0) for d in shape):
            raise archive.error(f"invalid build_input_shape {shape!r}")
        try:
            model.build_from_config({"input_shape": shape})
        except (ValueError, TypeError) as e:
            raise archive.error(f"cannot build the model for input shape {tuple(shape)}: {e}") from None
    return model


def _compile(model, compile_config, archive):
    if not isinstance(compile_config, dict):
        raise archive.error("'compile' in config.json must be an object")
    try:
        model.compile_from_config(compile_config)
    except (ValueError, TypeError, KeyError) as e:
        raise archive.error(f"invalid compile config: {e}") from None


def load_weights(model, filepath):
    """Load weights saved by `save_weights` (or the weights inside a `.keras` file) into a built `model`.

    The number of arrays and every shape are checked against the model before anything is changed. Weights are
    matched by position (layer order), not by layer name. When the file also holds optimizer state and the model
    is compiled with the same kind of optimizer (class and state shapes), that state and the random state are
    restored too, so training resumes exactly; otherwise a warning says the optimizer state was skipped.
    """
    path = check_path(filepath, "load_weights")
    require_built(model, path)
    with _CnnliteFile(path) as archive:
        weights = archive.weights()
        optimizer_arrays = archive.optimizer_arrays()
        plan = _plan_layer_weights(model, weights, archive)
        state = archive.config.get("optimizer_state")
        if state is not None and getattr(model, "optimizer", None) is not None:
            problem = _optimizer_mismatch(model, state, optimizer_arrays)
            if problem is None:
                _restore_optimizer(model, state, optimizer_arrays)
            else:
                warnings.warn(f"{path!r}: {problem}; the weights are loaded, the optimizer state is not.",
                              stacklevel=2)
        restore_training_state(model, archive.config.get("training_state"), archive, strict=False)
        _apply_layer_weights(plan)
