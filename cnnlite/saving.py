"""Saving and loading models and weights in cnnlite's own zip format; never pickle.

A file is a zip archive (stored, not compressed) holding
  config.json               format name and version, what the file holds ("model" or "weights"), the model
                            architecture, compile settings, optimizer configuration + iterations, the random state
                            that decides how training continues (model seed and generators, dropout seeds and
                            steps), and the shapes of every array below (so a file is checked before anything is
                            set); a weights file holds no architecture or compile settings;
  weights/00000.npy ...     the layers' weights in model order (each layer's `get_weights()` order);
  optimizer/00000.npy ...   the optimizer's state (`Optimizer.variables()` order), when it has been built.
Arrays are written and read with `allow_pickle=False`: an object array or a pickle inside a file raises ValueError and
runs nothing. JSON is parsed with `json`, layers are rebuilt through the layer registry (`cnnlite.layers.deserialize`).

Paths: `save_model` wants a name ending in `.keras`, `save_weights` one ending in `.weights.npz` (HDF5 `.h5` is not
supported: cnnlite has no HDF5 writer). Loading looks at the content, not the extension; `load_weights` also reads
the weights out of a `.keras` file.

Writes are atomic: the archive is written to a temporary file next to the target
(`.<name>.cnnlite-<pid>-<random>.tmp`), flushed and fsynced, then renamed over the target with `os.replace`; on any
exception the temporary file is removed. A process killed mid-save therefore leaves the previous file intact plus, at
worst, its own temporary file; the next save to the same path deletes temporary files whose writing process is gone.
"""
import io
import json
import math
import os
import secrets
import warnings
import zipfile

import numpy as np

__all__ = ["save_model", "load_model", "save_weights", "load_weights", "FORMAT_NAME", "FORMAT_VERSION"]

FORMAT_NAME = "cnnlite"
FORMAT_VERSION = 1
CONFIG_MEMBER = "config.json"
MODEL_SUFFIX = ".keras"
WEIGHTS_SUFFIX = ".weights.npz"
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)  # fixed timestamps: the same model gives the same bytes
_MAX_CONFIG_BYTES = 64 << 20
_MAX_NPY_HEADER_BYTES = 1 << 16


# --- paths ---------------------------------------------------------------------------------------------------

def _check_path(path, what):
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"{what}: filepath must be a str or os.PathLike, got {type(path).__name__}")
    path = os.fspath(path)
    if isinstance(path, bytes):
        path = os.fsdecode(path)
    if not path:
        raise ValueError(f"{what}: filepath must not be empty")
    return path


def _check_suffix(path, suffix, what):
    lower = path.lower()
    if lower.endswith((".h5", ".hdf5")):
        raise ValueError(
            f"{what}: HDF5 files ({path!r}) are not supported; cnnlite saves only its own zip format. "
            f"Use a filepath ending in {suffix!r}."
        )
    if not path.endswith(suffix):
        raise ValueError(f"{what}: the filepath must end in {suffix!r} (cnnlite zip format). Received: {path!r}")


# --- atomic writes -------------------------------------------------------------------------------------------

def _temp_prefix(path):
    return "." + os.path.basename(path)[:120] + ".cnnlite-"  # short enough for NAME_MAX with the suffix


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _remove_stale_temps(path):
    """Delete temporary files left for `path` by processes that died mid-save (ours are removed on exceptions)."""
    folder = os.path.dirname(path) or "."
    prefix = _temp_prefix(path)
    try:
        names = os.listdir(folder)
    except OSError:
        return
    for name in names:
        if not (name.startswith(prefix) and name.endswith(".tmp")):
            continue
        pid_text = name[len(prefix):].split("-", 1)[0]
        if not pid_text.isdigit():
            continue
        pid = int(pid_text)
        if pid != os.getpid() and not _pid_alive(pid):
            try:
                os.unlink(os.path.join(folder, name))
            except OSError:
                pass


def _fsync_folder(folder):
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems cannot fsync a directory; the rename itself is still atomic
    finally:
        os.close(fd)


def _atomic_write(path, write):
    """Call `write(binary_file)` on a temporary file next to `path`, fsync it, then rename it over `path`."""
    if os.path.isdir(path):
        raise IsADirectoryError(f"cannot save to {path!r}: it is an existing directory")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"cannot save to {path!r}: folder {folder!r} does not exist")
    _remove_stale_temps(path)
    temp = os.path.join(folder, f"{_temp_prefix(path)}{os.getpid()}-{secrets.token_hex(6)}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temp, path)
    except BaseException:
        try:
            os.unlink(temp)
        except OSError:
            pass
        raise
    _fsync_folder(folder)


# --- archive writing -----------------------------------------------------------------------------------------

def _member(name):
    info = zipfile.ZipInfo(name, date_time=_ZIP_DATE)
    info.compress_type = zipfile.ZIP_STORED
    info.external_attr = 0o644 << 16
    return info


def _write_archive(f, config, groups):
    """`groups`: {"weights": [arrays], "optimizer": [arrays]} written as <group>/<index>.npy."""
    with zipfile.ZipFile(f, "w", compression=zipfile.ZIP_STORED) as zf:
        zf.writestr(_member(CONFIG_MEMBER), json.dumps(config, indent=1, sort_keys=True, allow_nan=False))
        for group, arrays in groups.items():
            for i, array in enumerate(arrays):
                with zf.open(_member(_array_member(group, i)), "w", force_zip64=True) as out:
                    np.lib.format.write_array(out, array, allow_pickle=False)


def _array_member(group, index):
    return f"{group}/{index:05d}.npy"


def _float32(array, what):
    array = np.asarray(array)
    if array.dtype != np.float32:
        raise TypeError(f"cannot save {what}: expected a float32 array, got dtype {array.dtype}")
    return np.ascontiguousarray(array)


# --- what a model holds --------------------------------------------------------------------------------------

def _layer_weights(model):
    """[(layer name, [arrays])] for every layer, in model order."""
    return [(layer.name, list(layer.get_weights())) for layer in model.layers]


def _weights_entries(model):
    entries, arrays = [], []
    for layer_name, layer_arrays in _layer_weights(model):
        for array in layer_arrays:
            array = _float32(array, f"weight of layer {layer_name!r}")
            entries.append({"layer": layer_name, "shape": list(array.shape)})
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
    """What `compile` was given, as JSON: the optimizer config, the loss name (or its config for a loss object) and
    the metric names. None (with a warning) when something cannot be written that way."""
    optimizer = getattr(model, "optimizer", None)
    if optimizer is None:
        return None
    from cnnlite import metrics as metrics_module
    from cnnlite import optimizers

    loss = getattr(model, "loss", None)
    if loss is not None and not isinstance(loss, str):
        loss = getattr(model, "compiled_loss_config", None)
    metrics = list(getattr(model, "compiled_metrics", None) or [])
    problem = None
    if loss is not None and not isinstance(loss, (str, dict)):
        problem = f"its loss {model.loss!r} cannot be written to a file"
    for name in metrics:
        try:
            metrics_module.check_identifier(name)
        except ValueError:
            problem = f"its metric {name!r} cannot be re-created from its name"
    if problem is not None:
        warnings.warn(
            f"The model is saved without its compile settings and optimizer state because {problem}; compile it "
            "again after loading.",
            stacklevel=3,
        )
        return None
    return {"optimizer": optimizers.serialize(optimizer), "loss": loss, "metrics": metrics}


def _input_shape(model):
    if not getattr(model, "built", False) or not model.layers:
        return None
    shape = getattr(model, "input_shape", None)
    if shape is None:
        shape = model.layers[0].input_shape
    return None if shape is None else [None if d is None else int(d) for d in shape]


def _generator_state(generator):
    return None if generator is None else generator.bit_generator.state


def _training_state(model):
    """Random state outside the config that decides how training continues: the model's seed and its initialiser
    and shuffling generators, and each dropout layer's mask seed and step counter. Saving it makes a loaded model
    train exactly as the saved one would have."""
    state = {
        "seed": getattr(model, "_seed", None),
        "init_rng": _generator_state(getattr(model, "_init_rng", None)),
        "shuffle_rng": _generator_state(getattr(model, "_shuffle_rng", None)),
        "layers": {},
    }
    for index, layer in enumerate(model.layers):
        if hasattr(layer, "_seed_value") and hasattr(layer, "_step"):
            state["layers"][str(index)] = {"seed": layer._seed_value, "step": int(layer._step)}
    return state


def _generator_from_state(state, archive, what):
    generator = np.random.default_rng()
    if not isinstance(state, dict) or state.get("bit_generator") != type(generator.bit_generator).__name__:
        raise archive.error(f"invalid {what} generator state in config.json")
    try:
        generator.bit_generator.state = state
    except (TypeError, ValueError, KeyError, OverflowError) as e:
        raise archive.error(f"invalid {what} generator state in config.json ({e})") from None
    return generator


def _is_count(value):
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _restore_training_state(model, state, archive, strict=True):
    """Put back what `_training_state` saved. With strict=False (loading weights into a possibly different
    architecture) layer entries that do not name a dropout layer of `model` are skipped."""
    if state is None:
        return
    if not isinstance(state, dict) or not isinstance(state.get("layers", {}), dict):
        raise archive.error("'training_state' in config.json must be an object")
    if state.get("seed") is not None:
        if not _is_count(state["seed"]):
            raise archive.error(f"invalid model seed {state['seed']!r} in config.json")
        model._seed = state["seed"]
        model._init_rng = _generator_from_state(state.get("init_rng"), archive, "initialiser")
        model._shuffle_rng = _generator_from_state(state.get("shuffle_rng"), archive, "shuffling")
    layer_list = model.layers
    for key, layer_state in state.get("layers", {}).items():
        index = int(key) if key.isdigit() else -1
        if not 0 <= index < len(layer_list) or not hasattr(layer_list[index], "_step"):
            if not strict:
                continue
            raise archive.error(f"the training state names layer {key!r}, which is not a dropout layer of the model")
        if not isinstance(layer_state, dict) or not _is_count(layer_state.get("step")) or not (
                layer_state.get("seed") is None or _is_count(layer_state.get("seed"))):
            raise archive.error(f"invalid training state for layer {key!r}: {layer_state!r}")
        layer_list[index]._seed_value = layer_state["seed"]
        layer_list[index]._step = layer_state["step"]


# --- public API: saving --------------------------------------------------------------------------------------

def save_model(model, filepath, overwrite=True):
    """Save architecture, weights, compile settings and optimizer state to `filepath` (ending in `.keras`)."""
    path = _check_path(filepath, "save_model")
    _check_suffix(path, MODEL_SUFFIX, "save_model")
    if not overwrite and os.path.exists(path):
        raise FileExistsError(f"save_model: {path!r} exists and overwrite=False")
    from cnnlite import __version__

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
        "build_input_shape": _input_shape(model),
        "compile": compile_config,
        "optimizer_state": optimizer_entry,
        "training_state": _training_state(model),
        "weights": entries,
    }
    _atomic_write(path, lambda f: _write_archive(f, config, {"weights": weights, "optimizer": optimizer_arrays}))


def save_weights(model, filepath, overwrite=True):
    """Save the layers' weights (and the optimizer state, if built) to `filepath` (ending in `.weights.npz`)."""
    path = _check_path(filepath, "save_weights")
    _check_suffix(path, WEIGHTS_SUFFIX, "save_weights")
    if not overwrite and os.path.exists(path):
        raise FileExistsError(f"save_weights: {path!r} exists and overwrite=False")
    from cnnlite import __version__

    entries, weights = _weights_entries(model)
    optimizer_entry, optimizer_arrays = _optimizer_state(getattr(model, "optimizer", None))
    config = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "kind": "weights",
        "cnnlite_version": __version__,
        "optimizer_state": optimizer_entry,
        "training_state": _training_state(model),
        "weights": entries,
    }
    _atomic_write(path, lambda f: _write_archive(f, config, {"weights": weights, "optimizer": optimizer_arrays}))


# --- archive reading -----------------------------------------------------------------------------------------

class _Archive:
    """A validated, open cnnlite zip: `config` (dict) and `array(group, index, shape)`."""

    def __init__(self, path):
        self.path = path
        if not os.path.exists(path):
            raise FileNotFoundError(f"cannot load {path!r}: no such file")
        if os.path.isdir(path):
            raise IsADirectoryError(f"cannot load {path!r}: it is a directory, expected a cnnlite zip file")
        try:
            self.zip = zipfile.ZipFile(path, "r")
        except zipfile.BadZipFile as e:
            raise self.error(f"not a cnnlite file (not a zip archive, or truncated/corrupt: {e})") from None
        except (OSError, EOFError, ValueError) as e:
            raise self.error(f"cannot read it as a zip archive ({e})") from None
        try:
            self.infos = self._index_members()
            self.config = self._read_config()
        except BaseException:
            self.zip.close()
            raise

    def error(self, problem):
        return ValueError(f"cannot load {self.path!r}: {problem}")

    def close(self):
        self.zip.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _index_members(self):
        infos = {}
        for info in self.zip.infolist():
            if info.filename in infos:
                raise self.error(f"the archive holds {info.filename!r} twice")
            infos[info.filename] = info
        return infos

    def _read_bytes(self, name, limit):
        info = self.infos.get(name)
        if info is None:
            raise self.error(f"the archive has no {name!r}")
        if info.file_size > limit:
            raise self.error(f"{name!r} is {info.file_size} bytes, more than the {limit} expected")
        try:
            return self.zip.read(info)
        except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError, NotImplementedError) as e:
            raise self.error(f"{name!r} is corrupt or truncated ({e})") from None

    def _read_config(self):
        if CONFIG_MEMBER not in self.infos:
            raise self.error(f"no {CONFIG_MEMBER!r} in the zip archive, so it is not a cnnlite file")
        raw = self._read_bytes(CONFIG_MEMBER, _MAX_CONFIG_BYTES)
        try:
            config = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise self.error(f"{CONFIG_MEMBER!r} is not valid JSON ({e})") from None
        if not isinstance(config, dict) or config.get("format") != FORMAT_NAME:
            if "model.weights.h5" in self.infos:
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
            if isinstance(iterations, bool) or not isinstance(iterations, int) or iterations < 0:
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
            if not isinstance(shape, list) or not all(
                isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape
            ):
                raise self.error(f"{what}[{i}] has an invalid shape {shape!r}")

    def array(self, group, index, shape):
        """Read `<group>/<index>.npy`: float32 of exactly `shape`, never unpickling anything."""
        name = _array_member(group, index)
        expected_bytes = 4 * math.prod(shape)
        raw = self._read_bytes(name, expected_bytes + _MAX_NPY_HEADER_BYTES)
        try:
            array = np.lib.format.read_array(io.BytesIO(raw), allow_pickle=False)
        except (ValueError, EOFError, OSError, SyntaxError, TypeError) as e:
            raise self.error(f"{name!r} is not a valid float32 .npy array ({e})") from None
        if array.dtype.kind != "f" or array.dtype.itemsize != 4:
            raise self.error(f"{name!r} has dtype {array.dtype}, expected float32")
        if list(array.shape) != list(shape):
            raise self.error(f"{name!r} has shape {tuple(array.shape)}, the config says {tuple(shape)}")
        return np.ascontiguousarray(array, dtype=np.float32)

    def weights(self):
        entries = self.config["weights"]
        return [self.array("weights", i, e["shape"]) for i, e in enumerate(entries)]

    def optimizer_arrays(self):
        state = self.config.get("optimizer_state")
        if state is None:
            return None
        return [self.array("optimizer", i, shape) for i, shape in enumerate(state["variables"])]


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
    """Why the saved optimizer state cannot go into `model.optimizer` (a sentence), or None if it fits."""
    from cnnlite import optimizers

    optimizer = model.optimizer
    if type(optimizer).__name__ != state.get("class_name"):
        return (f"it holds state for a {state.get('class_name')} optimizer but the model uses "
                f"{type(optimizer).__name__}")
    if not state.get("built", bool(arrays)):
        return None  # saved before the first step: only the iteration count to restore
    probe = optimizers.deserialize(optimizers.serialize(optimizer))
    probe.build(model.trainable_weights)
    expected = [tuple(np.shape(v)) for v in probe.variables()]
    got = [tuple(a.shape) for a in arrays]
    if expected != got:
        return (f"the model's optimizer keeps {len(expected)} state arrays with shapes {expected}, the file has "
                f"{len(got)} with shapes {got}")
    return None


def _restore_optimizer(model, state, arrays):
    """Build the model's optimizer as fit would and give it the saved slots and iteration count (checked first
    with `_optimizer_mismatch`)."""
    optimizer = model.optimizer
    if state.get("built", bool(arrays)):
        prepare = getattr(model, "_prepare_optimizer", None)  # fit's own way to build it (same weights, order)
        if prepare is not None:
            prepare()
        else:
            optimizer.build(model.trainable_weights)
        optimizer.set_variables(arrays)
    optimizer.set_iterations(state["iterations"])


# --- public API: loading -------------------------------------------------------------------------------------

def load_model(filepath, custom_objects=None, compile=True, safe_mode=True):
    """Rebuild a model saved by `save_model`: architecture, weights, random state and (with `compile`) the compile
    settings and optimizer state. Only cnnlite's own layers are known (`custom_objects` must be empty); loading never
    runs code from the file whatever `safe_mode` says."""
    del safe_mode  # accepted for Keras compatibility: nothing in a cnnlite file is executable
    path = _check_path(filepath, "load_model")
    if custom_objects:
        raise ValueError("load_model: custom_objects are not supported; cnnlite models use only built-in layers")
    with _Archive(path) as archive:
        config = archive.config
        if config["kind"] != "model":
            raise archive.error(
                "it holds only weights (saved by save_weights); build the model and call model.load_weights()"
            )
        weights = archive.weights()  # read and check every array before building anything
        optimizer_arrays = archive.optimizer_arrays()
        model = _model_from_config(config, archive)
        _apply_layer_weights(_plan_layer_weights(model, weights, archive))
        _restore_training_state(model, config.get("training_state"), archive)
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
    if class_name != "Sequential":
        raise archive.error(f"unknown model class {class_name!r} (cnnlite loads 'Sequential' models)")
    from cnnlite import models

    try:
        model = models.Sequential.from_config(spec["config"])
    except (ValueError, TypeError, KeyError) as e:
        raise archive.error(f"invalid model config: {e}") from None
    shape = config.get("build_input_shape")
    if shape is not None and not getattr(model, "built", False):
        if not isinstance(shape, list) or not all(d is None or (isinstance(d, int) and d > 0) for d in shape):
            raise archive.error(f"invalid build_input_shape {shape!r}")
        try:
            model.build(tuple(shape))
        except (ValueError, TypeError) as e:
            raise archive.error(f"cannot build the model for input shape {tuple(shape)}: {e}") from None
    return model


def _compile(model, compile_config, archive):
    from cnnlite import optimizers

    if not isinstance(compile_config, dict):
        raise archive.error("'compile' in config.json must be an object")
    try:
        optimizer = optimizers.deserialize(compile_config["optimizer"])
        model.compile(optimizer=optimizer, loss=compile_config["loss"], metrics=compile_config.get("metrics") or None)
    except (ValueError, TypeError, KeyError) as e:
        raise archive.error(f"invalid compile config: {e}") from None


def load_weights(model, filepath):
    """Load weights saved by `save_weights` (or the weights inside a `.keras` file) into a built `model`.

    The number of arrays and every shape are checked against the model before anything is changed. Weights are
    matched by position (layer order), not by layer name. When the file also holds optimizer state and the model
    is compiled with the same kind of optimizer (class and state shapes), that state and the random state are
    restored too, so training resumes exactly; otherwise a warning says the optimizer state was skipped.
    """
    path = _check_path(filepath, "load_weights")
    if not getattr(model, "built", False):
        raise ValueError(
            f"load_weights: the model must be built before loading {path!r}; call model.build(input_shape) "
            "or give the first layer an input_shape"
        )
    with _Archive(path) as archive:
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
        _restore_training_state(model, archive.config.get("training_state"), archive, strict=False)
        _apply_layer_weights(plan)
