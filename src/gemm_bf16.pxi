# Bindings for cpp/gemm_bf16.h (see src/README.md for the contract).
cdef extern from "gemm_bf16.h" namespace "cnnlite":
    void c_gemm_bf16 "cnnlite::gemm_bf16"(float* c, const float* a, const float* b, const float* bias, int64_t m,
                                          int64_t n, int64_t k, bint trans_a, bint trans_b, bint relu) except + nogil
    const char* c_gemm_bf16_isa "cnnlite::gemm_bf16_isa"() except + nogil
    bint c_cpu_has_avx512_bf16 "cnnlite::cpu_has_avx512_bf16"() except + nogil


def gemm_bf16(a, b, trans_a=False, trans_b=False):
    """Return bf16(op(a)) @ bf16(op(b)) accumulated in float32 (vdpbf16ps order) as a new float32 array."""
    _f32(a, "a", 2)
    _f32(b, "b", 2)
    cdef bint ta = _flag(trans_a, "trans_a"), tb = _flag(trans_b, "trans_b")
    cdef int64_t m = a.shape[1] if ta else a.shape[0]
    cdef int64_t k = a.shape[0] if ta else a.shape[1]
    cdef int64_t kb = b.shape[1] if tb else b.shape[0]
    cdef int64_t n = b.shape[0] if tb else b.shape[1]
    if k != kb:
        raise ValueError(f"gemm_bf16: inner dimensions differ: op(a) has shape ({m}, {k}) (a {a.shape}, "
                         f"trans_a={ta}) but op(b) has shape ({kb}, {n}) (b {b.shape}, trans_b={tb})")
    c = np.empty((m, n), dtype=np.float32)
    cdef const float* pa = _fptr(a)
    cdef const float* pb = _fptr(b)
    cdef float* pc = _fptr(c)
    c_sync_thread()
    with nogil:
        c_gemm_bf16(pc, pa, pb, NULL, m, n, k, ta, tb, False)
    return c


def gemm_bf16_isa():
    """'avx512_bf16' when the bfloat16 GEMM runs vdpbf16ps (the CPU has AVX512_BF16 and get_isa() is 'avx512'), else
    'portable' (same bits)."""
    return c_gemm_bf16_isa().decode("ascii")


def cpu_has_avx512_bf16():
    """True when this CPU has AVX512_BF16, whatever the ISA cap."""
    return bool(c_cpu_has_avx512_bf16())
