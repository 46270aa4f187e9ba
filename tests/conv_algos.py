"""The convolution algorithms, passed explicitly to the kernels, for tests that must cover every path.

`Forced(name)` (or the `forced(name)` context manager, which yields one) wraps the conv2d bindings so that every call
passes that algorithm explicitly (`algo=`, `algo_input=`, `algo_weights=`): 'auto' passes None (the automatic
choice), 'gemm' and 'winograd' name themselves for every pass, and 'direct' names itself for the forward pass and the
weight gradient; the direct kernel has no input-gradient pass by design, so under 'direct' the input gradient is the
automatic choice (PASSES below says so for every pass). Where the named algorithm does not apply to a call's
geometry the test is skipped with the reason (`pytest.skip`), never run with another algorithm; `applies(...)` lets
property tests filter their examples instead.
"""
import contextlib

import pytest

from cnnlite import _kernels as K

# Every setting: the automatic choice and each algorithm.
ALGOS = ["auto", "gemm", "winograd", "direct"]

# The algorithm each setting passes for (forward, input gradient, weight gradient); None: the automatic choice.
PASSES = {
    "auto": (None, None, None),
    "gemm": ("gemm", "gemm", "gemm"),
    "winograd": ("winograd", "winograd", "winograd"),
    "direct": ("direct", None, "direct"),  # the direct kernel has no input gradient
}


class Forced:
    def __init__(self, name):
        self.name = name
        self.forward, self.input, self.weights = PASSES[name]

    def _check(self, algo, x_shape, w_shape, sh, sw, pads, **which):
        if algo is not None and not K.conv2d_algo_applies(algo, x_shape, w_shape, sh, sw, *pads, **which):
            what = "input gradient" if which.get("backward_input") else (
                "weight gradient" if which.get("backward_weights") else "forward pass")
            pytest.skip(f"algorithm {algo!r} does not apply to the {what} of x {tuple(x_shape)}, w {tuple(w_shape)}, "
                        f"strides {sh}x{sw}, pads {tuple(pads)}")
        return algo

    def applies(self, x_shape, w_shape, sh, sw, *pads, need_dx=True):
        """True when this setting's algorithms apply to every pass of the geometry (need_dx: including dx)."""
        checks = [(self.forward, {}), (self.weights, {"backward_weights": True})]
        if need_dx:
            checks.append((self.input, {"backward_input": True}))
        return all(a is None or K.conv2d_algo_applies(a, x_shape, w_shape, sh, sw, *pads, **w) for a, w in checks)

    def algo(self, x_shape, w_shape, sh, sw, *pads, backward_input=False, backward_weights=False):
        """The algorithm a call of that pass runs: the named one, or the automatic choice where this passes None."""
        name = self.input if backward_input else self.weights if backward_weights else self.forward
        return name or K.conv2d_algo(x_shape, w_shape, sh, sw, *pads, backward_input=backward_input,
                                     backward_weights=backward_weights)

    def conv2d_forward(self, x, w, b, sh, sw, *pads, relu=False):
        algo = self._check(self.forward, x.shape, w.shape, sh, sw, pads)
        return K.conv2d_forward(x, w, b, sh, sw, *pads, relu=relu, algo=algo)

    def conv2d_backward(self, dy, x, w, sh, sw, *pads, need_dx=True, need_db=True, y=None):
        algo_input = self._check(self.input, x.shape, w.shape, sh, sw, pads, backward_input=True) if need_dx else None
        algo_weights = self._check(self.weights, x.shape, w.shape, sh, sw, pads, backward_weights=True)
        return K.conv2d_backward(dy, x, w, sh, sw, *pads, need_dx=need_dx, need_db=need_db, y=y,
                                 algo_input=algo_input, algo_weights=algo_weights)

    def __getattr__(self, attr):  # every other binding, unchanged
        return getattr(K, attr)


@contextlib.contextmanager
def forced(name):
    yield Forced(name)
