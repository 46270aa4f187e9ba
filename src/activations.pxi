# Bindings for cpp/activations.h (see src/README.md for the contract).
cdef extern from "activations.h" namespace "cnnlite":
    void c_relu_forward "cnnlite::relu_forward"(float* y, const float* x, int64_t n) except + nogil
    void c_relu_backward "cnnlite::relu_backward"(float* dx, const float* dy, const float* y, int64_t n) except + nogil
    void c_sigmoid_forward "cnnlite::sigmoid_forward"(float* y, const float* x, int64_t n) except + nogil
    void c_sigmoid_backward "cnnlite::sigmoid_backward"(
        float* dx, const float* dy, const float* y, int64_t n) except + nogil
    void c_tanh_forward "cnnlite::tanh_forward"(float* y, const float* x, int64_t n) except + nogil
    void c_tanh_backward "cnnlite::tanh_backward"(float* dx, const float* dy, const float* y, int64_t n) except + nogil
    void c_softmax_forward "cnnlite::softmax_forward"(float* y, const float* x, int64_t rows, int64_t k) except + nogil
    void c_softmax_backward "cnnlite::softmax_backward"(
        float* dx, const float* dy, const float* y, int64_t rows, int64_t k) except + nogil

ctypedef void (*_unary_kernel)(float*, const float*, int64_t) except + nogil
ctypedef void (*_binary_kernel)(float*, const float*, const float*, int64_t) except + nogil


cdef object _activation_forward(_unary_kernel kernel, object x):
    _f32(x, "x", -1)
    y = np.empty_like(x)
    cdef float* yp = _fptr(y)
    cdef const float* xp = _fptr(x)
    cdef int64_t n = x.size
    c_sync_thread()
    with nogil:
        kernel(yp, xp, n)
    return y


cdef object _activation_backward(_binary_kernel kernel, object dy, object y):
    _f32(dy, "dy", -1)
    _f32(y, "y", -1)
    _same_shape(dy, "dy", y, "y")
    dx = np.empty_like(dy)
    cdef float* dxp = _fptr(dx)
    cdef const float* dyp = _fptr(dy)
    cdef const float* yp = _fptr(y)
    cdef int64_t n = dy.size
    c_sync_thread()
    with nogil:
        kernel(dxp, dyp, yp, n)
    return dx


def relu_forward(x):
    """y = max(x, 0), any shape."""
    return _activation_forward(c_relu_forward, x)


def relu_backward(dy, y):
    """dx = dy where the forward output y > 0, else 0."""
    return _activation_backward(c_relu_backward, dy, y)


def sigmoid_forward(x):
    """y = 1 / (1 + exp(-x)), any shape, stable for large |x|."""
    return _activation_forward(c_sigmoid_forward, x)


def sigmoid_backward(dy, y):
    """dx = dy * y * (1 - y) from the forward output y."""
    return _activation_backward(c_sigmoid_backward, dy, y)


def tanh_forward(x):
    """y = tanh(x), any shape."""
    return _activation_forward(c_tanh_forward, x)


def tanh_backward(dy, y):
    """dx = dy * (1 - y**2) from the forward output y."""
    return _activation_backward(c_tanh_backward, dy, y)


def softmax_forward(x):
    """Softmax over the last axis of a 2-D array (the row maximum is subtracted first)."""
    _f32(x, "x", 2)
    _positive(x.shape[1], "x.shape[1] (number of classes)")
    y = np.empty_like(x)
    cdef float* yp = _fptr(y)
    cdef const float* xp = _fptr(x)
    cdef int64_t rows = x.shape[0], k = x.shape[1]
    c_sync_thread()
    with nogil:
        c_softmax_forward(yp, xp, rows, k)
    return y


def softmax_backward(dy, y):
    """dx = y * (dy - sum(dy * y, axis=1)) from the forward output y (2-D)."""
    _f32(dy, "dy", 2)
    _f32(y, "y", 2)
    _same_shape(dy, "dy", y, "y")
    _positive(y.shape[1], "y.shape[1] (number of classes)")
    dx = np.empty_like(dy)
    cdef float* dxp = _fptr(dx)
    cdef const float* dyp = _fptr(dy)
    cdef const float* yp = _fptr(y)
    cdef int64_t rows = y.shape[0], k = y.shape[1]
    c_sync_thread()
    with nogil:
        c_softmax_backward(dxp, dyp, yp, rows, k)
    return dx
