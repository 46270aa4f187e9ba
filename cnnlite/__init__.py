"""cnnlite: Keras-like deep learning on CPUs, with C++/OpenMP kernels wrapped by Cython.

The chapter's Keras code runs with `keras` replaced by `cnnlite`: cnnlite.models.Sequential, cnnlite.layers,
cnnlite.optimizers, cnnlite.losses, cnnlite.metrics, cnnlite.callbacks, cnnlite.utils, cnnlite.datasets,
cnnlite.Input.
"""
from cnnlite import config  # first: the OpenMP and allocator defaults, then the extension (see cnnlite.config)
from cnnlite._kernels import get_num_threads, set_num_threads, has_openmp
from cnnlite import (activations, callbacks, datasets, initializers, layers, losses, metrics, mixed_precision, models,
                     optimizers, utils)
from cnnlite.layers import Input
from cnnlite.models import Sequential
from cnnlite.profiler import Profile, profile
from cnnlite._version import __version__

__all__ = ["get_num_threads", "set_num_threads", "has_openmp", "__version__", "activations", "callbacks", "datasets",
           "initializers", "layers", "losses", "metrics", "mixed_precision", "models", "optimizers", "utils", "Input", "Sequential", "Profile", "profile"]
