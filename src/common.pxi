# Argument checks shared by every binding. They raise before anything reaches C++.
import numpy as np
cimport numpy as cnp
from libc.stdint cimport int64_t, int32_t, uint64_t, uint8_t

cnp.import_array()


cdef object _f32(object arr, str name, int ndim):
    """Return `arr` if it is a C-contiguous float32 ndarray of rank `ndim` (ndim < 0: any rank), else raise."""
    if not isinstance(arr, np.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray of float32, got {type(arr).__name__}")
    if arr.dtype != np.float32:
        raise TypeError(f"{name} must have dtype float32, got {arr.dtype}")
    if ndim >= 0 and arr.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D, got shape {arr.shape}")
    if not arr.flags.c_contiguous:
        raise ValueError(f"{name} must be C-contiguous (use numpy.ascontiguousarray), got strides {arr.strides}")
    return arr


cdef object _writable(object arr, str name):
    if not arr.flags.writeable:
        raise ValueError(f"{name} must be writeable (it is updated in place)")
    return arr


cdef void _same_shape(object a, str an, object b, str bn) except *:
    if a.shape != b.shape:
        raise ValueError(f"{an} and {bn} must have the same shape, got {a.shape} and {b.shape}")


cdef void _expect_shape(object arr, str name, tuple expected) except *:
    if tuple(arr.shape) != expected:
        raise ValueError(f"{name} must have shape {expected}, got {arr.shape}")


# Largest size, stride, pad or pool extent a binding accepts (cpp/common.h kMaxExtent): sums of a few of them can
# never overflow int64 here or in the kernels.
MAX_EXTENT = 2 ** 31 - 1


cdef int64_t _bounded_int(object v, str name, int64_t lo, str expected) except? -1:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
        raise TypeError(f"{name} must be {expected}, got {type(v).__name__} {v!r}")
    if v < lo:
        raise ValueError(f"{name} must be {expected}, got {v!r}")
    if v > MAX_EXTENT:
        raise ValueError(f"{name} must be {expected} no larger than {MAX_EXTENT}, got {v!r}")
    return <int64_t> v


cdef int64_t _positive(object v, str name) except -1:
    return _bounded_int(v, name, 1, "a positive integer")


cdef int64_t _nonneg(object v, str name) except -1:
    return _bounded_int(v, name, 0, "a non-negative integer")


cdef inline float* _fptr(object arr):
    return <float*> cnp.PyArray_DATA(arr)


cdef inline float* _fptr_or_null(object arr):
    if arr is None:
        return NULL
    return <float*> cnp.PyArray_DATA(arr)


cdef bint _flag(object v, str name) except -1:
    """A bool argument (Python or NumPy bool); anything else raises TypeError naming it."""
    if not isinstance(v, (bool, np.bool_)):
        raise TypeError(f"{name} must be a bool, got {type(v).__name__} {v!r}")
    return bool(v)


cdef object _shard_bounds(object shards, int64_t n):
    """shards: the reduction shards' row boundaries [0, b1, ..., n] (a sequence of ints, increasing) as int64."""
    if isinstance(shards, (str, bytes)) or not hasattr(shards, "__len__"):
        raise TypeError(f"shards must be a sequence of row indices [0, ..., n], got {type(shards).__name__}")
    values = list(shards)
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
            raise TypeError(f"shards must hold ints, got {values!r}")
    ok = len(values) >= 2 and values[0] == 0 and values[len(values) - 1] == n
    cdef Py_ssize_t i
    if ok:
        for i in range(1, len(values)):
            if values[i] <= values[i - 1]:
                ok = False
    if not ok:
        raise ValueError(f"shards must be increasing row indices from 0 to n={n}, got {values!r}")
    return np.ascontiguousarray(values, dtype=np.int64)
