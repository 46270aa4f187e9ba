# Bindings for cpp/pool2d.h (see src/README.md for the contract).
cdef extern from "pool2d.h" namespace "cnnlite":
    cdef cppclass Pool2dGeometry "cnnlite::Pool2dGeometry":
        int64_t n, h, w, c, ph, pw, sh, sw, pad_top, pad_bottom, pad_left, pad_right
    void c_maxpool2d_forward "cnnlite::maxpool2d_forward"(
        float* y, int32_t* argmax, const float* x, const Pool2dGeometry& g) except + nogil
    void c_maxpool2d_backward "cnnlite::maxpool2d_backward"(
        float* dx, const float* dy, const int32_t* argmax, int64_t n, int64_t h, int64_t w, int64_t oh, int64_t ow,
        int64_t c, const float* relu_y) except + nogil
    void c_maxpool2d_backward_geometry "cnnlite::maxpool2d_backward"(
        float* dx, const float* dy, const int32_t* argmax, const Pool2dGeometry& g, const float* relu_y) except + nogil
    void c_avgpool2d_forward "cnnlite::avgpool2d_forward"(float* y, const float* x, const Pool2dGeometry& g) except + nogil
    void c_avgpool2d_backward "cnnlite::avgpool2d_backward"(
        float* dx, const float* dy, const Pool2dGeometry& g) except + nogil


cdef object _int32_array(object arr, str name):
    if not isinstance(arr, np.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray of int32, got {type(arr).__name__}")
    if arr.dtype != np.int32:
        raise TypeError(f"{name} must have dtype int32, got {arr.dtype}")
    if not arr.flags.c_contiguous:
        raise ValueError(f"{name} must be C-contiguous (use numpy.ascontiguousarray), got strides {arr.strides}")
    return arr


cdef int64_t _int_arg(object v, str name, int64_t minimum) except? -1:
    """An integer argument (Python or NumPy int, not bool) that must be >= minimum (and <= MAX_EXTENT)."""
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {type(v).__name__} {v!r}")
    if v < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {v}")
    if v > MAX_EXTENT:
        raise ValueError(f"{name} must be an int <= {MAX_EXTENT}, got {v}")
    return <int64_t> v


cdef Pool2dGeometry _pool_geometry(tuple in_shape, ph, pw, sh, sw, pad_top, pad_bottom, pad_left, pad_right) except *:
    """Validated pooling geometry for an (n, h, w, c) input; raises ValueError naming the offending arguments."""
    cdef Pool2dGeometry g
    g.n = in_shape[0]
    g.h = _positive(in_shape[1], "input height")
    g.w = _positive(in_shape[2], "input width")
    g.c = _positive(in_shape[3], "channels")
    g.ph = _int_arg(ph, "ph", 1)
    g.pw = _int_arg(pw, "pw", 1)
    g.sh = _int_arg(sh, "sh", 1)
    g.sw = _int_arg(sw, "sw", 1)
    g.pad_top = _int_arg(pad_top, "pad_top", 0)
    g.pad_bottom = _int_arg(pad_bottom, "pad_bottom", 0)
    g.pad_left = _int_arg(pad_left, "pad_left", 0)
    g.pad_right = _int_arg(pad_right, "pad_right", 0)
    for pad, pad_name, pool, pool_name in ((g.pad_top, "pad_top", g.ph, "ph"), (g.pad_bottom, "pad_bottom", g.ph, "ph"),
                                           (g.pad_left, "pad_left", g.pw, "pw"), (g.pad_right, "pad_right", g.pw, "pw")):
        if pad >= pool:
            raise ValueError(f"{pad_name} ({pad}) must be smaller than the pool size {pool_name} ({pool}), "
                             f"or some windows would hold only padding")
    if (g.h + g.pad_top + g.pad_bottom - g.ph) // g.sh + 1 <= 0:
        raise ValueError(f"output height (h + pad_top + pad_bottom - ph)//sh + 1 = ({g.h} + {g.pad_top} + "
                         f"{g.pad_bottom} - {g.ph})//{g.sh} + 1 must be positive")
    if (g.w + g.pad_left + g.pad_right - g.pw) // g.sw + 1 <= 0:
        raise ValueError(f"output width (w + pad_left + pad_right - pw)//sw + 1 = ({g.w} + {g.pad_left} + "
                         f"{g.pad_right} - {g.pw})//{g.sw} + 1 must be positive")
    return g


cdef tuple _pool_out_shape(Pool2dGeometry& g):
    return (g.n, (g.h + g.pad_top + g.pad_bottom - g.ph) // g.sh + 1,
            (g.w + g.pad_left + g.pad_right - g.pw) // g.sw + 1, g.c)


def maxpool2d_forward(x, ph, pw, sh, sw, pad_top, pad_bottom, pad_left, pad_right):
    """Max pooling of x (n, h, w, c) -> (y, argmax), both (n, oh, ow, c); argmax int32 holds the flat h*w index of
    each maximum inside its image/channel plane (padded cells never win; ties go to the first in row-major order)."""
    _f32(x, "x", 4)
    cdef Pool2dGeometry g = _pool_geometry(x.shape, ph, pw, sh, sw, pad_top, pad_bottom, pad_left, pad_right)
    out_shape = _pool_out_shape(g)
    y = np.empty(out_shape, dtype=np.float32)
    argmax = np.empty(out_shape, dtype=np.int32)
    cdef float* yp = _fptr(y)
    cdef int32_t* ap = <int32_t*> cnp.PyArray_DATA(argmax)
    cdef const float* xp = _fptr(x)
    c_sync_thread()
    with nogil:
        c_maxpool2d_forward(yp, ap, xp, g)
    return y, argmax


def maxpool2d_backward(dy, argmax, h, w, window=None, y=None):
    """Gradient of max pooling: dx (n, h, w, c), dy routed to the argmax cells (overlapping windows accumulate).
    window: optionally the forward's (ph, pw, sh, sw, pad_top, pad_bottom, pad_left, pad_right); with it,
    non-overlapping windows write dx in one pass (same result) and an argmax outside its window is an error.
    y: optionally the pooling's output when its input was a ReLU's output: dy then reaches only cells where y > 0,
    i.e. dx also carries that ReLU's backward."""
    _f32(dy, "dy", 4)
    _int32_array(argmax, "argmax")
    _same_shape(argmax, "argmax", dy, "dy")
    if y is not None:
        _f32(y, "y", 4)
        _same_shape(y, "y", dy, "dy")
    cdef int64_t ih = _int_arg(h, "h", 1), iw = _int_arg(w, "w", 1)
    cdef int64_t n = dy.shape[0], oh = _positive(dy.shape[1], "dy height"), ow = _positive(dy.shape[2], "dy width")
    cdef int64_t c = _positive(dy.shape[3], "dy channels")
    cdef Pool2dGeometry g
    if window is not None:
        if not isinstance(window, tuple) or len(window) != 8:
            raise TypeError(f"window must be None or a tuple (ph, pw, sh, sw, pad_top, pad_bottom, pad_left, "
                            f"pad_right), got {window!r}")
        g = _pool_geometry((n, ih, iw, c), window[0], window[1], window[2], window[3], window[4], window[5],
                           window[6], window[7])
        if _pool_out_shape(g) != tuple(dy.shape):
            raise ValueError(f"dy must have shape {_pool_out_shape(g)} (the pooling of an (n, h, w, c) = "
                             f"{(n, ih, iw, c)} input with window {window}), got {dy.shape}")
    dx = np.empty((n, ih, iw, c), dtype=np.float32)
    cdef float* dxp = _fptr(dx)
    cdef const float* dyp = _fptr(dy)
    cdef const int32_t* ap = <int32_t*> cnp.PyArray_DATA(argmax)
    cdef const float* yp = _fptr_or_null(y)
    if window is not None:
        c_sync_thread()
        with nogil:
            c_maxpool2d_backward_geometry(dxp, dyp, ap, g, yp)
    else:
        c_sync_thread()
        with nogil:
            c_maxpool2d_backward(dxp, dyp, ap, n, ih, iw, oh, ow, c, yp)
    return dx


def avgpool2d_forward(x, ph, pw, sh, sw, pad_top, pad_bottom, pad_left, pad_right):
    """Average pooling of x (n, h, w, c) -> y (n, oh, ow, c); padded cells are excluded from each mean (Keras)."""
    _f32(x, "x", 4)
    cdef Pool2dGeometry g = _pool_geometry(x.shape, ph, pw, sh, sw, pad_top, pad_bottom, pad_left, pad_right)
    y = np.empty(_pool_out_shape(g), dtype=np.float32)
    cdef float* yp = _fptr(y)
    cdef const float* xp = _fptr(x)
    c_sync_thread()
    with nogil:
        c_avgpool2d_forward(yp, xp, g)
    return y


def avgpool2d_backward(dy, h, w, ph, pw, sh, sw, pad_top, pad_bottom, pad_left, pad_right):
    """Gradient of average pooling: dx (n, h, w, c)."""
    _f32(dy, "dy", 4)
    cdef Pool2dGeometry g = _pool_geometry((dy.shape[0], _int_arg(h, "h", 1), _int_arg(w, "w", 1), dy.shape[3]), ph, pw, sh, sw,
                                           pad_top, pad_bottom, pad_left, pad_right)
    _expect_shape(dy, "dy", _pool_out_shape(g))
    dx = np.empty((g.n, g.h, g.w, g.c), dtype=np.float32)
    cdef float* dxp = _fptr(dx)
    cdef const float* dyp = _fptr(dy)
    c_sync_thread()
    with nogil:
        c_avgpool2d_backward(dxp, dyp, g)
    return dx
