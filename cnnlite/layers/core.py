"""Dense, Activation, Flatten, Dropout, InputLayer and Input."""
import math

import numpy as np

from cnnlite import _kernels, activations, initializers, mixed_precision
from cnnlite._validation import check_bool, check_nonneg_int, check_optional_seed, check_positive_int
from cnnlite.engine.plan import DenseGradient, DenseInput, Step, shard_partials
from cnnlite.layers.base import Layer, check_unsupported, _shape_tuple


def _flat2d(a, width):
    return a if a.ndim == 2 else a.reshape(-1, width)


class _Activated:
    """Mixin for layers ending in an activation (Dense, Conv2D, Activation).

    A ReLU runs inside the Dense/Conv2D kernels (`Step.relu_in_kernel`): fused into the forward store, and in
    backward the gradient kernel masks `dy` by the output itself — unless the plan folded that mask into the next
    max-pool (`Step.mask_relu` False). A softmax is left out when the plan hands it to the loss (`Step.logits`).
    """

    def _init_weighted(self, owner, activation, use_bias, kernel_initializer, bias_initializer, **unsupported):
        """The Keras arguments Dense and Conv2D share: activation, use_bias, the two initialisers, and the
        regularizers/constraints cnnlite accepts only as None."""
        self.activation = activations.get(activation)
        self.use_bias = check_bool(use_bias, "use_bias", owner)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        check_unsupported(owner, **unsupported)

    def _activated_step(self, input_shape, output_shape, algorithms, kernel_relu=True, params=None, notes=(),
                        precisions=None):
        relu = kernel_relu and self.activation is activations.relu
        if relu:
            epilogue = "bias+relu" if self.use_bias else "relu"
        else:
            epilogue = "bias" if getattr(self, "use_bias", False) else None
        return Step(self, input_shape, output_shape, algorithms, relu_in_kernel=relu, epilogue=epilogue,
                    ends_in_softmax=self.activation is activations.softmax, params=params, notes=notes,
                    precisions=precisions)

    def _activate(self, z, step):
        """(output, whether the activation was applied here)."""
        if step.relu_in_kernel:
            return z, True
        if step.logits:
            return z, False
        return self.activation(z), True

    def _deactivate(self, dy, y, applied, step):
        return self.activation.backward(dy, y) if applied and not step.relu_in_kernel else dy

    @staticmethod
    def _relu_gate(y, step):
        """The output to hand the backward kernel for its ReLU mask, or None when it must not mask."""
        return y if step.relu_in_kernel and step.mask_relu else None


class Dense(_Activated, Layer):
    """`y = activation(x @ kernel + bias)` on the last axis; kernel (in, units)."""

    def __init__(self, units, activation=None, use_bias=True, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", kernel_regularizer=None, bias_regularizer=None, activity_regularizer=None,
                 kernel_constraint=None, bias_constraint=None, **kwargs):
        if "input_dim" in kwargs:
            input_dim = kwargs.pop("input_dim")
            if "input_shape" not in kwargs and "batch_input_shape" not in kwargs:
                kwargs["input_shape"] = (check_positive_int(input_dim, "input_dim", "Dense"),)
        super().__init__(**kwargs)
        self.units = check_positive_int(units, "units", "Dense")
        self._init_weighted("Dense", activation, use_bias, kernel_initializer, bias_initializer,
                            kernel_regularizer=kernel_regularizer, bias_regularizer=bias_regularizer,
                            activity_regularizer=activity_regularizer, kernel_constraint=kernel_constraint,
                            bias_constraint=bias_constraint)

    def _check_input_shape(self, input_shape):
        if len(input_shape) < 2:
            raise self._incompatible(input_shape, "expected min_ndim=2, found ndim=%d" % len(input_shape))
        if input_shape[-1] is None:
            raise ValueError(f"The last dimension of the inputs to a Dense layer should be defined, "
                             f"found None (input shape {tuple(input_shape)})")
        if self.built and input_shape[-1] != self.kernel.shape[0]:
            raise self._incompatible(input_shape, f"expected axis -1 of input shape to have value "
                                                  f"{self.kernel.shape[0]}, but received input with shape")

    def build(self, input_shape):
        self.kernel = self.add_weight("kernel", (input_shape[-1], self.units), self.kernel_initializer)
        self.bias = self.add_weight("bias", (self.units,), self.bias_initializer) if self.use_bias else None
        super().build(input_shape)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.units,)

    def plan_step(self, input_shape, settings=None):
        """Three GEMMs, all three in bfloat16 (dense_bf16_*) under the mixed_bfloat16 policy. In float32 with at most
        `_kernels.skinny_gemm_max()` units at the avx512 ISA level, the two gradient GEMMs run the skinny kernels
        ('gemm skinny': vectorised across the long dimension, the same bits as 'gemm') unless the setting
        dense_algo is 'gemm'."""
        bf16 = self.compute_dtype == "bfloat16"
        settings = settings or {}
        isa = settings.get("isa") or _kernels.get_isa()
        grad = ("gemm skinny" if settings.get("dense_algo", "auto") == "auto" and not bf16 and isa == "avx512"
                and self.units <= _kernels.skinny_gemm_max() else "gemm")
        step = self._activated_step(input_shape, self.compute_output_shape(input_shape),
                                    {"forward": "gemm", "input_grad": grad, "weight_grad": grad},
                                    precisions=mixed_precision.pass_precisions(bf16, mixed_precision.PASSES))
        # Its product can run in the conv before a Flatten, and its dz and kernel stand in for its input gradient
        # (build_plan decides whether they do).
        step.can_take_conv_product = not bf16 and len(input_shape) == 2 and not step.relu_in_kernel
        step.can_defer_dx = grad == "gemm skinny" and len(input_shape) == 2 and not step.relu_in_kernel
        return step

    @staticmethod
    def _kernel(step, name):
        if step.precisions.get(name) == "bfloat16":
            return _kernels.dense_bf16_forward if name == "forward" else _kernels.dense_bf16_backward
        return _kernels.dense_forward if name == "forward" else _kernels.dense_backward

    @staticmethod
    def _algo(step, name):
        """The float32 kernels' `algo` argument of a gradient pass ({} for the bfloat16 ones, which have one)."""
        return {} if step.precisions.get(name) == "bfloat16" else {"algo": step.algorithms[name]}

    def forward(self, x, step, training=False, part=None):
        if step.product_from_previous_conv:  # a DenseInput: the conv before the Flatten ran the product
            x, z = x.y, x.z
            x2 = x
        else:
            x2 = _flat2d(x, self.kernel.shape[0])
            z = self._kernel(step, "forward")(x2, self.kernel, self.bias, relu=step.relu_in_kernel)
        y, applied = self._activate(z, step)
        out = y if x.ndim == 2 else y.reshape(x.shape[:-1] + (self.units,))
        return out, ((x2, y, applied, x.shape) if training else None)

    def backward(self, dy, cache, step, part=None):
        x2, y, applied, x_shape = cache
        dz = self._deactivate(_flat2d(dy, self.units), y, applied, step)
        gate = self._relu_gate(y, step)
        dx = None
        if step.dx_deferred:
            dx = DenseGradient(dz, self.kernel)
        elif step.need_dx:
            dx = self._kernel(step, "input_grad")(dz, x2, self.kernel, need_dx=True, need_db=False, need_dw=False,
                                                   y=gate, **self._algo(step, "input_grad"))[0]

        def shards(bounds):
            dw, db = _kernels.dense_backward_weights_shards(dz, x2, bounds, need_db=self.use_bias, y=gate,
                                                            precision=step.precisions["weight_grad"],
                                                            **self._algo(step, "weight_grad"))
            return [dw, db] if self.use_bias else [dw]

        samples = x_shape[0]
        grads = shard_partials(part, samples, self.weights, shards, len(x2) // samples if samples else 1)
        if dx is None or step.dx_deferred:
            return dx, grads
        return (dx if len(x_shape) == 2 else dx.reshape(x_shape)), grads

    def get_config(self):
        config = super().get_config()
        config.update(units=self.units, activation=activations.serialize(self.activation), use_bias=self.use_bias,
                      kernel_initializer=initializers.serialize(self.kernel_initializer),
                      bias_initializer=initializers.serialize(self.bias_initializer))
        return config


class Activation(_Activated, Layer):
    """Applies an activation function ('relu', 'sigmoid', 'tanh', 'softmax', 'linear')."""

    def __init__(self, activation, **kwargs):
        super().__init__(**kwargs)
        self.activation = activations.get(activation)

    def plan_step(self, input_shape, settings=None):
        return self._activated_step(input_shape, input_shape, None, kernel_relu=False)

    def forward(self, x, step, training=False, part=None):
        y, applied = self._activate(x, step)
        return y, ((y, applied) if training else None)

    def backward(self, dy, cache, step, part=None):
        y, applied = cache
        return (self._deactivate(dy, y, applied, step) if step.need_dx else None), []

    def get_config(self):
        config = super().get_config()
        config["activation"] = activations.serialize(self.activation)
        return config


class Flatten(Layer):
    """Reshapes (batch, d1, d2, ...) to (batch, d1·d2·...) (a view: the input is C-contiguous)."""

    def __init__(self, data_format=None, **kwargs):
        super().__init__(**kwargs)
        if data_format not in (None, "channels_last", "channels_first"):
            raise ValueError(f"Flatten: `data_format` must be 'channels_last' or 'channels_first', "
                             f"received data_format={data_format!r}")
        if data_format == "channels_first":
            raise NotImplementedError("Flatten: cnnlite uses channels_last only, received data_format='channels_first'")
        self.data_format = data_format

    def _check_input_shape(self, input_shape):
        if len(input_shape) < 2:
            raise self._incompatible(input_shape, "expected min_ndim=2, found ndim=%d" % len(input_shape))
        if any(d is None for d in input_shape[1:]):
            raise ValueError(f"Flatten needs fully defined input dimensions, received input shape "
                             f"{tuple(input_shape)}")

    def compute_output_shape(self, input_shape):
        return (input_shape[0], math.prod(input_shape[1:]))  # Python ints: np.prod wraps around silently

    def plan_step(self, input_shape, settings=None):
        step = super().plan_step(input_shape, settings)
        step.passes_through = True
        return step

    def forward(self, x, step, training=False, part=None):
        if step.carries_dense_input:  # a DenseInput for the Dense after: its y flattened
            y = x.y
            return DenseInput(y.reshape(y.shape[0], math.prod(y.shape[1:])), x.z), y.shape
        return x.reshape(x.shape[0], math.prod(x.shape[1:])), x.shape  # -1 cannot size an empty batch

    def backward(self, dy, cache, step, part=None):
        if step.carries_dense_gradient:  # a DenseGradient, for the conv before (it has no shape to restore)
            return dy, []
        return (dy.reshape(cache) if step.need_dx else None), []

    def get_config(self):
        config = super().get_config()
        config["data_format"] = self.data_format
        return config


class Dropout(Layer):
    """Sets a fraction `rate` of inputs to 0 during training and scales the rest by 1/(1 − rate).

    Masks come from a counter-based generator keyed by (seed, step): the seed is the layer's `seed`, or drawn from
    the model's generator when the model is built; `step` counts training calls.
    """

    def __init__(self, rate, noise_shape=None, seed=None, **kwargs):
        super().__init__(**kwargs)
        if isinstance(rate, bool) or not isinstance(rate, (int, float, np.number)) or not 0 <= rate < 1:
            raise ValueError(f"Invalid value received for argument `rate` of Dropout: expected a float value "
                             f"in [0, 1), received rate={rate!r}")
        seed = check_optional_seed(seed, "Dropout")
        self.rate = float(rate)
        self.noise_shape = None if noise_shape is None else tuple(noise_shape)
        self.seed = seed
        self._seed_value = self.seed
        self._step = 0

    def build(self, input_shape):
        if self._seed_value is None:
            self._seed_value = self._draw_seed()
        if self.noise_shape is not None and len(self.noise_shape) != len(input_shape):
            raise ValueError(f"Dropout: `noise_shape` must have the rank of the input {tuple(input_shape)}, "
                             f"received noise_shape={self.noise_shape}")
        super().build(input_shape)

    def _resolved_noise_shape(self, x):
        shape = tuple(d if n is None else n for n, d in zip(self.noise_shape, x.shape))
        if any(n != 1 and n != d for n, d in zip(shape, x.shape)):
            raise ValueError(f"Dropout: noise_shape {self.noise_shape} does not broadcast to input shape {x.shape}")
        return shape

    def forward(self, x, step, training=False, part=None):
        if not training or self.rate == 0.0:
            return x, None
        if self._seed_value is None:
            self._seed_value = self._draw_seed()
        self._step += 1
        row = part.offset if part is not None else 0  # masks are drawn by batch row, wherever the rows run
        if self.noise_shape is None:
            offset = row * (x.size // max(1, len(x)))
            return (_kernels.dropout_forward(x, self.rate, self._seed_value, self._step, offset),
                    ("elementwise", (self._step, offset)))
        noise = self._resolved_noise_shape(x)
        ones = np.ones(noise, np.float32)
        offset = row * (ones.size // noise[0]) if noise[0] == len(x) else 0
        mask = _kernels.dropout_forward(ones, self.rate, self._seed_value, self._step, offset)
        return np.multiply(x, mask, dtype=np.float32), ("broadcast", mask)

    def backward(self, dy, cache, step, part=None):
        if not step.need_dx:
            return None, []
        if cache is None:
            return dy, []
        kind, value = cache
        if kind == "elementwise":
            return _kernels.dropout_backward(dy, self.rate, self._seed_value, *value), []
        return np.multiply(dy, value, dtype=np.float32), []

    def get_rng_state(self):
        """`{"seed": int or None, "step": int}`: the mask seed (the layer's `seed`, or the one drawn from the model's
        generator when built; None until drawn) and the number of training calls so far. The next training call
        uses the mask keyed by (seed, step + 1)."""
        return {"seed": self._seed_value, "step": int(self._step)}

    def set_rng_state(self, state):
        """Put back a `get_rng_state()` result, so the following masks are those the original layer would draw.
        TypeError unless a dict; ValueError unless it holds exactly `seed` (None or a non-negative integer) and
        `step` (a non-negative integer). Nothing changes when it raises."""
        if not isinstance(state, dict):
            raise TypeError(f"Dropout {self.name!r}: set_rng_state expects a dict from get_rng_state(), "
                            f"received {type(state).__name__}")
        if set(state) != {"seed", "step"}:
            raise ValueError(f"Dropout {self.name!r}: set_rng_state expects the keys 'seed' and 'step', "
                             f"received {sorted(state)}")
        owner = f"Dropout {self.name!r}: set_rng_state"
        seed = check_optional_seed(state["seed"], owner)
        step = check_nonneg_int(state["step"], "step", owner)
        self._seed_value, self._step = seed, step

    def get_config(self):
        config = super().get_config()
        config.update(rate=self.rate, noise_shape=None if self.noise_shape is None else list(self.noise_shape),
                      seed=self.seed)
        return config


class InputLayer(Layer):
    """Declares the model's input shape (excluding the batch); passes its input through."""

    def __init__(self, input_shape=None, batch_size=None, dtype=None, name=None, shape=None, batch_shape=None,
                 **kwargs):
        for key in ("input_tensor", "sparse", "ragged", "type_spec"):
            if kwargs.get(key) not in (None, False):
                raise NotImplementedError(f"InputLayer: `{key}` is not supported by cnnlite, "
                                          f"received {key}={kwargs[key]!r}")
            kwargs.pop(key, None)
        if shape is not None and input_shape is not None:
            raise ValueError(f"InputLayer: pass `shape` or `input_shape`, not both (received shape={shape!r}, "
                             f"input_shape={input_shape!r})")
        input_shape = shape if shape is not None else input_shape
        batch_shape = kwargs.pop("batch_input_shape", batch_shape)
        if batch_shape is None and input_shape is None:
            raise ValueError("InputLayer needs `shape` (or `input_shape`, or `batch_shape`), received none of them")
        super().__init__(name=name, dtype=dtype, **kwargs)
        if batch_shape is not None:
            self._batch_input_shape = _shape_tuple(batch_shape, "batch_shape", "InputLayer")
        else:
            if batch_size is not None:
                batch_size = check_positive_int(batch_size, "batch_size", "InputLayer")
            self._batch_input_shape = (batch_size,) + _shape_tuple(input_shape, "shape", "InputLayer")
        if len(self._batch_input_shape) < 2:
            raise ValueError(f"InputLayer: the shape must have at least one dimension besides the batch, "
                             f"received {self._batch_input_shape}")

    def forward(self, x, step, training=False, part=None):
        return x, None

    def backward(self, dy, cache, step, part=None):
        return dy, []

    def get_config(self):
        return {"batch_input_shape": list(self._batch_input_shape), "dtype": "float32", "name": self.name}


class KerasTensor:
    """What `Input(...)` returns: a symbolic batch of the given shape, to put first in a Sequential model."""

    def __init__(self, input_layer):
        self._input_layer = input_layer
        self.shape = input_layer._batch_input_shape
        self.dtype = "float32"
        self.name = input_layer.name

    def __repr__(self):
        return f"<KerasTensor shape={self.shape}, dtype={self.dtype}, name={self.name}>"


def Input(shape=None, batch_size=None, name=None, dtype=None, batch_shape=None, **kwargs):
    """`Input(shape=(28, 28, 1))`: the input of a Sequential model (the batch dimension is left out of `shape`)."""
    if shape is None and batch_shape is None:
        raise ValueError("Please provide to Input a `shape` (or `batch_shape`) argument, received neither")
    return KerasTensor(InputLayer(shape=shape, batch_size=batch_size, name=name, dtype=dtype,
                                  batch_shape=batch_shape, **kwargs))
