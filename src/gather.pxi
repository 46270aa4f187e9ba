# Bindings for cpp/gather.h (see src/README.md for the contract).
cdef extern from "gather.h" namespace "cnnlite":
    void c_take_rows "cnnlite::take_rows"(
        void* out, const void* src, const int64_t* rows, int64_t n_rows, int64_t n_src, int64_t row_bytes) except + nogil


def take_rows(src, rows, out=None):
    """out[i] = src[rows[i]] (rows: int64 1-D, each in [0, len(src))); `out` (same dtype, shape
    (len(rows),) + src.shape[1:], C-contiguous, writeable) is filled and returned, or allocated when None."""
    if not isinstance(src, np.ndarray):
        raise TypeError(f"src must be a numpy.ndarray, got {type(src).__name__}")
    if src.ndim < 1:
        raise ValueError(f"src must be at least 1-D, got shape {src.shape}")
    if src.dtype.hasobject:
        raise TypeError(f"src must hold plain numbers, got dtype {src.dtype}")
    if not src.flags.c_contiguous:
        raise ValueError(f"src must be C-contiguous (use numpy.ascontiguousarray), got strides {src.strides}")
    if not isinstance(rows, np.ndarray) or rows.dtype != np.int64 or rows.ndim != 1:
        raise TypeError(f"rows must be a 1-D numpy.ndarray of int64, got "
                        f"{type(rows).__name__ if not isinstance(rows, np.ndarray) else f'{rows.dtype} {rows.shape}'}")
    if not rows.flags.c_contiguous:
        raise ValueError(f"rows must be C-contiguous, got strides {rows.strides}")
    shape = (rows.shape[0],) + src.shape[1:]
    if out is None:
        out = np.empty(shape, src.dtype)
    else:
        if not isinstance(out, np.ndarray):
            raise TypeError(f"out must be a numpy.ndarray or None, got {type(out).__name__}")
        if out.dtype != src.dtype:
            raise TypeError(f"out must have the dtype of src ({src.dtype}), got {out.dtype}")
        _expect_shape(out, "out", shape)
        if not out.flags.c_contiguous:
            raise ValueError(f"out must be C-contiguous, got strides {out.strides}")
        _writable(out, "out")
    cdef int64_t n_rows = rows.shape[0], n_src = src.shape[0]
    cdef int64_t row_bytes = src.dtype.itemsize * (src.size // n_src if n_src else 0)
    if n_src == 0:
        row_bytes = 0
        if n_rows:
            raise ValueError(f"rows must be empty when src has no rows, got {n_rows} indices")
    cdef void* po = cnp.PyArray_DATA(out)
    cdef const void* ps = cnp.PyArray_DATA(src)
    cdef const int64_t* pr = <const int64_t*> cnp.PyArray_DATA(rows)
    c_sync_thread()
    with nogil:
        c_take_rows(po, ps, pr, n_rows, n_src, row_bytes)
    return out
