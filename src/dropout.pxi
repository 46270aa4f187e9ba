# Bindings for cpp/dropout.h (see src/README.md for the contract).
cdef extern from "dropout.h" namespace "cnnlite":
    void c_dropout_forward "cnnlite::dropout_forward"(
        float* y, const float* x, int64_t n, double rate, uint64_t seed, uint64_t step, uint64_t offset) except + nogil
    void c_dropout_backward "cnnlite::dropout_backward"(
        float* dx, const float* dy, int64_t n, double rate, uint64_t seed, uint64_t step,
        uint64_t offset) except + nogil


cdef double _dropout_rate(object rate) except? -1.0:
    if isinstance(rate, bool) or not isinstance(rate, (int, float, np.integer, np.floating)):
        raise TypeError(f"rate must be a float in [0, 1), got {type(rate).__name__} {rate!r}")
    cdef double r = float(rate)
    if not (0.0 <= r < 1.0):
        raise ValueError(f"rate must be in [0, 1), got {rate!r}")
    return r


cdef uint64_t _uint64_arg(object v, str name) except? 0:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
        raise TypeError(f"{name} must be an int in [0, 2**64), got {type(v).__name__} {v!r}")
    if not (0 <= v < 2 ** 64):
        raise ValueError(f"{name} must be an int in [0, 2**64), got {v}")
    return <uint64_t> int(v)


def dropout_forward(x, rate, seed, step, offset=0):
    """y = x * mask / (1 - rate), any shape; the mask is a function of (seed, step, element index) only, the index
    of x's first element being `offset` (a process holding later rows of a batch passes their position)."""
    _f32(x, "x", -1)
    cdef double r = _dropout_rate(rate)
    cdef uint64_t s = _uint64_arg(seed, "seed"), t = _uint64_arg(step, "step"), o = _uint64_arg(offset, "offset")
    y = np.empty_like(x)
    cdef float* yp = _fptr(y)
    cdef const float* xp = _fptr(x)
    cdef int64_t n = x.size
    c_sync_thread()
    with nogil:
        c_dropout_forward(yp, xp, n, r, s, t, o)
    return y


def dropout_backward(dy, rate, seed, step, offset=0):
    """dx = dy * mask / (1 - rate) with the mask of dropout_forward(., rate, seed, step, offset)."""
    _f32(dy, "dy", -1)
    cdef double r = _dropout_rate(rate)
    cdef uint64_t s = _uint64_arg(seed, "seed"), t = _uint64_arg(step, "step"), o = _uint64_arg(offset, "offset")
    dx = np.empty_like(dy)
    cdef float* dxp = _fptr(dx)
    cdef const float* dyp = _fptr(dy)
    cdef int64_t n = dy.size
    c_sync_thread()
    with nogil:
        c_dropout_backward(dxp, dyp, n, r, s, t, o)
    return dx
