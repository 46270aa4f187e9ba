"""The convolution algorithms the kernels can be forced to use, for tests that must cover every path.

`forced(name)` sets the process-wide choice (`_kernels.set_conv2d_algo`) for the duration of a with-block; where the
forced algorithm does not apply to a shape the automatic choice runs instead (`_kernels.conv2d_algo` names the path
each pass of a geometry takes).
"""
import contextlib

from cnnlite import _kernels as K

# Every forced setting: the automatic choice and each algorithm.
ALGOS = ["auto", "gemm", "winograd", "direct"]


@contextlib.contextmanager
def forced(name):
    previous = K.set_conv2d_algo(name)
    try:
        yield name
    finally:
        K.set_conv2d_algo(previous)

