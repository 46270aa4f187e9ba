# Bindings for cpp/conv2d.h (see src/README.md for the contract). The geometry and algorithm helpers are in
# conv2d_algo.pxi.
cdef extern from "conv2d.h" namespace "cnnlite":
    void c_conv2d_forward "cnnlite::conv2d_forward"(
        float* y, const float* x, const float* k, const float* bias, const Conv2dGeometry& g, Conv2dAlgo algo,
        bint relu, bint bf16) except + nogil
    void c_conv2d_backward_input "cnnlite::conv2d_backward_input"(
        float* dx, const float* dy, const float* k, const float* relu_y_gate, const Conv2dGeometry& g,
        Conv2dAlgo algo, bint bf16) except + nogil
    void c_conv2d_backward_weights "cnnlite::conv2d_backward_weights"(
        float* dk, float* dbias, const float* dy, const float* x, const float* relu_y_gate, const Conv2dGeometry& g,
        Conv2dAlgo algo, bint bf16) except + nogil
    void c_conv2d_backward_weights_shards "cnnlite::conv2d_backward_weights_shards"(
        float* dk_parts, float* dbias_parts, const float* dy, const float* x, const float* relu_y_gate,
        const Conv2dGeometry& g, const int64_t* bounds, int64_t shards, Conv2dAlgo algo, bint bf16) except + nogil
    void c_conv2d_forward_dense "cnnlite::conv2d_forward_dense"(
        float* y, float* z, const float* x, const float* k, const float* bias, const float* dense_w,
        const float* dense_bias, int64_t units, const Conv2dGeometry& g, bint relu) except + nogil
    void c_conv2d_backward_weights_shards_from_dense "cnnlite::conv2d_backward_weights_shards_from_dense"(
        float* dk_parts, float* dbias_parts, const float* dz, const float* dense_w, int64_t units, const float* x,
        const float* relu_y_gate, const Conv2dGeometry& g, const int64_t* bounds, int64_t shards) except + nogil


cdef bint _bf16(object precision, str argname) except -1:
    """precision None or 'float32' -> False, 'bfloat16' -> True (the mixed_bfloat16 products), else ValueError."""
    if precision is None or (isinstance(precision, str) and precision == "float32"):
        return False
    if isinstance(precision, str) and precision == "bfloat16":
        return True
    raise ValueError(f"{argname} must be None, 'float32' or 'bfloat16', got {precision!r}")


cdef void _conv2d_check_x(object x) except *:
    _f32(x, "x", 4)
    if x.shape[1] == 0 or x.shape[2] == 0 or x.shape[3] == 0:
        raise ValueError(f"x must have non-zero height, width and channels, got shape {x.shape}")


cdef void _conv2d_check_w(object w) except *:
    _f32(w, "w", 4)
    if w.shape[0] == 0 or w.shape[1] == 0 or w.shape[2] == 0 or w.shape[3] == 0:
        raise ValueError(f"w must have non-zero (kh, kw, cin, cout), got shape {w.shape}")


cdef Conv2dGeometry _conv2d_check(object x, object w, object sh, object sw, object pad_top, object pad_bottom,
                                  object pad_left, object pad_right):
    """Check x (n, h, w, cin), w (kh, kw, cin, cout), strides and pads; return the geometry."""
    _conv2d_check_x(x)
    _conv2d_check_w(w)
    if x.shape[3] != w.shape[2]:
        raise ValueError(f"x has {x.shape[3]} channels (shape {x.shape}) but w expects {w.shape[2]} "
                         f"(shape {w.shape}, layout (kh, kw, cin, cout))")
    return _conv2d_geometry(x.shape[0], x.shape[1], x.shape[2], x.shape[3], w.shape[0], w.shape[1], w.shape[3], sh,
                            sw, pad_top, pad_bottom, pad_left, pad_right)


cdef object _conv2d_dy(object dy, object y, const Conv2dGeometry& g):
    """Check dy and the optional ReLU gate y against the geometry's output shape (n, oh, ow, cout)."""
    _f32(dy, "dy", 4)
    _expect_shape(dy, "dy", (g.n, g.oh, g.ow, g.cout))
    if y is not None:
        _f32(y, "y", 4)
        _expect_shape(y, "y", (g.n, g.oh, g.ow, g.cout))


def conv2d_forward(x, w, b, sh, sw, pad_top, pad_bottom, pad_left, pad_right, relu=False, algo=None,
                   precision=None):
    """y (n, oh, ow, cout) = conv(x (n, h, w, cin), w (kh, kw, cin, cout)) + b, then max(y, 0) if relu;
    oh = (h + pt + pb - kh)//sh + 1. algo: None (the automatic choice, conv2d_algo) or 'gemm', 'winograd', 'direct'
    (ValueError when it does not apply). precision: None / 'float32', or 'bfloat16' (winograd only: its products on
    bfloat16-rounded operands, accumulated in float32)."""
    cdef Conv2dGeometry g = _conv2d_check(x, w, sh, sw, pad_top, pad_bottom, pad_left, pad_right)
    if b is not None:
        _f32(b, "b", 1)
        _expect_shape(b, "b", (w.shape[3],))
    cdef bint c_relu = _flag(relu, "relu")
    cdef Conv2dAlgo a = _conv2d_algo_for(algo, "algo", Conv2dPass.kForward, g)
    cdef bint bf16 = _bf16(precision, "precision")
    y = np.empty((g.n, g.oh, g.ow, g.cout), dtype=np.float32)
    cdef float* py = _fptr(y)
    cdef const float* px = _fptr(x)
    cdef const float* pk = _fptr(w)
    cdef const float* pbias = _fptr_or_null(b)
    c_sync_thread()
    with nogil:
        c_conv2d_forward(py, px, pk, pbias, g, a, c_relu, bf16)
    return y


def conv2d_backward_input(dy, w, h, wd, sh, sw, pad_top, pad_bottom, pad_left, pad_right, y=None, algo=None,
                          precision=None):
    """dx (n, h, wd, cin) of conv2d_forward for an input of height h and width wd, from dy (n, oh, ow, cout) and
    w (kh, kw, cin, cout); with y (the output of conv2d_forward(..., relu=True)) that of the ReLU'd convolution, dy
    being masked by y > 0 in the kernel. algo: None (automatic) or 'gemm', 'winograd' (not 'direct'). precision as
    for conv2d_forward."""
    _f32(dy, "dy", 4)
    _conv2d_check_w(w)
    cdef Conv2dGeometry g = _conv2d_geometry(dy.shape[0], _positive(h, "h"), _positive(wd, "wd"), w.shape[2],
                                             w.shape[0], w.shape[1], w.shape[3], sh, sw, pad_top, pad_bottom,
                                             pad_left, pad_right)
    _conv2d_dy(dy, y, g)
    cdef Conv2dAlgo a = _conv2d_algo_for(algo, "algo", Conv2dPass.kBackwardInput, g)
    cdef bint bf16 = _bf16(precision, "precision")
    dx = np.empty((g.n, g.h, g.w, g.cin), dtype=np.float32)
    cdef float* pdx = _fptr(dx)
    cdef const float* pdy = _fptr(dy)
    cdef const float* pk = _fptr(w)
    cdef const float* pgate = _fptr_or_null(y)
    c_sync_thread()
    with nogil:
        c_conv2d_backward_input(pdx, pdy, pk, pgate, g, a, bf16)
    return dx


def conv2d_backward_weights(dy, x, kh, kw, sh, sw, pad_top, pad_bottom, pad_left, pad_right, need_db=True, y=None,
                            algo=None, precision=None):
    """(dw (kh, kw, cin, cout), db (cout) or None) of conv2d_forward from dy (n, oh, ow, cout) and x (n, h, w, cin);
    with y as for conv2d_backward_input. algo: None (automatic) or 'gemm', 'winograd', 'direct'. precision as for
    conv2d_forward."""
    _conv2d_check_x(x)
    _f32(dy, "dy", 4)
    cdef Conv2dGeometry g = _conv2d_geometry(x.shape[0], x.shape[1], x.shape[2], x.shape[3], _positive(kh, "kh"),
                                             _positive(kw, "kw"), dy.shape[3], sh, sw, pad_top, pad_bottom, pad_left,
                                             pad_right)
    _conv2d_dy(dy, y, g)
    cdef bint c_need_db = _flag(need_db, "need_db")
    cdef Conv2dAlgo a = _conv2d_algo_for(algo, "algo", Conv2dPass.kBackwardWeights, g)
    cdef bint bf16 = _bf16(precision, "precision")
    dw = np.empty((g.kh, g.kw, g.cin, g.cout), dtype=np.float32)
    db = np.empty((g.cout,), dtype=np.float32) if c_need_db else None
    cdef float* pdw = _fptr(dw)
    cdef float* pdb = _fptr_or_null(db)
    cdef const float* pdy = _fptr(dy)
    cdef const float* px = _fptr(x)
    cdef const float* pgate = _fptr_or_null(y)
    c_sync_thread()
    with nogil:
        c_conv2d_backward_weights(pdw, pdb, pdy, px, pgate, g, a, bf16)
    return dw, db


def conv2d_backward_weights_shards(dy, x, kh, kw, sh, sw, pad_top, pad_bottom, pad_left, pad_right, shards,
                                   need_db=True, y=None, algo=None, precision=None):
    """(dw (S, kh, kw, cin, cout), db (S, cout) or None): conv2d_backward_weights of each reduction shard, rows
    [shards[s], shards[s + 1]) of dy and x, for the S + 1 row boundaries `shards` (0 first, n last); precision as for
    conv2d_backward_weights."""
    _conv2d_check_x(x)
    _f32(dy, "dy", 4)
    cdef Conv2dGeometry g = _conv2d_geometry(x.shape[0], x.shape[1], x.shape[2], x.shape[3], _positive(kh, "kh"),
                                             _positive(kw, "kw"), dy.shape[3], sh, sw, pad_top, pad_bottom, pad_left,
                                             pad_right)
    _conv2d_dy(dy, y, g)
    bounds = _shard_bounds(shards, g.n)
    cdef int64_t count = len(bounds) - 1
    cdef bint c_need_db = _flag(need_db, "need_db")
    cdef Conv2dAlgo a = _conv2d_algo_for(algo, "algo", Conv2dPass.kBackwardWeights, g)
    cdef bint bf16 = _bf16(precision, "precision")
    dw = np.empty((count, g.kh, g.kw, g.cin, g.cout), dtype=np.float32)
    db = np.empty((count, g.cout), dtype=np.float32) if c_need_db else None
    cdef float* pdw = _fptr(dw)
    cdef float* pdb = _fptr_or_null(db)
    cdef const float* pdy = _fptr(dy)
    cdef const float* px = _fptr(x)
    cdef const float* pgate = _fptr_or_null(y)
    cdef const int64_t* pb = <const int64_t*> cnp.PyArray_DATA(bounds)
    c_sync_thread()
    with nogil:
        c_conv2d_backward_weights_shards(pdw, pdb, pdy, px, pgate, g, pb, count, a, bf16)
    return dw, db


def conv2d_forward_dense(x, w, b, sh, sw, pad_top, pad_bottom, pad_left, pad_right, dense_w, dense_b, relu=False):
    """(y, z): y = conv2d_forward(x, w, b, ..., relu, algo='direct') and z (n, units) = y.reshape(n, -1) @ dense_w +
    dense_b, bitwise dense_forward(y.reshape(n, -1), dense_w, dense_b) (the Dense layer after a Flatten of y, without
    ReLU), computed a few images at a time from the y just written. dense_w (oh * ow * cout, units); b and dense_b
    may be None."""
    cdef Conv2dGeometry g = _conv2d_check(x, w, sh, sw, pad_top, pad_bottom, pad_left, pad_right)
    if b is not None:
        _f32(b, "b", 1)
        _expect_shape(b, "b", (w.shape[3],))
    _f32(dense_w, "dense_w", 2)
    if dense_w.shape[0] != g.oh * g.ow * g.cout or dense_w.shape[1] < 1:
        raise ValueError(f"dense_w must be (oh * ow * cout, units) = ({g.oh * g.ow * g.cout}, units >= 1), got shape "
                         f"{dense_w.shape}")
    if dense_b is not None:
        _f32(dense_b, "dense_b", 1)
        _expect_shape(dense_b, "dense_b", (dense_w.shape[1],))
    cdef bint c_relu = _flag(relu, "relu")
    _conv2d_algo_for("direct", "algo", Conv2dPass.kForward, g)
    cdef int64_t units = dense_w.shape[1]
    y = np.empty((g.n, g.oh, g.ow, g.cout), dtype=np.float32)
    z = np.empty((g.n, units), dtype=np.float32)
    cdef float* py = _fptr(y)
    cdef float* pz = _fptr(z)
    cdef const float* px = _fptr(x)
    cdef const float* pk = _fptr(w)
    cdef const float* pbias = _fptr_or_null(b)
    cdef const float* pdw = _fptr(dense_w)
    cdef const float* pdb = _fptr_or_null(dense_b)
    c_sync_thread()
    with nogil:
        c_conv2d_forward_dense(py, pz, px, pk, pbias, pdw, pdb, units, g, c_relu)
    return y, z


def conv2d_backward_weights_shards_from_dense(dz, dense_w, x, kh, kw, cout, sh, sw, pad_top, pad_bottom, pad_left,
                                              pad_right, shards, need_db=True, y=None):
    """conv2d_backward_weights_shards(dy, x, ..., algo='direct') for the dy that a Dense layer on the flattened output
    hands back: dy (n, oh, ow, cout) = dz (n, units) @ dense_w^T, dense_w (oh * ow * cout, units), units <=
    skinny_gemm_max(); dy is computed eight images at a time inside the kernel, never in full, with the bits of
    dense_backward(..., algo='gemm skinny')'s dx (below the avx512 level, where that is the general GEMM, a NaN may
    come out with the other sign). y: the optional ReLU gate (n, oh, ow, cout)."""
    _conv2d_check_x(x)
    cdef Conv2dGeometry g = _conv2d_geometry(x.shape[0], x.shape[1], x.shape[2], x.shape[3], _positive(kh, "kh"),
                                             _positive(kw, "kw"), _positive(cout, "cout"), sh, sw, pad_top,
                                             pad_bottom, pad_left, pad_right)
    _f32(dz, "dz", 2)
    if dz.shape[0] != g.n or not 1 <= dz.shape[1] <= c_skinny_max:
        raise ValueError(f"dz must be (n, units) with n = {g.n} (x's batch) and 1 <= units <= {c_skinny_max}, got "
                         f"shape {dz.shape}")
    _f32(dense_w, "dense_w", 2)
    _expect_shape(dense_w, "dense_w", (g.oh * g.ow * g.cout, dz.shape[1]))
    if y is not None:
        _f32(y, "y", 4)
        _expect_shape(y, "y", (g.n, g.oh, g.ow, g.cout))
    _conv2d_algo_for("direct", "algo", Conv2dPass.kBackwardWeights, g)
    bounds = _shard_bounds(shards, g.n)
    cdef int64_t count = len(bounds) - 1, units = dz.shape[1]
    cdef bint c_need_db = _flag(need_db, "need_db")
    dw = np.empty((count, g.kh, g.kw, g.cin, g.cout), dtype=np.float32)
    db = np.empty((count, g.cout), dtype=np.float32) if c_need_db else None
    cdef float* pdw = _fptr(dw)
    cdef float* pdb = _fptr_or_null(db)
    cdef const float* pdz = _fptr(dz)
    cdef const float* pw = _fptr(dense_w)
    cdef const float* px = _fptr(x)
    cdef const float* pgate = _fptr_or_null(y)
    cdef const int64_t* pb = <const int64_t*> cnp.PyArray_DATA(bounds)
    c_sync_thread()
    with nogil:
        c_conv2d_backward_weights_shards_from_dense(pdw, pdb, pdz, pw, units, px, pgate, g, pb, count)
    return dw, db


def conv2d_backward(dy, x, w, sh, sw, pad_top, pad_bottom, pad_left, pad_right, need_dx=True, need_db=True, y=None,
                    algo_input=None, algo_weights=None, precision=None):
    """(dx or None, dw, db or None) for conv2d_forward given dy (n, oh, ow, cout): conv2d_backward_input (when
    need_dx, with algo_input) and conv2d_backward_weights (with algo_weights); y and precision as for those."""
    cdef Conv2dGeometry g = _conv2d_check(x, w, sh, sw, pad_top, pad_bottom, pad_left, pad_right)
    _conv2d_dy(dy, y, g)
    cdef bint c_need_dx = bool(need_dx), c_need_db = bool(need_db)
    cdef Conv2dAlgo a_input = Conv2dAlgo.kGemm
    if c_need_dx:
        a_input = _conv2d_algo_for(algo_input, "algo_input", Conv2dPass.kBackwardInput, g)
    cdef Conv2dAlgo a_weights = _conv2d_algo_for(algo_weights, "algo_weights", Conv2dPass.kBackwardWeights, g)
    cdef bint bf16 = _bf16(precision, "precision")
    dx = np.empty((g.n, g.h, g.w, g.cin), dtype=np.float32) if c_need_dx else None
    dw = np.empty((g.kh, g.kw, g.cin, g.cout), dtype=np.float32)
    db = np.empty((g.cout,), dtype=np.float32) if c_need_db else None
    cdef float* pdx = _fptr_or_null(dx)
    cdef float* pdw = _fptr(dw)
    cdef float* pdb = _fptr_or_null(db)
    cdef const float* pdy = _fptr(dy)
    cdef const float* px = _fptr(x)
    cdef const float* pk = _fptr(w)
    cdef const float* pgate = _fptr_or_null(y)
    c_sync_thread()
    with nogil:
        if c_need_dx:
            c_conv2d_backward_input(pdx, pdy, pk, pgate, g, a_input, bf16)
        c_conv2d_backward_weights(pdw, pdb, pdy, px, pgate, g, a_weights, bf16)
    return dx, dw, db


# ----- max-pool in the store (the plan's fusion of a ReLU'd Winograd convolution with the 2x2/2 max-pool after it) --
cdef extern from "conv2d.h" namespace "cnnlite":
    bint c_conv2d_maxpool_applies "cnnlite::conv2d_maxpool_applies"(const Conv2dGeometry& g) nogil
    void c_conv2d_maxpool_forward "cnnlite::conv2d_maxpool_forward"(
        float* y, int32_t* argmax, const float* x, const float* k, const float* bias, const Conv2dGeometry& g,
        bint relu, bint bf16) except + nogil
    void c_conv2d_maxpool_backward_input "cnnlite::conv2d_maxpool_backward_input"(
        float* dx, const float* dy, const int32_t* argmax, const float* gate, const float* k,
        const Conv2dGeometry& g, bint bf16) except + nogil
    void c_conv2d_maxpool_backward_weights_shards "cnnlite::conv2d_maxpool_backward_weights_shards"(
        float* dk_parts, float* dbias_parts, const float* dy, const int32_t* argmax, const float* gate,
        const float* x, const Conv2dGeometry& g, const int64_t* bounds, int64_t shards, bint bf16) except + nogil


cdef void _conv2d_maxpool_check(const Conv2dGeometry& g) except *:
    if not c_conv2d_maxpool_applies(g):
        raise ValueError(f"max-pool in the store needs a 3x3, stride-1 (Winograd) convolution whose output has even "
                         f"height and width, got kernel {g.kh}x{g.kw}, strides {g.sh}x{g.sw} and output (oh, ow) = "
                         f"({g.oh}, {g.ow})")


cdef void _conv2d_pooled(object dy, object argmax, object y, const Conv2dGeometry& g) except *:
    """Check the geometry and the pooled arrays dy, argmax (int32) and the optional gate y: (n, oh / 2, ow / 2,
    cout)."""
    _conv2d_maxpool_check(g)
    pooled = (g.n, g.oh // 2, g.ow // 2, g.cout)
    _f32(dy, "dy", 4)
    _expect_shape(dy, "dy", pooled)
    _int32_array(argmax, "argmax")
    _expect_shape(argmax, "argmax", pooled)
    if y is not None:
        _f32(y, "y", 4)
        _expect_shape(y, "y", pooled)


def conv2d_maxpool_applies(n, h, wd, cin, kh, kw, cout, sh, sw, pad_top, pad_bottom, pad_left, pad_right):
    """True when conv2d_maxpool_forward and its gradients apply to this convolution: Winograd (3x3, stride 1) and an
    output of even height and width (each 2x2 output tile one window of a 2x2, stride-2, unpadded max-pool)."""
    cdef Conv2dGeometry g = _conv2d_geometry(n, h, wd, cin, kh, kw, cout, sh, sw, pad_top, pad_bottom, pad_left,
                                             pad_right)
    return bool(c_conv2d_maxpool_applies(g))


def conv2d_maxpool_forward(x, w, b, sh, sw, pad_top, pad_bottom, pad_left, pad_right, relu=False, precision=None):
    """(y, argmax), both (n, oh / 2, ow / 2, cout): maxpool2d_forward(conv2d_forward(x, w, b, ..., relu,
    algo='winograd'), 2, 2, 2, 2, 0, 0, 0, 0) in one pass, bitwise, without the convolution's full output. argmax
    (int32) indexes the convolution's output plane (r * ow + c). ValueError unless Winograd applies and oh and ow
    are even. precision as for conv2d_forward."""
    cdef Conv2dGeometry g = _conv2d_check(x, w, sh, sw, pad_top, pad_bottom, pad_left, pad_right)
    _conv2d_maxpool_check(g)
    if b is not None:
        _f32(b, "b", 1)
        _expect_shape(b, "b", (w.shape[3],))
    cdef bint c_relu = _flag(relu, "relu")
    cdef bint bf16 = _bf16(precision, "precision")
    y = np.empty((g.n, g.oh // 2, g.ow // 2, g.cout), dtype=np.float32)
    argmax = np.empty(y.shape, dtype=np.int32)
    cdef float* py = _fptr(y)
    cdef int32_t* pa = <int32_t*> cnp.PyArray_DATA(argmax)
    cdef const float* px = _fptr(x)
    cdef const float* pk = _fptr(w)
    cdef const float* pbias = _fptr_or_null(b)
    c_sync_thread()
    with nogil:
        c_conv2d_maxpool_forward(py, pa, px, pk, pbias, g, c_relu, bf16)
    return y, argmax


def conv2d_maxpool_backward_input(dy, argmax, w, h, wd, sh, sw, pad_top, pad_bottom, pad_left, pad_right, y=None,
                                  precision=None):
    """dx (n, h, wd, cin) of conv2d_maxpool_forward from the pool's gradient dy and argmax (n, oh / 2, ow / 2, cout):
    conv2d_backward_input(maxpool2d_backward(dy, argmax, oh, ow, y=y), w, ..., algo='winograd'), bitwise, without
    the full-size gradient. y (optional): the pooled output, the ReLU's cut. precision as for conv2d_forward."""
    _f32(dy, "dy", 4)
    _conv2d_check_w(w)
    cdef Conv2dGeometry g = _conv2d_geometry(dy.shape[0], _positive(h, "h"), _positive(wd, "wd"), w.shape[2],
                                             w.shape[0], w.shape[1], w.shape[3], sh, sw, pad_top, pad_bottom,
                                             pad_left, pad_right)
    _conv2d_pooled(dy, argmax, y, g)
    cdef bint bf16 = _bf16(precision, "precision")
    dx = np.empty((g.n, g.h, g.w, g.cin), dtype=np.float32)
    cdef float* pdx = _fptr(dx)
    cdef const float* pdy = _fptr(dy)
    cdef const int32_t* pa = <const int32_t*> cnp.PyArray_DATA(argmax)
    cdef const float* pk = _fptr(w)
    cdef const float* pgate = _fptr_or_null(y)
    c_sync_thread()
    with nogil:
        c_conv2d_maxpool_backward_input(pdx, pdy, pa, pgate, pk, g, bf16)
    return dx


def conv2d_maxpool_backward_weights_shards(dy, argmax, x, kh, kw, sh, sw, pad_top, pad_bottom, pad_left, pad_right,
                                           shards, need_db=True, y=None, precision=None):
    """(dw (S, kh, kw, cin, cout), db (S, cout) or None) of conv2d_maxpool_forward per reduction shard (as
    conv2d_backward_weights_shards) from the pool's dy, argmax (n, oh / 2, ow / 2, cout) and x (n, h, w, cin); y as
    for conv2d_maxpool_backward_input. Bitwise conv2d_backward_weights_shards(maxpool2d_backward(...), x, ...,
    algo='winograd')."""
    _conv2d_check_x(x)
    _f32(dy, "dy", 4)
    cdef Conv2dGeometry g = _conv2d_geometry(x.shape[0], x.shape[1], x.shape[2], x.shape[3], _positive(kh, "kh"),
                                             _positive(kw, "kw"), dy.shape[3], sh, sw, pad_top, pad_bottom, pad_left,
                                             pad_right)
    _conv2d_pooled(dy, argmax, y, g)
    bounds = _shard_bounds(shards, g.n)
    cdef int64_t count = len(bounds) - 1
    cdef bint c_need_db = _flag(need_db, "need_db")
    cdef bint bf16 = _bf16(precision, "precision")
    dw = np.empty((count, g.kh, g.kw, g.cin, g.cout), dtype=np.float32)
    db = np.empty((count, g.cout), dtype=np.float32) if c_need_db else None
    cdef float* pdw = _fptr(dw)
    cdef float* pdb = _fptr_or_null(db)
    cdef const float* pdy = _fptr(dy)
    cdef const int32_t* pa = <const int32_t*> cnp.PyArray_DATA(argmax)
    cdef const float* px = _fptr(x)
    cdef const float* pgate = _fptr_or_null(y)
    cdef const int64_t* pb = <const int64_t*> cnp.PyArray_DATA(bounds)
    c_sync_thread()
    with nogil:
        c_conv2d_maxpool_backward_weights_shards(pdw, pdb, pdy, pa, pgate, px, g, pb, count, bf16)
    return dw, db
