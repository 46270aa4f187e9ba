# Bindings for cpp/metrics.h (see src/README.md for the contract).
cdef extern from "metrics.h" namespace "cnnlite":
    int64_t c_categorical_matches "cnnlite::categorical_matches"(const float* y_true, const float* y_pred,
                                                                 int64_t n, int64_t k) except + nogil


def categorical_matches(y_true, y_pred):
    """How many rows of y_true and y_pred (n, k), k >= 1, have the same argmax (NumPy's: first maximum, NaN
    largest): the count categorical accuracy adds up."""
    _f32(y_true, "y_true", 2)
    _f32(y_pred, "y_pred", 2)
    _same_shape(y_true, "y_true", y_pred, "y_pred")
    if y_true.shape[1] < 1:
        raise ValueError(f"y_true must have at least one column, got shape {y_true.shape}")
    cdef const float* tp = _fptr(y_true)
    cdef const float* pp = _fptr(y_pred)
    cdef int64_t n = y_true.shape[0], k = y_true.shape[1], matches
    with nogil:
        matches = c_categorical_matches(tp, pp, n, k)
    return int(matches)
