"""Activation functions (Keras's names), each backed by one kernel for the forward and one for the backward pass.

Every function takes and returns a float32 array. The backward rule of each is attached as `fn.backward(dy, y)`,
computed from the forward *output* `y`.
"""
import numpy as np

from cnnlite import _kernels
from cnnlite._registry import Registry


def _as_f32(x):
    return np.ascontiguousarray(x, dtype=np.float32)


def _last_axis_2d(x):
    return x.reshape(-1, x.shape[-1]) if x.ndim != 2 else x


def linear(x):
    """Identity."""
    return _as_f32(x)


def relu(x):
    """max(x, 0)."""
    return _kernels.relu_forward(_as_f32(x))


def sigmoid(x):
    """1 / (1 + exp(-x))."""
    return _kernels.sigmoid_forward(_as_f32(x))


def tanh(x):
    """Hyperbolic tangent."""
    return _kernels.tanh_forward(_as_f32(x))


def softmax(x, axis=-1):
    """Softmax over `axis` (default the last), numerically stable."""
    x = _as_f32(x)
    if x.ndim < 1:
        raise ValueError(f"softmax needs an input of rank >= 1, received shape {x.shape}")
    if axis not in (-1, x.ndim - 1):
        return np.moveaxis(softmax(np.ascontiguousarray(np.moveaxis(x, axis, -1))), -1, axis)
    if x.ndim == 1:
        return _kernels.softmax_forward(x.reshape(1, -1)).reshape(x.shape)
    return _kernels.softmax_forward(_last_axis_2d(x)).reshape(x.shape)


linear.backward = lambda dy, y: dy
relu.backward = lambda dy, y: _kernels.relu_backward(dy, y)
sigmoid.backward = lambda dy, y: _kernels.sigmoid_backward(dy, y)
tanh.backward = lambda dy, y: _kernels.tanh_backward(dy, y)
softmax.backward = lambda dy, y: _kernels.softmax_backward(_last_axis_2d(dy), _last_axis_2d(y)).reshape(y.shape)

REGISTRY = Registry("activation function")
for _fn in (linear, relu, sigmoid, tanh, softmax):
    REGISTRY.register(_fn)


def serialize(activation):
    """The Keras name of an activation function."""
    name = REGISTRY.name_of(activation)
    if name is None:
        raise REGISTRY.unknown(activation)
    return name


def deserialize(name):
    return REGISTRY.get(name)


def get(identifier):
    """None -> linear; a name ('relu', 'sigmoid', 'tanh', 'softmax', 'linear') or one of this module's functions."""
    if identifier is None:
        return linear
    if isinstance(identifier, str):
        return deserialize(identifier.lower())
    if callable(identifier) and REGISTRY.owns(identifier):
        return identifier
    raise ValueError(f"Could not interpret activation function identifier: {identifier!r}. "
                     f"Use one of {REGISTRY.names()} or None")
