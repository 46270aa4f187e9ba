"""Saving and loading models and weights (Keras's `keras.saving` API): `save_model`, `load_model`, `save_weights`,
`load_weights`, in cnnlite's own zip format (see cnnlite_format.py; never pickle).

Modules:
  archive.py          paths, atomic writes (temporary file + fsync + rename, stale-temp cleanup), zip members read
                      only up to their declared size; knows nothing of models;
  cnnlite_format.py   cnnlite's format version 1 over archive.py, reaching a model only through its public methods;
  object_registry.py  the model classes a file may name, registered by the modules that define them (this package
                      imports no model module).
"""
from cnnlite.saving.cnnlite_format import (FORMAT_NAME, FORMAT_VERSION, MODEL_SUFFIX, WEIGHTS_SUFFIX, load_model,
                                           load_weights, save_model, save_weights)
from cnnlite.saving.object_registry import get_model_class, register_model_class

__all__ = ["save_model", "load_model", "save_weights", "load_weights", "register_model_class", "get_model_class",
           "FORMAT_NAME", "FORMAT_VERSION", "MODEL_SUFFIX", "WEIGHTS_SUFFIX"]
