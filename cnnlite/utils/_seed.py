"""Seeding for reproducible runs."""
import random as _python_random

import numpy as np

from cnnlite._validation import is_int


def set_random_seed(seed):
    """Seed Python's `random` module and NumPy's global generator (which cnnlite models draw their seeds from).

    seed: an integer in [0, 2**32 - 1]. Calling it again with the same seed makes a run repeat exactly.
    """
    if not is_int(seed):
        raise TypeError(f"seed must be an integer in [0, 2**32 - 1], got {seed!r} of type {type(seed).__name__}")
    seed = int(seed)
    if not 0 <= seed < 2**32:
        raise ValueError(f"seed must be an integer in [0, 2**32 - 1], got {seed}")
    _python_random.seed(seed)
    np.random.seed(seed)
