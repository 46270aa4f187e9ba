"""The convolution algorithms the kernels can be forced to use, for tests that must cover every path.

`forced(name)` sets the process-wide choice (`_kernels.set_conv2d_algo`) for the duration of a with-block; where the
forced algorithm does not apply to a shape the automatic choice runs instead. `takes(name, ...)` says whether the
forward pass or the input gradient of a geometry really runs `name` under that setting.
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


def takes(name, x_shape, w_shape, sh, sw, pads):
    """True when, with `name` forced, the forward pass or the input gradient of this geometry runs `name`."""
    with forced(name):
        return any(K.conv2d_algo(x_shape, w_shape, sh, sw, *pads, backward_input=b) == name for b in (False, True))
