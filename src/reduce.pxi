# Bindings for cpp/reduce.h (see src/README.md for the contract).
cdef extern from "reduce.h" namespace "cnnlite":
    void c_partials_sum "cnnlite::partials_sum"(float* total, const float* parts, int64_t count,
                                                int64_t size) except + nogil


def partials_sum(parts):
    """total (d1, ...) = parts[0] + parts[1] + ... in order, for parts (count, d1, ...) with count >= 1."""
    _f32(parts, "parts", -1)
    if parts.ndim < 1 or parts.shape[0] < 1:
        raise ValueError(f"parts must have a leading axis of at least 1 partial, got shape {parts.shape}")
    total = np.empty(parts.shape[1:], dtype=np.float32)
    cdef float* pt = _fptr(total)
    cdef const float* pp = _fptr(parts)
    cdef int64_t count = parts.shape[0], size = total.size
    c_sync_thread()
    with nogil:
        c_partials_sum(pt, pp, count, size)
    return total
