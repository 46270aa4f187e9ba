# Bindings for cpp/conv2d.h (see src/README.md for the contract).
cdef extern from "conv2d.h" namespace "cnnlite":
    void c_conv2d_forward "cnnlite::conv2d_forward"(
        float* y, const float* x, const float* k, const float* bias, int64_t n, int64_t h, int64_t w, int64_t cin,
        int64_t kh, int64_t kw, int64_t cout, int64_t sh, int64_t sw, int64_t pt, int64_t pb, int64_t pl,
        int64_t pr, bint relu) except + nogil
    void c_conv2d_backward "cnnlite::conv2d_backward"(
        float* dx, float* dk, float* dbias, const float* dy, const float* x, const float* k, int64_t n, int64_t h,
        int64_t w, int64_t cin, int64_t kh, int64_t kw, int64_t cout, int64_t sh, int64_t sw, int64_t pt,
        int64_t pb, int64_t pl, int64_t pr, const float* relu_y) except + nogil


cdef tuple _conv2d_check(object x, object w, object b, object sh, object sw, object pad_top, object pad_bottom,
                         object pad_left, object pad_right):
    """Check x (n, h, w, cin), w (kh, kw, cin, cout), b (cout) or None, strides and pads; return the sizes."""
    _f32(x, "x", 4)
    _f32(w, "w", 4)
    if b is not None:
        _f32(b, "b", 1)
        _expect_shape(b, "b", (w.shape[3],))
    if x.shape[1] == 0 or x.shape[2] == 0 or x.shape[3] == 0:
        raise ValueError(f"x must have non-zero height, width and channels, got shape {x.shape}")
    if w.shape[0] == 0 or w.shape[1] == 0 or w.shape[3] == 0:
        raise ValueError(f"w must have non-zero (kh, kw, cin, cout), got shape {w.shape}")
    if x.shape[3] != w.shape[2]:
        raise ValueError(f"x has {x.shape[3]} channels (shape {x.shape}) but w expects {w.shape[2]} "
                         f"(shape {w.shape}, layout (kh, kw, cin, cout))")
    cdef int64_t s_h = _positive(sh, "sh"), s_w = _positive(sw, "sw")
    cdef int64_t pt = _nonneg(pad_top, "pad_top"), pb = _nonneg(pad_bottom, "pad_bottom")
    cdef int64_t pl = _nonneg(pad_left, "pad_left"), pr = _nonneg(pad_right, "pad_right")
    cdef int64_t h = x.shape[1], wd = x.shape[2], kh = w.shape[0], kw = w.shape[1]
    # Python ints: no overflow whatever the (already bounded) arguments; the kernel rejects oversized geometries.
    oh = (<object> h + pt + pb - kh) // s_h + 1
    ow = (<object> wd + pl + pr - kw) // s_w + 1
    if oh <= 0:
        raise ValueError(f"kernel height kh={kh} exceeds the padded input height h + pad_top + pad_bottom = "
                         f"{h} + {pt} + {pb}: output height would be {oh}")
    if ow <= 0:
        raise ValueError(f"kernel width kw={kw} exceeds the padded input width w + pad_left + pad_right = "
                         f"{wd} + {pl} + {pr}: output width would be {ow}")
    return (x.shape[0], h, wd, x.shape[3], kh, kw, w.shape[3], s_h, s_w, pt, pb, pl, pr, oh, ow)


def conv2d_forward(x, w, b, sh, sw, pad_top, pad_bottom, pad_left, pad_right, relu=False):
    """y (n, oh, ow, cout) = conv(x (n, h, w, cin), w (kh, kw, cin, cout)) + b, then max(y, 0) if relu;
    oh = (h + pt + pb - kh)//sh + 1."""
    cdef int64_t n, h, wd, cin, kh, kw, cout, s_h, s_w, pt, pb, pl, pr, oh, ow
    n, h, wd, cin, kh, kw, cout, s_h, s_w, pt, pb, pl, pr, oh, ow = _conv2d_check(
        x, w, b, sh, sw, pad_top, pad_bottom, pad_left, pad_right)
    y = np.empty((n, oh, ow, cout), dtype=np.float32)
    cdef float* py = _fptr(y)
    cdef const float* px = _fptr(x)
    cdef const float* pk = _fptr(w)
    cdef const float* pbias = _fptr_or_null(b)
    cdef bint c_relu = _flag(relu, "relu")
    c_sync_thread()
    with nogil:
        c_conv2d_forward(py, px, pk, pbias, n, h, wd, cin, kh, kw, cout, s_h, s_w, pt, pb, pl, pr, c_relu)
    return y


def conv2d_backward(dy, x, w, sh, sw, pad_top, pad_bottom, pad_left, pad_right, need_dx=True, need_db=True, y=None):
    """Return (dx or None, dw, db or None) for conv2d_forward given dy (n, oh, ow, cout); with y (the output of
    conv2d_forward(..., relu=True)) the gradients of the ReLU'd convolution, dy being masked by y > 0 in the kernel."""
    cdef int64_t n, h, wd, cin, kh, kw, cout, s_h, s_w, pt, pb, pl, pr, oh, ow
    n, h, wd, cin, kh, kw, cout, s_h, s_w, pt, pb, pl, pr, oh, ow = _conv2d_check(
        x, w, None, sh, sw, pad_top, pad_bottom, pad_left, pad_right)
    _f32(dy, "dy", 4)
    _expect_shape(dy, "dy", (n, oh, ow, cout))
    if y is not None:
        _f32(y, "y", 4)
        _expect_shape(y, "y", (n, oh, ow, cout))
    dx = np.empty((n, h, wd, cin), dtype=np.float32) if need_dx else None
    dw = np.empty((kh, kw, cin, cout), dtype=np.float32)
    db = np.empty((cout,), dtype=np.float32) if need_db else None
    cdef float* pdx = _fptr_or_null(dx)
    cdef float* pdw = _fptr(dw)
    cdef float* pdb = _fptr_or_null(db)
    cdef const float* pdy = _fptr(dy)
    cdef const float* px = _fptr(x)
    cdef const float* pk = _fptr(w)
    cdef const float* prelu_y = _fptr_or_null(y)
    c_sync_thread()
    with nogil:
        c_conv2d_backward(pdx, pdw, pdb, pdy, px, pk, n, h, wd, cin, kh, kw, cout, s_h, s_w, pt, pb, pl, pr, prelu_y)
    return dx, dw, db
