# Bindings for the convolution algorithm selection in cpp/conv2d.h (see src/README.md).
cdef extern from "conv2d.h" namespace "cnnlite":
    const char* c_conv2d_algo "cnnlite::conv2d_algo"(
        int conv_pass, int64_t n, int64_t h, int64_t w, int64_t cin, int64_t kh, int64_t kw, int64_t cout,
        int64_t sh, int64_t sw, int64_t pt, int64_t pb, int64_t pl, int64_t pr) except +
    void c_conv2d_set_algo "cnnlite::conv2d_set_algo"(const char* name) except +
    const char* c_conv2d_get_algo "cnnlite::conv2d_get_algo"()


def conv2d_algo(x_shape, w_shape, sh, sw, pad_top, pad_bottom, pad_left, pad_right, backward_input=False,
                backward_weights=False):
    """Name of the path ('gemm', 'winograd', 'direct') conv2d_forward takes for x of shape x_shape (n, h, w, cin) and
    w of shape w_shape (kh, kw, cin, cout); with backward_input, that of conv2d_backward's input gradient, with
    backward_weights, that of its weight (and bias) gradient."""
    if backward_input and backward_weights:
        raise ValueError("backward_input and backward_weights cannot both be true")
    xs, ws = tuple(x_shape), tuple(w_shape)
    if len(xs) != 4:
        raise ValueError(f"x_shape must have 4 entries (n, h, w, cin), got {xs}")
    if len(ws) != 4:
        raise ValueError(f"w_shape must have 4 entries (kh, kw, cin, cout), got {ws}")
    if xs[3] != ws[2]:
        raise ValueError(f"x_shape has {xs[3]} channels but w_shape expects {ws[2]}")
    cdef int64_t v[13]
    for i, (value, name) in enumerate(zip(xs + (ws[0], ws[1], ws[3]), ("n", "h", "w", "cin", "kh", "kw", "cout"))):
        v[i] = _nonneg(value, name)
    v[7] = _positive(sh, "sh")
    v[8] = _positive(sw, "sw")
    v[9] = _nonneg(pad_top, "pad_top")
    v[10] = _nonneg(pad_bottom, "pad_bottom")
    v[11] = _nonneg(pad_left, "pad_left")
    v[12] = _nonneg(pad_right, "pad_right")
    try:
        name = c_conv2d_algo(1 if backward_input else 2 if backward_weights else 0, v[0], v[1], v[2], v[3], v[4],
                             v[5], v[6], v[7], v[8], v[9], v[10], v[11], v[12])
    except Exception as e:  # the geometry check's message, as a ValueError
        raise ValueError(str(e)) from None
    return name.decode()


def set_conv2d_algo(name):
    """Force a convolution algorithm for later calls ('auto', 'gemm', 'winograd', 'direct'); returns the previous setting.
    Where the forced path does not apply the automatic choice is used. Starts as $CNNLITE_CONV_ALGO ('auto')."""
    if not isinstance(name, str):
        raise TypeError(f"name must be a str, got {type(name).__name__}")
    previous = c_conv2d_get_algo().decode()
    try:
        c_conv2d_set_algo(name.encode())
    except Exception as e:
        raise ValueError(str(e)) from None
    return previous


def get_conv2d_algo():
    """The forced convolution algorithm ('auto' when none)."""
    return c_conv2d_get_algo().decode()
