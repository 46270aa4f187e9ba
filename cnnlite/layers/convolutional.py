"""Conv2D (NHWC input, kernel (kh, kw, in, out)), Keras semantics for strides and 'valid'/'same' padding."""
from cnnlite import _kernels, activations, initializers, mixed_precision
from cnnlite._shapes import normalize_padding, normalize_tuple, output_length, pads_2d
from cnnlite._validation import check_positive_int
from cnnlite.engine.plan import DenseInput, PooledOutput, shard_partials
from cnnlite.layers.base import Layer
from cnnlite.layers.core import _Activated


def check_channels_last(data_format, owner):
    if data_format not in (None, "channels_last", "channels_first"):
        raise ValueError(f"{owner}: `data_format` must be 'channels_last' or 'channels_first', "
                         f"received data_format={data_format!r}")
    if data_format == "channels_first":
        raise NotImplementedError(f"{owner}: cnnlite uses channels_last (NHWC) only, "
                                  f"received data_format='channels_first'")
    return data_format


def spatial_output_shape(layer, input_shape, window, strides, padding, channels):
    """(batch, oh, ow, channels), raising if a valid-padded window does not fit."""
    oh = output_length(input_shape[1], window[0], strides[0], padding)
    ow = output_length(input_shape[2], window[1], strides[1], padding)
    if (oh is not None and oh <= 0) or (ow is not None and ow <= 0):
        raise ValueError(f'One of the dimensions in the output of layer "{layer.name}" is <= 0: input shape '
                         f"{tuple(input_shape)} with window {window}, strides {strides} and padding '{padding}' "
                         f"gives ({oh}, {ow}). Increase the input size or use padding='same'")
    return (input_shape[0], oh, ow, channels)


class Conv2D(_Activated, Layer):
    """2-D convolution over NHWC batches: `y = activation(conv(x, kernel) + bias)`."""

    def __init__(self, filters, kernel_size, strides=(1, 1), padding="valid", data_format=None,
                 dilation_rate=(1, 1), groups=1, activation=None, use_bias=True, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", kernel_regularizer=None, bias_regularizer=None, activity_regularizer=None,
                 kernel_constraint=None, bias_constraint=None, **kwargs):
        super().__init__(**kwargs)
        self.filters = check_positive_int(filters, "filters", "Conv2D")
        self.kernel_size = normalize_tuple(kernel_size, 2, "kernel_size", "Conv2D")
        self.strides = normalize_tuple(strides, 2, "strides", "Conv2D")
        self.padding = normalize_padding(padding, "Conv2D")
        self.data_format = check_channels_last(data_format, "Conv2D")
        self.dilation_rate = normalize_tuple(dilation_rate, 2, "dilation_rate", "Conv2D")
        if self.dilation_rate != (1, 1):
            raise NotImplementedError(f"Conv2D: only dilation_rate=(1, 1) is supported, "
                                      f"received dilation_rate={dilation_rate!r}")
        if check_positive_int(groups, "groups", "Conv2D") != 1:
            raise NotImplementedError(f"Conv2D: only groups=1 is supported, received groups={groups!r}")
        self.groups = 1
        self._init_weighted("Conv2D", activation, use_bias, kernel_initializer, bias_initializer,
                            kernel_regularizer=kernel_regularizer, bias_regularizer=bias_regularizer,
                            activity_regularizer=activity_regularizer, kernel_constraint=kernel_constraint,
                            bias_constraint=bias_constraint)

    def _check_input_shape(self, input_shape):
        if len(input_shape) != 4:
            raise self._incompatible(input_shape, f"expected ndim=4 (batch, height, width, channels), "
                                                  f"found ndim={len(input_shape)}")
        if input_shape[-1] is None:
            raise ValueError(f"The channel dimension of the inputs to Conv2D should be defined, found None "
                             f"(input shape {tuple(input_shape)})")
        if self.built and input_shape[-1] != self.kernel.shape[2]:
            raise self._incompatible(input_shape, f"expected axis -1 of input shape to have value "
                                                  f"{self.kernel.shape[2]}")
        spatial_output_shape(self, input_shape, self.kernel_size, self.strides, self.padding, self.filters)

    def build(self, input_shape):
        kh, kw = self.kernel_size
        self.kernel = self.add_weight("kernel", (kh, kw, input_shape[-1], self.filters), self.kernel_initializer)
        self.bias = self.add_weight("bias", (self.filters,), self.bias_initializer) if self.use_bias else None
        super().build(input_shape)

    def compute_output_shape(self, input_shape):
        return spatial_output_shape(self, input_shape, self.kernel_size, self.strides, self.padding, self.filters)

    def plan_step(self, input_shape, settings=None):
        """The step with the kernel algorithm of each pass: the automatic choice, or `settings["conv_algo"]`
        where that algorithm applies to the pass (a note says where it does not)."""
        output_shape = self.compute_output_shape(input_shape)
        pads = pads_2d(input_shape[1], input_shape[2], *self.kernel_size, *self.strides, self.padding)
        forced = (settings or {}).get("conv_algo", "auto")
        geometry = ((1,) + tuple(input_shape[1:]), self.kernel.shape, *self.strides, *pads)
        algorithms, notes = {}, []
        for key, flags in (("forward", {}), ("input_grad", {"backward_input": True}),
                           ("weight_grad", {"backward_weights": True})):
            algo = _kernels.conv2d_algo(*geometry, **flags)
            if forced != "auto" and forced != algo:
                if _kernels.conv2d_algo_applies(forced, *geometry, **flags):
                    algo = forced
                else:
                    notes.append(f"forced {forced} does not apply to the {key.replace('_', ' ')}: {algo}")
            algorithms[key] = algo
        # Under mixed_bfloat16 the passes Winograd runs take bfloat16 operands in their products (the only
        # convolution with a bfloat16 kernel); the others stay float32, which a note says.
        precisions = None
        if self.compute_dtype == "bfloat16":
            precisions = mixed_precision.pass_precisions(
                True, [k for k in mixed_precision.PASSES if algorithms[k] == "winograd"])
            if algorithms["forward"] != "winograd":
                notes.append(f"float32 forward: no bfloat16 {algorithms['forward']} kernel")
        step = self._activated_step(input_shape, output_shape, algorithms, params={"pads": pads}, notes=notes,
                                    precisions=precisions)
        # The kernel can max-pool its 2x2 output tiles in its store (build_plan decides whether it does).
        pools = step.relu_in_kernel and _kernels.conv2d_maxpool_applies(*geometry[0], *geometry[1][:2],
                                                                          geometry[1][3], *geometry[2:])
        step.can_pool_in_store = pools and all(a == "winograd" for a in algorithms.values())
        # Or, with another forward, its gradient kernels can still take the pool's dy and argmax.
        step.can_take_pool_gradient = pools and algorithms["input_grad"] == algorithms["weight_grad"] == "winograd"
        # Its forward kernel can run the product of a Dense after the Flatten, and its weight-gradient kernel
        # compute dy from that Dense's dz (build_plan decides). The activation must be done inside the kernel.
        activated_in_kernel = step.relu_in_kernel or self.activation is activations.linear
        step.can_feed_dense = (algorithms["forward"] == "direct" and step.precisions["forward"] == "float32"
                               and activated_in_kernel)
        step.can_take_dense_dy = (algorithms["weight_grad"] == "direct"
                                  and step.precisions["weight_grad"] == "float32" and activated_in_kernel)
        return step

    def forward(self, x, step, training=False, part=None):
        pads = step.params["pads"]
        if step.pool_in_store:  # the next step's max-pool runs here: hand it the pooled output and argmax
            y, argmax = _kernels.conv2d_maxpool_forward(x, self.kernel, self.bias, *self.strides, *pads, relu=True,
                                                        precision=step.precisions["forward"])
            return PooledOutput(y, argmax), ((x, None, True) if training else None)
        if step.feeds_dense:  # the next Dense's product runs here, from the output just written
            dense = step.dense_after
            y, z = _kernels.conv2d_forward_dense(x, self.kernel, self.bias, *self.strides, *pads, dense.kernel,
                                                 dense.bias, relu=step.relu_in_kernel)
            return DenseInput(y, z), ((x, y, True) if training else None)
        z = _kernels.conv2d_forward(x, self.kernel, self.bias, *self.strides, *pads, relu=step.relu_in_kernel,
                                    algo=step.algorithms["forward"], precision=step.precisions["forward"])
        y, applied = self._activate(z, step)
        if step.pool_grad_in_kernels:  # the gradient kernels rebuild the gate from the pool's: y is not kept
            return y, ((x, None, True) if training else None)
        return y, ((x, y, applied) if training else None)

    def backward(self, dy, cache, step, part=None):
        if step.pool_in_store or step.pool_grad_in_kernels:
            return self._pooled_backward(dy, cache[0], step, part)
        if step.dy_from_dense:
            return self._backward_from_dense(dy, cache, step, part)
        x, y, applied = cache
        dz = self._deactivate(dy, y, applied, step)
        pads, gate = step.params["pads"], self._relu_gate(y, step)

        def shards(bounds):
            dw, db = _kernels.conv2d_backward_weights_shards(dz, x, *self.kernel_size, *self.strides, *pads, bounds,
                                                             need_db=self.use_bias, y=gate,
                                                             algo=step.algorithms["weight_grad"],
                                                             precision=step.precisions["weight_grad"])
            return [dw, db] if self.use_bias else [dw]

        grads = shard_partials(part, len(x), self.weights, shards)
        dx = None
        if step.need_dx:
            dx = _kernels.conv2d_backward_input(dz, self.kernel, x.shape[1], x.shape[2], *self.strides, *pads,
                                                y=gate, algo=step.algorithms["input_grad"],
                                                precision=step.precisions["input_grad"])
        return dx, grads

    def _backward_from_dense(self, dense, cache, step, part):
        """The weight gradients from the next Dense step's DenseGradient (dz, kernel): dy = dz @ kernel^T is formed
        inside the kernel. Only for a first layer (no input gradient)."""
        x, y, _ = cache
        pads, gate = step.params["pads"], self._relu_gate(y, step)

        def shards(bounds):
            dw, db = _kernels.conv2d_backward_weights_shards_from_dense(
                dense.dz, dense.kernel, x, *self.kernel_size, self.filters, *self.strides, *pads, bounds,
                need_db=self.use_bias, y=gate)
            return [dw, db] if self.use_bias else [dw]

        return None, shard_partials(part, len(x), self.weights, shards)

    def _pooled_backward(self, pooled, x, step, part):
        """The gradients from the next step's PooledGradient (dy, argmax, gate of the max-pool: in the store, or run
        after a forward that could not pool)."""
        pads = step.params["pads"]

        def shards(bounds):
            dw, db = _kernels.conv2d_maxpool_backward_weights_shards(
                pooled.dy, pooled.argmax, x, *self.kernel_size, *self.strides, *pads, bounds, need_db=self.use_bias,
                y=pooled.gate, precision=step.precisions["weight_grad"])
            return [dw, db] if self.use_bias else [dw]

        grads = shard_partials(part, len(x), self.weights, shards)
        dx = None
        if step.need_dx:
            dx = _kernels.conv2d_maxpool_backward_input(pooled.dy, pooled.argmax, self.kernel, x.shape[1], x.shape[2],
                                                        *self.strides, *pads, y=pooled.gate,
                                                        precision=step.precisions["input_grad"])
        return dx, grads

    def get_config(self):
        config = super().get_config()
        config.update(filters=self.filters, kernel_size=list(self.kernel_size), strides=list(self.strides),
                      padding=self.padding, data_format=self.data_format, dilation_rate=list(self.dilation_rate),
                      groups=self.groups, activation=activations.serialize(self.activation), use_bias=self.use_bias,
                      kernel_initializer=initializers.serialize(self.kernel_initializer),
                      bias_initializer=initializers.serialize(self.bias_initializer))
        return config


Convolution2D = Conv2D
