"""Context managers that set a process-wide switch for a block of a test and put the previous value back."""
import contextlib

import cnnlite
from cnnlite import _kernels as K


@contextlib.contextmanager
def threads(n):
    """cnnlite.set_num_threads(n) inside the block."""
    old = cnnlite.get_num_threads()
    cnnlite.set_num_threads(n)
    try:
        yield
    finally:
        cnnlite.set_num_threads(old)


@contextlib.contextmanager
def isa(name):
    """The kernels capped at ISA level `name` inside the block."""
    old = K.set_isa(name)
    try:
        yield
    finally:
        K.set_isa(old)
