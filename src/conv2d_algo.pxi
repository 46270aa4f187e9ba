# Bindings for the convolution geometry and algorithm choice in cpp/conv2d.h (see src/README.md).
cdef extern from "conv2d.h" namespace "cnnlite":
    cdef cppclass Conv2dGeometry "cnnlite::Conv2dGeometry":
        int64_t n, h, w, cin, kh, kw, cout, sh, sw, pt, pb, pl, pr, oh, ow
    cdef enum class Conv2dAlgo "cnnlite::Conv2dAlgo":
        kGemm "cnnlite::Conv2dAlgo::kGemm"
        kWinograd "cnnlite::Conv2dAlgo::kWinograd"
        kDirect "cnnlite::Conv2dAlgo::kDirect"
    cdef enum class Conv2dPass "cnnlite::Conv2dPass":
        kForward "cnnlite::Conv2dPass::kForward"
        kBackwardInput "cnnlite::Conv2dPass::kBackwardInput"
        kBackwardWeights "cnnlite::Conv2dPass::kBackwardWeights"
    Conv2dGeometry c_conv2d_geometry "cnnlite::conv2d_geometry"(
        int64_t n, int64_t h, int64_t w, int64_t cin, int64_t kh, int64_t kw, int64_t cout, int64_t sh, int64_t sw,
        int64_t pt, int64_t pb, int64_t pl, int64_t pr) except +
    const char* c_conv2d_algo_name "cnnlite::conv2d_algo_name"(Conv2dAlgo algo) except +
    Conv2dAlgo c_conv2d_algo_from_name "cnnlite::conv2d_algo_from_name"(const char* name) except +
    const char* c_conv2d_pass_name "cnnlite::conv2d_pass_name"(Conv2dPass conv_pass) except +
    bint c_conv2d_algo_applies "cnnlite::conv2d_algo_applies"(Conv2dAlgo algo, Conv2dPass conv_pass,
                                                              const Conv2dGeometry& g) except +
    Conv2dAlgo c_conv2d_choose "cnnlite::conv2d_choose"(Conv2dPass conv_pass, const Conv2dGeometry& g,
                                                        const char* isa) except +


cdef Conv2dGeometry _conv2d_geometry(int64_t n, int64_t h, int64_t w, int64_t cin, int64_t kh, int64_t kw,
                                     int64_t cout, object sh, object sw, object pad_top, object pad_bottom,
                                     object pad_left, object pad_right):
    """The geometry checked by the kernels' own rule (cpp/conv2d.h conv2d_geometry: output size, extents, overflow);
    strides must be positive and pads non-negative integers. Errors (ValueError) name the argument."""
    cdef int64_t s_h = _positive(sh, "sh"), s_w = _positive(sw, "sw")
    cdef int64_t pt = _nonneg(pad_top, "pad_top"), pb = _nonneg(pad_bottom, "pad_bottom")
    cdef int64_t pl = _nonneg(pad_left, "pad_left"), pr = _nonneg(pad_right, "pad_right")
    return c_conv2d_geometry(n, h, w, cin, kh, kw, cout, s_h, s_w, pt, pb, pl, pr)


cdef Conv2dPass _conv2d_pass(object backward_input, object backward_weights) except *:
    if backward_input and backward_weights:
        raise ValueError("backward_input and backward_weights cannot both be true")
    return Conv2dPass.kBackwardInput if backward_input else (
        Conv2dPass.kBackwardWeights if backward_weights else Conv2dPass.kForward)


cdef Conv2dAlgo _conv2d_algo_named(object algo, str argname) except *:
    if not isinstance(algo, str):
        raise TypeError(f"{argname} must be None or a str ('gemm', 'winograd', 'direct'), got {type(algo).__name__}")
    if algo not in ("gemm", "winograd", "direct"):
        raise ValueError(f"{argname} must be None, 'gemm', 'winograd' or 'direct', got {algo!r}")
    return c_conv2d_algo_from_name(algo.encode())


cdef Conv2dAlgo _conv2d_algo_for(object algo, str argname, Conv2dPass conv_pass, const Conv2dGeometry& g) except *:
    """The algorithm for one pass: the automatic choice when algo is None, else the named one, which must apply."""
    if algo is None:
        return c_conv2d_choose(conv_pass, g, c_gemm_isa())
    cdef Conv2dAlgo a = _conv2d_algo_named(algo, argname)
    if not c_conv2d_algo_applies(a, conv_pass, g):
        raise ValueError(f"{argname}={algo!r} does not apply to the {c_conv2d_pass_name(conv_pass).decode()} of a "
                         f"{g.kh}x{g.kw} kernel with strides {g.sh}x{g.sw} and pads ({g.pt}, {g.pb}, {g.pl}, {g.pr})")
    return a


cdef Conv2dGeometry _conv2d_shapes(object x_shape, object w_shape, object sh, object sw, object pad_top,
                                   object pad_bottom, object pad_left, object pad_right):
    xs, ws = tuple(x_shape), tuple(w_shape)
    if len(xs) != 4:
        raise ValueError(f"x_shape must have 4 entries (n, h, w, cin), got {xs}")
    if len(ws) != 4:
        raise ValueError(f"w_shape must have 4 entries (kh, kw, cin, cout), got {ws}")
    if xs[3] != ws[2]:
        raise ValueError(f"x_shape has {xs[3]} channels but w_shape expects {ws[2]}")
    return _conv2d_geometry(_nonneg(xs[0], "n"), _nonneg(xs[1], "h"), _nonneg(xs[2], "w"), _nonneg(xs[3], "cin"),
                            _nonneg(ws[0], "kh"), _nonneg(ws[1], "kw"), _nonneg(ws[3], "cout"), sh, sw, pad_top,
                            pad_bottom, pad_left, pad_right)


def conv2d_algo(x_shape, w_shape, sh, sw, pad_top, pad_bottom, pad_left, pad_right, backward_input=False,
                backward_weights=False):
    """Name of the algorithm ('gemm', 'winograd', 'direct') the automatic choice (algo=None) takes for conv2d_forward
    with x of shape x_shape (n, h, w, cin) and w of shape w_shape (kh, kw, cin, cout); with backward_input, for
    conv2d_backward_input, with backward_weights, for conv2d_backward_weights."""
    cdef Conv2dPass p = _conv2d_pass(backward_input, backward_weights)
    cdef Conv2dGeometry g = _conv2d_shapes(x_shape, w_shape, sh, sw, pad_top, pad_bottom, pad_left, pad_right)
    return c_conv2d_algo_name(c_conv2d_choose(p, g, c_gemm_isa())).decode()


def conv2d_algo_applies(algo, x_shape, w_shape, sh, sw, pad_top, pad_bottom, pad_left, pad_right,
                        backward_input=False, backward_weights=False):
    """True when algorithm `algo` ('gemm', 'winograd', 'direct') can compute that pass of that geometry (arguments as
    conv2d_algo): gemm always; winograd for 3x3 stride-1 kernels (its input gradient also needs pads <= 2); direct
    for the forward pass and the weight gradient."""
    cdef Conv2dAlgo a = _conv2d_algo_named(algo, "algo")
    cdef Conv2dPass p = _conv2d_pass(backward_input, backward_weights)
    cdef Conv2dGeometry g = _conv2d_shapes(x_shape, w_shape, sh, sw, pad_top, pad_bottom, pad_left, pad_right)
    return bool(c_conv2d_algo_applies(a, p, g))
