# Bindings for cpp/gemm.h (see src/README.md for the contract).
cdef extern from "gemm.h" namespace "cnnlite":
    void c_sgemm "cnnlite::sgemm"(bint trans_a, bint trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                                  const float* a, int64_t lda, const float* b, int64_t ldb, float beta, float* c,
                                  int64_t ldc, const float* bias) except + nogil
    const char* c_gemm_isa "cnnlite::gemm_isa"() except + nogil


def gemm(a, b, trans_a=False, trans_b=False):
    """Return op(a) @ op(b) as a new float32 array; op transposes when trans_a / trans_b is true."""
    _f32(a, "a", 2)
    _f32(b, "b", 2)
    cdef bint ta = bool(trans_a), tb = bool(trans_b)
    cdef int64_t m = a.shape[1] if ta else a.shape[0]
    cdef int64_t k = a.shape[0] if ta else a.shape[1]
    cdef int64_t kb = b.shape[1] if tb else b.shape[0]
    cdef int64_t n = b.shape[0] if tb else b.shape[1]
    if k != kb:
        raise ValueError(f"gemm: inner dimensions differ: op(a) has shape ({m}, {k}) (a {a.shape}, "
                         f"trans_a={ta}) but op(b) has shape ({kb}, {n}) (b {b.shape}, trans_b={tb})")
    c = np.empty((m, n), dtype=np.float32)
    cdef int64_t lda = max(<int64_t> a.shape[1], 1)
    cdef int64_t ldb = max(<int64_t> b.shape[1], 1)
    cdef int64_t ldc = max(n, 1)
    cdef const float* pa = _fptr(a)
    cdef const float* pb = _fptr(b)
    cdef float* pc = _fptr(c)
    c_sync_thread()
    with nogil:
        c_sgemm(ta, tb, m, n, k, 1.0, pa, lda, pb, ldb, 0.0, pc, ldc, NULL)
    return c


def cpu_isa():
    """Name of the GEMM micro-kernel in use: 'avx512', 'avx2' or 'generic', the level get_isa() names."""
    return c_gemm_isa().decode("ascii")
