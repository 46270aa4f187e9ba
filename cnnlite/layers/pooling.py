"""MaxPooling2D and AveragePooling2D over NHWC batches (Keras semantics; 'same' average excludes padding)."""
from cnnlite import _kernels
from cnnlite._shapes import normalize_padding, normalize_tuple, pads_2d
from cnnlite.layers.base import Layer
from cnnlite.layers.convolutional import check_channels_last, spatial_output_shape
from cnnlite.layers.core import relu_producer_of


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

    def _window_args(self, x):
        return (*self.pool_size, *self.strides,
                *pads_2d(x.shape[1], x.shape[2], *self.pool_size, *self.strides, self.padding))

    def get_config(self):
        config = super().get_config()
        config.update(pool_size=list(self.pool_size), strides=list(self.strides), padding=self.padding,
                      data_format=self.data_format)
        return config


class MaxPooling2D(_Pooling2D):
    """Maximum over each `pool_size` window (strides default to `pool_size`)."""

    def forward(self, x, training=False, logits=False):
        args = self._window_args(x)
        y, argmax = _kernels.maxpool2d_forward(x, *args)
        # Input straight from a fused ReLU (Conv2D(..., activation='relu')): remember it, to fold that ReLU's
        # backward into this one (dy reaches only cells where y > 0) and spare the convolution a pass over its output.
        producer = relu_producer_of(x) if training else None
        self._cache = (argmax, x.shape[1], x.shape[2], args, (producer, x, y) if producer is not None else None)
        return y

    def backward(self, dy, need_dx=True):
        self.grads = []
        if not need_dx:
            return None
        argmax, h, w, args, relu_source = self._cache
        if relu_source is None:
            return _kernels.maxpool2d_backward(dy, argmax, h, w, window=args)
        producer, x, y = relu_source
        if producer._relu_output is not x:  # the producer ran forward again since: mask nothing here
            return _kernels.maxpool2d_backward(dy, argmax, h, w, window=args)
        dx = _kernels.maxpool2d_backward(dy, argmax, h, w, window=args, y=y)
        producer._accept_premasked(dx, x)
        return dx


class AveragePooling2D(_Pooling2D):
    """Mean over each `pool_size` window; with 'same' padding the padded cells are not counted."""

    def forward(self, x, training=False, logits=False):
        args = self._window_args(x)
        self._cache = (x.shape[1], x.shape[2], args)
        return _kernels.avgpool2d_forward(x, *args)

    def backward(self, dy, need_dx=True):
        self.grads = []
        if not need_dx:
            return None
        h, w, args = self._cache
        return _kernels.avgpool2d_backward(dy, h, w, *args)


MaxPool2D = MaxPooling2D
AvgPool2D = AveragePooling2D
