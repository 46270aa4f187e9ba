"""Utilities as in keras.utils: one-hot labels, seeding, and cached checksum-verified downloads."""
from cnnlite.utils import np_utils
from cnnlite.utils.data_utils import get_file
from cnnlite.utils.np_utils import normalize, to_categorical
from cnnlite.utils._seed import set_random_seed

__all__ = ["to_categorical", "normalize", "set_random_seed", "get_file", "np_utils"]
