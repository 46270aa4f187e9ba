# Bindings for cpp/dense.h (see src/README.md for the contract).
cdef extern from "dense.h" namespace "cnnlite":
    void c_dense_forward "cnnlite::dense_forward"(float* y, const float* x, const float* w, const float* bias,
                                                  int64_t n, int64_t n_in, int64_t n_out, bint relu) except + nogil
    void c_dense_backward "cnnlite::dense_backward"(float* dx, float* dw, float* dbias, const float* dy,
                                                    const float* x, const float* w, int64_t n, int64_t n_in,
                                                    int64_t n_out, const float* relu_y, bint skinny) except + nogil
    void c_dense_backward_weights_shards "cnnlite::dense_backward_weights_shards"(
        float* dw_parts, float* dbias_parts, const float* dy, const float* x, int64_t n, int64_t n_in, int64_t n_out,
        const float* relu_y, const int64_t* bounds, int64_t shards, bint bf16, bint skinny) except + nogil

cdef extern from "gemm_skinny.h" namespace "cnnlite":
    int64_t c_skinny_max "cnnlite::kSkinnyMax"
    bint c_skinny_gemm_native "cnnlite::skinny_gemm_native"() except + nogil

DENSE_ALGOS = ("gemm", "gemm skinny")


def skinny_gemm_max():
    """The most units (columns of a Dense kernel) the skinny GEMMs ('gemm skinny') take."""
    return c_skinny_max


def skinny_gemm_native():
    """True when the skinny GEMMs run their own (AVX-512) kernels at the current ISA level; below it they run the
    general GEMM (the same bits either way)."""
    return c_skinny_gemm_native()


cdef bint _dense_algo(object algo, int64_t n_out) except -1:
    """True for 'gemm skinny' (n_out <= skinny_gemm_max()), False for 'gemm'; ValueError naming `algo` otherwise."""
    if not isinstance(algo, str) or algo not in DENSE_ALGOS:
        raise ValueError(f"algo must be one of {DENSE_ALGOS}, got {algo!r}")
    if algo == "gemm skinny" and n_out > c_skinny_max:
        raise ValueError(f"algo='gemm skinny' needs at most {c_skinny_max} output columns, got {n_out}")
    return algo == "gemm skinny"


cdef void _dense_weights(object w, object b) except *:
    _f32(w, "w", 2)
    if w.shape[0] == 0 or w.shape[1] == 0:
        raise ValueError(f"w must have non-zero (in, out) dimensions, got shape {w.shape}")
    if b is not None:
        _f32(b, "b", 1)
        _expect_shape(b, "b", (w.shape[1],))


def dense_forward(x, w, b, relu=False):
    """y (n, out) = x (n, in) @ w (in, out) + b (out), then max(y, 0) if relu; b may be None."""
    _f32(x, "x", 2)
    _dense_weights(w, b)
    if x.shape[1] != w.shape[0]:
        raise ValueError(f"x has {x.shape[1]} features (shape {x.shape}) but w expects {w.shape[0]} (shape {w.shape})")
    cdef int64_t n = x.shape[0], n_in = w.shape[0], n_out = w.shape[1]
    y = np.empty((n, n_out), dtype=np.float32)
    cdef float* py = _fptr(y)
    cdef const float* px = _fptr(x)
    cdef const float* pw = _fptr(w)
    cdef const float* pb = _fptr_or_null(b)
    cdef bint c_relu = _flag(relu, "relu")
    c_sync_thread()
    with nogil:
        c_dense_forward(py, px, pw, pb, n, n_in, n_out, c_relu)
    return y


def dense_backward(dy, x, w, need_dx=True, need_db=True, y=None, need_dw=True, algo="gemm"):
    """Return (dx or None, dw or None, db or None) for y = x @ w + b given dy (n, out); with y (the output of
    dense_forward(..., relu=True)) those of y = max(x @ w + b, 0), dy being masked by y > 0 in the kernel.
    algo: 'gemm', or 'gemm skinny' (out <= skinny_gemm_max(): the skinny GEMMs, the same bits)."""
    _f32(dy, "dy", 2)
    _f32(x, "x", 2)
    _dense_weights(w, None)
    if x.shape[1] != w.shape[0]:
        raise ValueError(f"x has {x.shape[1]} features (shape {x.shape}) but w expects {w.shape[0]} (shape {w.shape})")
    _expect_shape(dy, "dy", (x.shape[0], w.shape[1]))
    if y is not None:
        _f32(y, "y", 2)
        _expect_shape(y, "y", (x.shape[0], w.shape[1]))
    cdef int64_t n = x.shape[0], n_in = w.shape[0], n_out = w.shape[1]
    cdef bint skinny = _dense_algo(algo, n_out)
    dx = np.empty((n, n_in), dtype=np.float32) if need_dx else None
    dw = np.empty((n_in, n_out), dtype=np.float32) if _flag(need_dw, "need_dw") else None
    db = np.empty((n_out,), dtype=np.float32) if need_db else None
    cdef float* pdx = _fptr_or_null(dx)
    cdef float* pdw = _fptr_or_null(dw)
    cdef float* pdb = _fptr_or_null(db)
    cdef const float* pdy = _fptr(dy)
    cdef const float* px = _fptr(x)
    cdef const float* pw = _fptr(w)
    cdef const float* prelu_y = _fptr_or_null(y)
    c_sync_thread()
    with nogil:
        c_dense_backward(pdx, pdw, pdb, pdy, px, pw, n, n_in, n_out, prelu_y, skinny)
    return dx, dw, db


cdef extern from "dense.h" namespace "cnnlite":
    void c_dense_bf16_forward "cnnlite::dense_bf16_forward"(float* y, const float* x, const float* w,
                                                            const float* bias, int64_t n, int64_t n_in,
                                                            int64_t n_out, bint relu) except + nogil
    void c_dense_bf16_backward "cnnlite::dense_bf16_backward"(float* dx, float* dw, float* dbias, const float* dy,
                                                              const float* x, const float* w, int64_t n,
                                                              int64_t n_in, int64_t n_out,
                                                              const float* relu_y) except + nogil


def dense_bf16_forward(x, w, b, relu=False):
    """dense_forward in mixed_bfloat16: y = bf16(x) @ bf16(w) accumulated in float32, + b (float32), relu."""
    _f32(x, "x", 2)
    _dense_weights(w, b)
    if x.shape[1] != w.shape[0]:
        raise ValueError(f"x has {x.shape[1]} features (shape {x.shape}) but w expects {w.shape[0]} (shape {w.shape})")
    cdef int64_t n = x.shape[0], n_in = w.shape[0], n_out = w.shape[1]
    y = np.empty((n, n_out), dtype=np.float32)
    cdef float* py = _fptr(y)
    cdef const float* px = _fptr(x)
    cdef const float* pw = _fptr(w)
    cdef const float* pb = _fptr_or_null(b)
    cdef bint c_relu = _flag(relu, "relu")
    c_sync_thread()
    with nogil:
        c_dense_bf16_forward(py, px, pw, pb, n, n_in, n_out, c_relu)
    return y


def dense_bf16_backward(dy, x, w, need_dx=True, need_db=True, y=None, need_dw=True):
    """dense_backward in mixed_bfloat16: (dx or None, dw or None, db or None), the GEMMs on bfloat16-rounded
    operands accumulated in float32, db (and the ReLU mask by y) in float32."""
    _f32(dy, "dy", 2)
    _f32(x, "x", 2)
    _dense_weights(w, None)
    if x.shape[1] != w.shape[0]:
        raise ValueError(f"x has {x.shape[1]} features (shape {x.shape}) but w expects {w.shape[0]} (shape {w.shape})")
    _expect_shape(dy, "dy", (x.shape[0], w.shape[1]))
    if y is not None:
        _f32(y, "y", 2)
        _expect_shape(y, "y", (x.shape[0], w.shape[1]))
    cdef int64_t n = x.shape[0], n_in = w.shape[0], n_out = w.shape[1]
    dx = np.empty((n, n_in), dtype=np.float32) if _flag(need_dx, "need_dx") else None
    dw = np.empty((n_in, n_out), dtype=np.float32) if _flag(need_dw, "need_dw") else None
    db = np.empty((n_out,), dtype=np.float32) if _flag(need_db, "need_db") else None
    cdef float* pdx = _fptr_or_null(dx)
    cdef float* pdw = _fptr_or_null(dw)
    cdef float* pdb = _fptr_or_null(db)
    cdef const float* pdy = _fptr(dy)
    cdef const float* px = _fptr(x)
    cdef const float* pw = _fptr(w)
    cdef const float* prelu_y = _fptr_or_null(y)
    c_sync_thread()
    with nogil:
        c_dense_bf16_backward(pdx, pdw, pdb, pdy, px, pw, n, n_in, n_out, prelu_y)
    return dx, dw, db


def dense_backward_weights_shards(dy, x, shards, need_db=True, y=None, precision=None, algo="gemm"):
    """(dw (S, in, out), db (S, out) or None): dense_backward's weight gradients of each reduction shard, rows
    [shards[s], shards[s + 1]) of dy (n, out) and x (n, in) (and y, as for dense_backward); precision None /
    'float32', or 'bfloat16' (dense_bf16_backward's products); algo as dense_backward's ('gemm skinny' is float32
    only)."""
    if not (precision is None or (isinstance(precision, str) and precision in ("float32", "bfloat16"))):
        raise ValueError(f"precision must be None, 'float32' or 'bfloat16', got {precision!r}")
    cdef bint bf16 = precision == "bfloat16"
    _f32(dy, "dy", 2)
    _f32(x, "x", 2)
    if x.shape[1] == 0 or dy.shape[1] == 0:
        raise ValueError(f"x and dy must have non-zero feature dimensions, got shapes {x.shape} and {dy.shape}")
    _expect_shape(dy, "dy", (x.shape[0], dy.shape[1]))
    if y is not None:
        _f32(y, "y", 2)
        _expect_shape(y, "y", dy.shape)
    cdef int64_t n = x.shape[0], n_in = x.shape[1], n_out = dy.shape[1]
    cdef bint skinny = _dense_algo(algo, n_out)
    if skinny and bf16:
        raise ValueError("algo='gemm skinny' is float32 only, got precision='bfloat16'")
    bounds = _shard_bounds(shards, n)
    cdef int64_t count = len(bounds) - 1
    dw = np.empty((count, n_in, n_out), dtype=np.float32)
    db = np.empty((count, n_out), dtype=np.float32) if _flag(need_db, "need_db") else None
    cdef float* pdw = _fptr(dw)
    cdef float* pdb = _fptr_or_null(db)
    cdef const float* pdy = _fptr(dy)
    cdef const float* px = _fptr(x)
    cdef const float* prelu_y = _fptr_or_null(y)
    cdef const int64_t* pb = <const int64_t*> cnp.PyArray_DATA(bounds)
    c_sync_thread()
    with nogil:
        c_dense_backward_weights_shards(pdw, pdb, pdy, px, n, n_in, n_out, prelu_y, pb, count, bf16, skinny)
    return dw, db
