"""MaxPooling2D and AveragePooling2D over NHWC batches (Keras semantics; 'same' average excludes padding)."""
from cnnlite import _kernels
from cnnlite._shapes import normalize_padding, normalize_tuple, pads_2d
from cnnlite.layers.base import Layer
from cnnlite.layers.convolutional import check_channels_last, spatial_output_shape
from cnnlite.engine.plan import PooledGradient, Step


class _Pooling2D(Layer):
    def __init__(self, pool_size=(2, 2), strides=None, padding="valid", data_format=None, **kwargs):
        super().__init__(**kwargs)
        owner = type(self).__name__
        self.pool_size = normalize_tuple(pool_size, 2, "pool_size", owner)
        self.strides = self.pool_size if strides is None else normalize_tuple(strides, 2, "strides", owner)
        self.padding = normalize_padding(padding, owner)
        self.data_format = check_channels_last(data_format, owner)

    def _check_input_shape(self, input_shape):
        if len(input_shape) != 4:
            raise self._incompatible(input_shape, f"expected ndim=4 (batch, height, width, channels), "
                                                  f"found ndim={len(input_shape)}")
        spatial_output_shape(self, input_shape, self.pool_size, self.strides, self.padding, input_shape[3])

    def compute_output_shape(self, input_shape):
        return spatial_output_shape(self, input_shape, self.pool_size, self.strides, self.padding, input_shape[3])

    def plan_step(self, input_shape, settings=None):
        args = (*self.pool_size, *self.strides,
                *pads_2d(input_shape[1], input_shape[2], *self.pool_size, *self.strides, self.padding))
        window = "window {}x{}".format(*self.pool_size)
        step = Step(self, input_shape, self.compute_output_shape(input_shape),
                    {"forward": window, "input_grad": window, "weight_grad": None},
                    can_fold_relu=isinstance(self, MaxPooling2D), params={"window": args})
        step.takes_pool_store = isinstance(self, MaxPooling2D) and args == (2, 2, 2, 2, 0, 0, 0, 0)
        return step

    def get_config(self):
        config = super().get_config()
        config.update(pool_size=list(self.pool_size), strides=list(self.strides), padding=self.padding,
                      data_format=self.data_format)
        return config


class MaxPooling2D(_Pooling2D):
    """Maximum over each `pool_size` window (strides default to `pool_size`)."""

    def forward(self, x, step, training=False, part=None):
        if step.pooled_in_previous_store:  # x is the previous step's PooledOutput
            return x.y, ((x.argmax, x.y) if training else None)
        y, argmax = _kernels.maxpool2d_forward(x, *step.params["window"])
        if not training:
            return y, None
        # With the previous layer's ReLU folded in, backward routes gradient only where y > 0.
        return y, (argmax, x.shape[1], x.shape[2], y if step.fold_previous_relu else None)

    def backward(self, dy, cache, step, part=None):
        if not step.need_dx:
            return None, []
        if step.pooled_in_previous_store:  # the previous step's gradient kernels route dy themselves
            argmax, y = cache
            return PooledGradient(dy, argmax, y), []
        argmax, h, w, gate = cache
        if step.pool_grad_in_previous_kernels:  # the previous conv's gradient kernels route dy (and the ReLU cut)
            return PooledGradient(dy, argmax, gate), []
        return _kernels.maxpool2d_backward(dy, argmax, h, w, window=step.params["window"], y=gate), []


class AveragePooling2D(_Pooling2D):
    """Mean over each `pool_size` window; with 'same' padding the padded cells are not counted."""

    def forward(self, x, step, training=False, part=None):
        y = _kernels.avgpool2d_forward(x, *step.params["window"])
        return y, ((x.shape[1], x.shape[2]) if training else None)

    def backward(self, dy, cache, step, part=None):
        if not step.need_dx:
            return None, []
        h, w = cache
        return _kernels.avgpool2d_backward(dy, h, w, *step.params["window"]), []


MaxPool2D = MaxPooling2D
AvgPool2D = AveragePooling2D
