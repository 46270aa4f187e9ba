"""The Layer base class: naming, construction keywords, weights, build and the engine's step protocol.

A layer takes part in a model's execution plan (cnnlite/engine/plan.py) through three methods:
`plan_step(input_shape, settings)` returns its `Step` (the algorithm of each pass, what its kernel fuses);
`forward(x, step, training)` takes a C-contiguous float32 batch, calls one kernel per op and returns
`(y, cache)`, the cache being what `backward` needs (None when not training); `backward(dy, cache, step)` returns
`(dx or None, grads)` with `grads` in `get_weights()` order. Nothing of a call is kept on the layer, so one layer
may run in several calls at once. Calling a layer eagerly (`layer(x)`) runs it as a one-step plan.
"""
import collections
import math
import re

import numpy as np

from cnnlite import initializers
from cnnlite.mixed_precision import layer_policy
from cnnlite._validation import check_bool, check_positive_int, is_int
from cnnlite.engine.plan import Step

_NAME_UIDS = collections.defaultdict(int)


def _snake_case(name):
    name = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower()


def unique_name(base):
    """'dense', 'dense_1', 'dense_2', ... (per process, as Keras)."""
    count = _NAME_UIDS[base]
    _NAME_UIDS[base] += 1
    return base if count == 0 else f"{base}_{count}"


def check_unsupported(owner, **kwargs):
    """Keras arguments cnnlite accepts only at their defaults (regularizers, constraints, ...)."""
    for key, value in kwargs.items():
        if value is not None:
            raise NotImplementedError(f"{owner}: `{key}` is not supported by cnnlite, received {key}={value!r} "
                                      f"(only None)")


def _shape_tuple(shape, name, owner):
    try:
        items = tuple(shape)
    except TypeError:
        raise ValueError(f"{owner}: `{name}` must be a tuple of positive ints, received {name}={shape!r}") from None
    for v in items:
        if v is not None and (not is_int(v) or v <= 0):
            raise ValueError(f"{owner}: `{name}` must be a tuple of positive ints (or None), "
                             f"received {name}={shape!r}")
    return tuple(None if v is None else int(v) for v in items)


class Layer:
    """Base layer. Subclasses define `build`, `compute_output_shape`, `forward`, `backward` and `get_config`."""

    # Keras's Layer keywords accepted by every layer.
    _BASE_KWARGS = ("input_shape", "batch_input_shape", "batch_size", "weights")

    def __init__(self, trainable=True, name=None, dtype=None, **kwargs):
        cls_name = type(self).__name__
        for key in kwargs:
            if key not in self._BASE_KWARGS:
                raise TypeError(f"{cls_name}: keyword argument not understood: {key!r}")
        if name is not None and (not isinstance(name, str) or not name):
            raise ValueError(f"{cls_name}: `name` must be a non-empty string, received name={name!r}")
        self._dtype_policy = layer_policy(dtype, cls_name)
        self.name = name if name is not None else unique_name(_snake_case(cls_name))
        self.trainable = check_bool(trainable, "trainable", cls_name)
        self.built = False
        self._weights = []          # live float32 arrays, kernel then bias
        self._weight_names = []
        self._rng = None            # the model's initialiser generator while it builds this layer
        self._build_input_shape = None
        self._initial_weights = kwargs.get("weights")
        self._batch_input_shape = None
        if kwargs.get("batch_input_shape") is not None:
            self._batch_input_shape = _shape_tuple(kwargs["batch_input_shape"], "batch_input_shape", cls_name)
        elif kwargs.get("input_shape") is not None:
            batch = kwargs.get("batch_size")
            if batch is not None:
                batch = check_positive_int(batch, "batch_size", cls_name)
            self._batch_input_shape = (batch,) + _shape_tuple(kwargs["input_shape"], "input_shape", cls_name)
        if self._batch_input_shape is not None and len(self._batch_input_shape) < 2:
            raise ValueError(f"{cls_name}: the input shape must have at least one dimension besides the batch, "
                             f"received batch_input_shape={self._batch_input_shape}")

    # ----- shapes and building -------------------------------------------------------------------------------
    def build(self, input_shape):
        """Create the weights for `input_shape` (batch dimension first, may be None). Subclasses call super()."""
        self._build_input_shape = tuple(input_shape)
        self.built = True

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def _check_input_shape(self, input_shape):
        """Raise ValueError if this layer cannot take `input_shape` (subclasses override)."""

    def _incompatible(self, input_shape, expected):
        return ValueError(f'Input 0 of layer "{self.name}" is incompatible with the layer: {expected}. '
                          f"Full shape received: {tuple(input_shape)}")

    def _build_for(self, input_shape, rng=None):
        """Validate `input_shape`, build once (weights drawn from `rng`) and return the output shape."""
        input_shape = tuple(input_shape)
        self._check_input_shape(input_shape)
        if self.built:
            if self._build_input_shape is not None and \
                    tuple(self._build_input_shape[1:]) != tuple(input_shape[1:]):
                raise self._incompatible(input_shape, f"it was built for input shape {self._build_input_shape}")
        else:
            self._rng = rng
            try:
                self.build(input_shape)
            finally:
                self._rng = None
            self._build_input_shape = input_shape
            self.built = True
            if self._initial_weights is not None:
                self.set_weights(self._initial_weights)
                self._initial_weights = None
        return self.compute_output_shape(input_shape)

    @property
    def input_shape(self):
        if self._build_input_shape is None:
            if self._batch_input_shape is not None:
                return self._batch_input_shape
            raise AttributeError(f"The layer {self.name!r} has never been built, so it has no defined input shape")
        return self._build_input_shape

    @property
    def output_shape(self):
        if self._build_input_shape is None:
            raise AttributeError(f"The layer {self.name!r} has never been built, so it has no defined output shape")
        return self.compute_output_shape(self._build_input_shape)

    # ----- weights ----------------------------------------------------------------------------------------------
    def add_weight(self, name, shape, initializer="glorot_uniform", trainable=True):
        """Create a float32 weight (drawn from the model's generator when building inside a model)."""
        shape = tuple(int(d) for d in shape)
        count = math.prod(shape)
        if count * 8 > np.iinfo(np.intp).max:  # 8: initialisers draw in float64 before casting
            raise ValueError(f"Layer {self.name!r}: weight {name!r} of shape {shape} has {count} elements, more than "
                             f"this machine can address; use fewer units/filters or a smaller input")
        try:
            values = initializers.get(initializer)(shape, rng=self._rng)
        except MemoryError:
            raise MemoryError(f"Layer {self.name!r}: cannot allocate weight {name!r} of shape {shape} "
                              f"({count * 4 / 2**30:.1f} GiB of float32); use fewer units/filters or a smaller "
                              f"input") from None
        self._weights.append(values)
        self._weight_names.append(name)
        return values

    def _draw_seed(self):
        """A seed for this layer's own randomness: from the model's generator, else NumPy's global RNG."""
        if self._rng is not None:
            return int(self._rng.integers(0, 2**31 - 1))
        return int(np.random.randint(0, 2**31 - 1))

    @property
    def weights(self):
        return list(self._weights)

    @property
    def weight_names(self):
        """The names `add_weight` gave this layer's weights, in `get_weights()` order (e.g. ["kernel", "bias"];
        Keras's legacy HDF5 files name datasets with them)."""
        return list(self._weight_names)

    @property
    def trainable_weights(self):
        return list(self._weights) if self.trainable else []

    @property
    def non_trainable_weights(self):
        return [] if self.trainable else list(self._weights)

    def get_weights(self):
        return [w.copy() for w in self._weights]

    def set_weights(self, weights):
        """Copy `weights` (kernel then bias, any numeric dtype) into this layer's arrays after checking shapes."""
        if isinstance(weights, np.ndarray) or not isinstance(weights, (list, tuple)):
            raise TypeError(f"Layer {self.name!r}: set_weights expects a list of arrays, "
                            f"received {type(weights).__name__}")
        if len(weights) != len(self._weights):
            raise ValueError(f"You called `set_weights(weights)` on layer {self.name!r} with a weight list of length "
                             f"{len(weights)}, but the layer was expecting {len(self._weights)} weights"
                             + ("" if self.built else " (it is not built yet)"))
        arrays = []
        for i, (own, new) in enumerate(zip(self._weights, weights)):
            try:
                arr = np.asarray(new, dtype=np.float32)
            except (TypeError, ValueError):
                raise TypeError(f"Layer {self.name!r}: weight {i} ({self._weight_names[i]}) must be a numeric array, "
                                f"received {type(new).__name__}") from None
            if arr.shape != own.shape:
                raise ValueError(f"Layer {self.name!r} weight shape {own.shape} is not compatible with provided "
                                 f"weight shape {arr.shape} (weight {i}, {self._weight_names[i]})")
            arrays.append(arr)
        for own, arr in zip(self._weights, arrays):
            np.copyto(own, arr)  # in place: optimizers and models keep references to these arrays

    def count_params(self):
        if not self.built:
            raise ValueError(f"You tried to call `count_params` on layer {self.name!r}, but the layer isn't built. "
                             f"You can build it manually via: `layer.build(batch_input_shape)`")
        return int(sum(w.size for w in self._weights))

    # ----- random state -----------------------------------------------------------------------------------------
    def get_rng_state(self):
        """The layer's own random state that decides how it trains from here on, as a JSON-able dict, or None for a
        layer without randomness (the default; Dropout returns `{"seed": ..., "step": ...}`). Weights are not part
        of it (`get_weights`)."""
        return None

    def set_rng_state(self, state):
        """Put back a `get_rng_state()` result. A layer without randomness accepts only None (ValueError else)."""
        if state is not None:
            raise ValueError(f"Layer {self.name!r} ({type(self).__name__}) has no random state, so set_rng_state "
                             f"takes only None, received {state!r}")

    # ----- running ----------------------------------------------------------------------------------------------
    def plan_step(self, input_shape, settings=None):
        """This layer's Step for batches of `input_shape` (subclasses with kernels say which they run)."""
        return Step(self, input_shape, self.compute_output_shape(input_shape))

    def forward(self, x, step, training=False, part=None):
        """(y, cache) for batch `x` as `step` says; cache is None when not training. `part` (a BatchPart, when
        training) says which rows of the batch x holds: randomness is drawn by batch row."""
        raise NotImplementedError

    def backward(self, dy, cache, step, part=None):
        """(dx or None when step.need_dx is False, grads in get_weights() order) from forward's cache. Each grad is
        an array (shards, *weight.shape): one partial per reduction shard of `part` (one for all rows when part is
        None), which the plan adds in shard order."""
        raise NotImplementedError

    def __call__(self, inputs, training=False):
        """Run the layer eagerly on a NumPy batch (built on first use); returns a float32 array."""
        if hasattr(inputs, "_input_layer"):
            raise TypeError("cnnlite supports Sequential models only: pass the Input to Sequential([...]) "
                            "instead of calling a layer on it")
        x = np.ascontiguousarray(inputs, dtype=np.float32)
        if x.ndim < 1:
            raise ValueError(f"Layer {self.name!r} expects a batch of inputs, received a scalar")
        input_shape = (None,) + x.shape[1:]
        self._build_for(input_shape)
        return self.forward(x, self.plan_step(input_shape), training=bool(training))[0]

    # ----- configuration ----------------------------------------------------------------------------------------
    @property
    def dtype_policy(self):
        """The layer's mixed-precision Policy (cnnlite.mixed_precision), fixed when it was constructed."""
        return self._dtype_policy

    @property
    def compute_dtype(self):
        """'float32', or 'bfloat16' under the mixed_bfloat16 policy (the operands of its products)."""
        return self._dtype_policy.compute_dtype

    @property
    def variable_dtype(self):
        """'float32': weights are float32 under every policy."""
        return self._dtype_policy.variable_dtype

    @property
    def dtype(self):
        """The dtype of the layer's weights, as Keras's `layer.dtype`: 'float32'."""
        return self._dtype_policy.variable_dtype

    def get_config(self):
        config = {"name": self.name, "trainable": self.trainable, "dtype": self._dtype_policy.name}
        if self._batch_input_shape is not None:
            config["batch_input_shape"] = list(self._batch_input_shape)
        return config

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        return f"<{type(self).__name__} name={self.name!r} built={self.built}>"
