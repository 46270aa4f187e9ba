"""The saving API (Keras's `keras.saving.save_model/load_model`, `Model.save_weights/load_weights`): one entry
point per operation that picks the format, by the file name when writing and by the content when reading.

Writing: `.keras` -> a Keras 3 archive, `.h5`/`.hdf5` -> a legacy Keras HDF5 model, `.weights.h5` -> Keras 3's
weights file (all in keras_files.py); `.weights.npz` -> cnnlite's own weights file (cnnlite_format.py). cnnlite's
own 0.1 model zip is still written by `cnnlite_format.save_model` (kept for reading old files and for tests).
Reading: `keras_files.sniff` tells a Keras 3 zip, a Keras 3 weights store and a legacy HDF5 file apart; anything else
goes to cnnlite_format's reader, which reads cnnlite 0.1 files and says what is wrong with the rest."""
import os

from cnnlite import distributed
from cnnlite.saving import cnnlite_format, keras_files
from cnnlite.saving.archive import check_path, require_built

__all__ = ["save_model", "load_model", "save_weights", "load_weights", "KERAS_KINDS"]

KERAS_KINDS = ("keras", "legacy_h5", "weights_h5")


def _writer(path, what):
    """The kind of file a save to `path` writes, from its name; ValueError naming the accepted suffixes."""
    if what == "save_weights":
        if path.endswith(".weights.h5"):
            return "weights_h5"
        if path.endswith(cnnlite_format.WEIGHTS_SUFFIX):
            return "cnnlite_weights"
        raise ValueError(f"save_weights: the filepath must end in '.weights.h5' (Keras 3 weights) or "
                         f"'{cnnlite_format.WEIGHTS_SUFFIX}' (cnnlite weights). Received: {path!r}")
    if path.endswith(".weights.h5"):
        raise ValueError(f"save_model: {path!r} is a weights file name; use save_weights() for '.weights.h5', or "
                         "a filepath ending in '.keras' or '.h5'")
    if path.endswith(cnnlite_format.MODEL_SUFFIX):
        return "keras"
    if path.lower().endswith((".h5", ".hdf5")):
        return "legacy_h5"
    raise ValueError(f"save_model: the filepath must end in '.keras' (Keras 3) or '.h5' (legacy Keras HDF5). "
                     f"Received: {path!r}")


def _checked(filepath, overwrite, what):
    path = check_path(filepath, what)
    kind = _writer(path, what)
    if not overwrite and os.path.exists(path):
        raise FileExistsError(f"{what}: {path!r} exists and overwrite=False")
    return path, kind


def save_model(model, filepath, overwrite=True):
    """Save architecture, weights, compile settings and optimizer state: `.keras` writes a Keras 3 archive, `.h5` a
    legacy Keras HDF5 model (both open in Keras; cnnlite reads them back and resumes training bit for bit).
    When several processes train together (cnnlite.distributed) only rank 0 writes; the others check and return."""
    path, kind = _checked(filepath, overwrite, "save_model")
    if not distributed.is_primary():
        return None
    return keras_files.save_keras(model, path) if kind == "keras" else keras_files.save_h5(model, path)


def save_weights(model, filepath, overwrite=True):
    """Save the layers' weights and, when built, the optimizer state: `.weights.h5` in Keras 3's weights format,
    `.weights.npz` in cnnlite's own. Only rank 0 writes when several processes train together."""
    path, kind = _checked(filepath, overwrite, "save_weights")
    if not distributed.is_primary():
        return None
    if kind == "weights_h5":
        return keras_files.save_weights_h5(model, path)
    return cnnlite_format.save_weights(model, path, overwrite=overwrite)


def _keras_kind(path):
    return keras_files.sniff(path) if os.path.isfile(path) else None


# What h5py raises for a damaged HDF5 file (the HDF5 library's errors arrive as RuntimeError, missing or mangled
# objects as KeyError, ...): for a loader these are all "the file is damaged", said with the file's name.
_HDF5_DAMAGE = (RuntimeError, KeyError, TypeError, IndexError, AttributeError, OverflowError)


def _load_keras(load, path, *args, **kwargs):
    try:
        return load(path, *args, **kwargs)
    except _HDF5_DAMAGE as e:
        raise ValueError(f"cannot load {path!r}: the file is damaged ({type(e).__name__}: {e})") from None


def load_model(filepath, custom_objects=None, compile=True, safe_mode=True):
    """A model from a Keras 3 `.keras`, a legacy Keras `.h5` or a cnnlite 0.1 file (told apart by content). Only
    cnnlite's own layers are known (`custom_objects` must be empty); nothing in a file runs code whatever
    `safe_mode` says."""
    path = check_path(filepath, "load_model")
    if custom_objects:
        raise ValueError("load_model: custom_objects are not supported; cnnlite models use only built-in layers")
    kind = _keras_kind(path)
    if kind in KERAS_KINDS:
        return _load_keras(keras_files.load_model, path, compile=compile, kind=kind)
    return cnnlite_format.load_model(path, compile=compile, safe_mode=safe_mode)


def load_weights(model, filepath):
    """Weights (and the optimizer and random state when they fit) from any file `save_weights` or `save_model`
    writes, or Keras writes, into a built `model`; shapes are checked before anything is set."""
    path = check_path(filepath, "load_weights")
    require_built(model, path)
    kind = _keras_kind(path)
    if kind in KERAS_KINDS:
        return _load_keras(lambda p: keras_files.load_weights(model, p, kind), path)
    return cnnlite_format.load_weights(model, path)
