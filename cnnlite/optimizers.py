"""Optimizers (Keras 2 semantics) over the fused in-place update kernels: Adam, SGD (momentum, Nesterov), RMSprop.

An optimizer owns per-weight state ("slots"), created by `build(weights)` in the order of the weights given (the
model passes its weights in get_weights order). `apply_gradients(zip(grads, weights))` updates each weight in place
with one kernel call and counts one iteration.
"""
import math

import numpy as np

from cnnlite import _kernels
from cnnlite._registry import Registry
from cnnlite._validation import check_bool, check_nonneg_int

_ALLOWED_KWARGS = ("lr", "decay", "clipnorm", "clipvalue", "global_clipnorm")


def _number(value, name, owner, low=None, high=None, low_open=False, high_open=False):
    if isinstance(value, bool) or not isinstance(value, (int, float, np.number)) or not math.isfinite(value):
        raise ValueError(f"{owner}: `{name}` must be a finite number, received {name}={value!r}")
    value = float(value)
    if low is not None and (value < low or (low_open and value == low)):
        raise ValueError(f"{owner}: `{name}` must be {'>' if low_open else '>='} {low}, received {name}={value!r}")
    if high is not None and (value > high or (high_open and value == high)):
        raise ValueError(f"{owner}: `{name}` must be {'<' if high_open else '<='} {high}, received {name}={value!r}")
    return value


class Optimizer:
    """Base class: subclasses define `_slot_count`, `_update(w, g, slots, lr)` and `get_config()`."""

    _slot_count = 0

    def __init__(self, learning_rate, name, **kwargs):
        owner = type(self).__name__
        for key in kwargs:
            if key not in _ALLOWED_KWARGS:
                raise TypeError(f"{owner}: unexpected keyword argument {key!r}; allowed: {', '.join(_ALLOWED_KWARGS)}")
        if "lr" in kwargs:  # old Keras spelling
            learning_rate = kwargs["lr"]
        self.name = name
        self.learning_rate = learning_rate
        self.decay = _number(kwargs.get("decay", 0.0), "decay", owner, low=0.0)
        self.clipnorm = self._optional_positive(kwargs.get("clipnorm"), "clipnorm")
        self.clipvalue = self._optional_positive(kwargs.get("clipvalue"), "clipvalue")
        self.global_clipnorm = self._optional_positive(kwargs.get("global_clipnorm"), "global_clipnorm")
        if self.clipnorm is not None and self.global_clipnorm is not None:
            raise ValueError(f"{owner}: set at most one of `clipnorm` and `global_clipnorm`")
        self.iterations = 0
        self._slots = None       # list (per weight) of lists of float32 arrays
        self._index = {}         # id(weight array) -> position in _slots
        self._weight_shapes = []

    def _optional_positive(self, value, name):
        return None if value is None else _number(value, name, type(self).__name__, low=0.0, low_open=True)

    # learning_rate is a plain float, settable (e.g. by a learning-rate callback); `lr` is its old alias.
    @property
    def learning_rate(self):
        return self._learning_rate

    @learning_rate.setter
    def learning_rate(self, value):
        self._learning_rate = _number(value, "learning_rate", type(self).__name__, low=0.0)

    lr = learning_rate

    def current_learning_rate(self):
        """The learning rate of the next step, with Keras 2's time-based `decay`."""
        return self._learning_rate / (1.0 + self.decay * self.iterations)

    # ----- state ------------------------------------------------------------------------------------------------
    @property
    def built(self):
        return self._slots is not None

    def build(self, weights):
        """Create zeroed slots for `weights` (a list of float32 arrays, updated in place later)."""
        self._slots, self._index, self._weight_shapes = [], {}, []
        for w in weights:
            self._add_slots(w)

    def _add_slots(self, w):
        self._index[id(w)] = len(self._slots)
        self._slots.append([np.zeros(w.shape, np.float32) for _ in range(self._slot_count)])
        self._weight_shapes.append(w.shape)

    def variable_shapes(self, weights):
        """The shapes of the state arrays `build(weights)` would create, in `variables()` order (builds nothing)."""
        return [tuple(np.shape(w)) for w in weights for _ in range(self._slot_count)]

    def variables(self):
        """The optimizer's state arrays: for each weight in build order, its slots (Adam: m, v; SGD with momentum:
        velocity; RMSprop: the mean square)."""
        return [s for slots in (self._slots or []) for s in slots]

    def set_variables(self, variables):
        if not self.built:
            raise ValueError(f"{type(self).__name__}.set_variables: call build(weights) first (the optimizer has "
                             f"no slots yet)")
        own = self.variables()
        if len(variables) != len(own):
            raise ValueError(f"{type(self).__name__}.set_variables: expected {len(own)} arrays, "
                             f"received {len(variables)}")
        arrays = [np.asarray(v, dtype=np.float32) for v in variables]
        for i, (o, a) in enumerate(zip(own, arrays)):
            if o.shape != a.shape:
                raise ValueError(f"{type(self).__name__}.set_variables: variable {i} must have shape {o.shape}, "
                                 f"received {a.shape}")
        for o, a in zip(own, arrays):
            np.copyto(o, a)

    def set_iterations(self, iterations):
        self.iterations = check_nonneg_int(iterations, "iterations", f"{type(self).__name__}.set_iterations")

    # ----- updates ----------------------------------------------------------------------------------------------
    def apply_gradients(self, grads_and_vars):
        pairs = list(grads_and_vars)
        self.apply([g for g, _ in pairs], [w for _, w in pairs])

    def apply(self, grads, weights):
        """Update each weight in place from its gradient (one kernel call per weight) and count one iteration."""
        if len(grads) != len(weights):
            raise ValueError(f"apply: received {len(grads)} gradients for {len(weights)} weights")
        if self._slots is None:
            self.build(weights)
        grads = self._clipped(grads)
        lr = self.current_learning_rate()
        self.iterations += 1
        for g, w in zip(grads, weights):
            if g is None:
                continue
            if not isinstance(w, np.ndarray) or w.dtype != np.float32 or not w.flags.c_contiguous:
                raise TypeError("apply: weights must be C-contiguous float32 arrays (updated in place)")
            if g.shape != w.shape:
                raise ValueError(f"apply: gradient of shape {g.shape} for a weight of shape {w.shape}")
            pos = self._index.get(id(w))
            if pos is None:
                self._add_slots(w)
                pos = self._index[id(w)]
            self._update(w, np.ascontiguousarray(g, dtype=np.float32), self._slots[pos], lr)

    def _clipped(self, grads):
        if self.clipvalue is not None:
            grads = [None if g is None else np.clip(g, -self.clipvalue, self.clipvalue) for g in grads]
        if self.clipnorm is not None:
            grads = [None if g is None else g * (self.clipnorm / max(float(np.sqrt(np.sum(np.square(g, dtype=np.float64)))),
                                                                      self.clipnorm))
                     for g in grads]
        if self.global_clipnorm is not None:
            norm = math.sqrt(sum(float(np.sum(np.square(g, dtype=np.float64))) for g in grads if g is not None))
            scale = self.global_clipnorm / max(norm, self.global_clipnorm)
            grads = [None if g is None else g * scale for g in grads]
        return grads

    def get_config(self):
        config = {"name": self.name, "learning_rate": self._learning_rate}
        if self.decay:
            config["decay"] = self.decay
        for key in ("clipnorm", "clipvalue", "global_clipnorm"):
            if getattr(self, key) is not None:
                config[key] = getattr(self, key)
        return config

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.get_config().items())})"


class Adam(Optimizer):
    """Adam (Kingma & Ba) in Keras's form: `lr_t = lr·√(1−β2ᵗ)/(1−β1ᵗ)`, `w −= lr_t·m/(√v + ε)`."""

    _slot_count = 2

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, amsgrad=False, name="Adam",
                 **kwargs):
        super().__init__(learning_rate, name, **kwargs)
        self.beta_1 = _number(beta_1, "beta_1", "Adam", 0.0, 1.0, high_open=True)
        self.beta_2 = _number(beta_2, "beta_2", "Adam", 0.0, 1.0, high_open=True)
        self.epsilon = _number(epsilon, "epsilon", "Adam", low=0.0)
        if amsgrad:
            raise NotImplementedError("Adam: amsgrad=True is not supported by cnnlite's update kernel")
        self.amsgrad = False

    def _update(self, w, g, slots, lr):
        t = self.iterations
        lr_t = lr * math.sqrt(1.0 - self.beta_2 ** t) / (1.0 - self.beta_1 ** t)
        _kernels.adam_update(w, g, slots[0], slots[1], lr_t, self.beta_1, self.beta_2, self.epsilon)

    def get_config(self):
        config = super().get_config()
        config.update(beta_1=self.beta_1, beta_2=self.beta_2, epsilon=self.epsilon, amsgrad=self.amsgrad)
        return config


class SGD(Optimizer):
    """Gradient descent, optionally with momentum (`v = m·v − lr·g; w += v`) and Nesterov's variant."""

    def __init__(self, learning_rate=0.01, momentum=0.0, nesterov=False, name="SGD", **kwargs):
        super().__init__(learning_rate, name, **kwargs)
        self.momentum = _number(momentum, "momentum", "SGD", 0.0, 1.0)
        self.nesterov = check_bool(nesterov, "nesterov", "SGD")

    @property
    def _slot_count(self):
        return 1 if self.momentum > 0 else 0

    def _update(self, w, g, slots, lr):
        velocity = slots[0] if slots else None
        _kernels.sgd_update(w, g, velocity, lr, self.momentum, self.nesterov)

    def get_config(self):
        config = super().get_config()
        config.update(momentum=self.momentum, nesterov=self.nesterov)
        return config


class RMSprop(Optimizer):
    """RMSprop in tf.keras 2's form: `a = ρ·a + (1−ρ)·g²; w −= lr·g/√(a + ε)`."""

    _slot_count = 1

    def __init__(self, learning_rate=0.001, rho=0.9, momentum=0.0, epsilon=1e-7, centered=False, name="RMSprop",
                 **kwargs):
        super().__init__(learning_rate, name, **kwargs)
        self.rho = _number(rho, "rho", "RMSprop", 0.0, 1.0, high_open=True)
        self.epsilon = _number(epsilon, "epsilon", "RMSprop", low=0.0)
        if momentum != 0.0:
            raise NotImplementedError(f"RMSprop: momentum is not supported by cnnlite's update kernel, "
                                      f"received momentum={momentum!r}")
        if centered:
            raise NotImplementedError("RMSprop: centered=True is not supported by cnnlite's update kernel")
        self.momentum, self.centered = 0.0, False

    def _update(self, w, g, slots, lr):
        _kernels.rmsprop_update(w, g, slots[0], lr, self.rho, self.epsilon)

    def get_config(self):
        config = super().get_config()
        config.update(rho=self.rho, momentum=self.momentum, epsilon=self.epsilon, centered=self.centered)
        return config


REGISTRY = Registry("optimizer")
for _cls in (Adam, SGD, RMSprop):
    REGISTRY.register(_cls, aliases=(_cls.__name__.lower(),))


def serialize(optimizer):
    return REGISTRY.serialize(optimizer)


def deserialize(config):
    """The optimizer `serialize` described; `class_name` is a class name or, in any case, a Keras string name."""
    return REGISTRY.deserialize(config, shown="classes", fold_case=True)


def get(identifier):
    """'adam', 'sgd', 'rmsprop' (any case), a config dict, or an Optimizer instance."""
    if isinstance(identifier, Optimizer):
        return identifier
    if isinstance(identifier, str):
        return REGISTRY.get(identifier, which="aliases", label="Supported", fold_case=True)()
    if isinstance(identifier, dict):
        return deserialize(identifier)
    if isinstance(identifier, type) and issubclass(identifier, Optimizer):
        return identifier()
    raise ValueError(f"Could not interpret optimizer identifier: {identifier!r}. Use one of "
                     f"{REGISTRY.names('aliases')} or an instance of {REGISTRY.names('classes')}")
