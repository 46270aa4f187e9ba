"""Saving and loading models and weights (Keras's `keras.saving` API): `save_model`, `load_model`, `save_weights`,
`load_weights`, in Keras's formats (`.keras`, `.h5`, `.weights.h5`) and cnnlite's own (`.weights.npz`, and the 0.1
model zip, still read); never pickle.

Modules:
  saving_api.py       the four entry points: the format by name when writing, by content when reading;
  archive.py          paths, atomic writes (temporary file + fsync + rename, stale-temp cleanup), zip members read
                      only up to their declared (and plausible) size; knows nothing of models;
  cnnlite_format.py   cnnlite's format version 1 over archive.py, reaching models only through public methods;
  keras_files.py      Keras 3 `.keras`, legacy `.h5` and `.weights.h5` for cnnlite models, over keras_format.py
                      (the .keras zip and the weights store), legacy_h5.py, convert.py (Keras <-> cnnlite configs
                      through fixed tables) and h5.py (checked h5py reads, fletcher32 writes);
  model_state.py      the random and optimizer state every format saves, through public methods;
  object_registry.py  the model classes a file may name, registered by the modules that define them (this package
                      imports no model module).
"""
from cnnlite.saving.cnnlite_format import FORMAT_NAME, FORMAT_VERSION, MODEL_SUFFIX, WEIGHTS_SUFFIX
from cnnlite.saving.object_registry import get_model_class, register_model_class
from cnnlite.saving.saving_api import load_model, load_weights, save_model, save_weights

__all__ = ["save_model", "load_model", "save_weights", "load_weights", "register_model_class", "get_model_class",
           "FORMAT_NAME", "FORMAT_VERSION", "MODEL_SUFFIX", "WEIGHTS_SUFFIX"]
