"""cnnlite: Keras-like deep learning on CPUs, with C++/OpenMP kernels wrapped by Cython.

The chapter's Keras code runs with `keras` replaced by `cnnlite`: cnnlite.models.Sequential, cnnlite.layers,
cnnlite.optimizers, cnnlite.losses, cnnlite.metrics, cnnlite.callbacks, cnnlite.utils, cnnlite.datasets,
cnnlite.Input.
"""
from cnnlite._kernels import get_num_threads, set_num_threads, has_openmp
from cnnlite import (activations, callbacks, datasets, initializers, layers, losses, metrics, models, optimizers,
                     utils)
from cnnlite.layers import Input
from cnnlite.models import Sequential

__version__ = "0.1.0"

__all__ = ["get_num_threads", "set_num_threads", "has_openmp", "__version__", "activations", "callbacks", "datasets",
           "initializers", "layers", "losses", "metrics", "models", "optimizers", "utils", "Input", "Sequential"]
