"""cnnlite: Keras-like deep learning on CPUs, with C++/OpenMP kernels wrapped by Cython.

The chapter's Keras code runs with `keras` replaced by `cnnlite`: cnnlite.models.Sequential, cnnlite.layers,
cnnlite.optimizers, cnnlite.losses, cnnlite.metrics, cnnlite.callbacks, cnnlite.utils, cnnlite.datasets,
cnnlite.Input.
"""
import os as _os

# GNU OpenMP spins for ~300k iterations at every barrier before sleeping. On a machine whose cores are also busy
# with other work, two spinning threads starve each other and a 1 ms kernel takes 40 ms; a short spin keeps the
# idle-machine latency and degrades gracefully under load. Must be set before the extension loads libgomp; users
# who set either variable themselves keep their choice.
if "OMP_WAIT_POLICY" not in _os.environ and "GOMP_SPINCOUNT" not in _os.environ:
    _os.environ["GOMP_SPINCOUNT"] = "2000"

from cnnlite import _memory  # noqa: F401  (allocator thresholds: see cnnlite/_memory.py)
from cnnlite._kernels import get_num_threads, set_num_threads, has_openmp
from cnnlite.config import _apply_isa_default as _apply_isa_default

_apply_isa_default()
from cnnlite import (activations, callbacks, datasets, initializers, layers, losses, metrics, models, optimizers,
                     utils)
from cnnlite.layers import Input
from cnnlite.models import Sequential
from cnnlite.profiler import Profile, profile

__version__ = "0.1.0"

__all__ = ["get_num_threads", "set_num_threads", "has_openmp", "__version__", "activations", "callbacks", "datasets",
           "initializers", "layers", "losses", "metrics", "models", "optimizers", "utils", "Input", "Sequential", "Profile", "profile"]
