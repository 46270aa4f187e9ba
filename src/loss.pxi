# Bindings for cpp/loss.h (see src/README.md for the contract).
cdef extern from "loss.h" namespace "cnnlite":
    double c_softmax_xent "cnnlite::softmax_xent"(
        float* probs, float* dlogits, const float* logits, const float* targets, int64_t n, int64_t k) except + nogil
    double c_sparse_softmax_xent "cnnlite::sparse_softmax_xent"(
        float* probs, float* dlogits, const float* logits, const int32_t* labels, int64_t n, int64_t k) except + nogil
    double c_sparse_softmax_xent "cnnlite::sparse_softmax_xent"(
        float* probs, float* dlogits, const float* logits, const int64_t* labels, int64_t n, int64_t k) except + nogil
    double c_xent_forward "cnnlite::xent_forward"(
        const float* probs, const float* targets, int64_t n, int64_t k) except + nogil
    void c_xent_backward "cnnlite::xent_backward"(
        float* dprobs, const float* probs, const float* targets, int64_t n, int64_t k) except + nogil
    double c_mse_forward "cnnlite::mse_forward"(
        const float* pred, const float* targets, int64_t n, int64_t k) except + nogil
    void c_mse_backward "cnnlite::mse_backward"(
        float* dpred, const float* pred, const float* targets, int64_t n, int64_t k) except + nogil


cdef void _check_batch_classes(object a, str name) except *:
    if a.shape[0] < 1 or a.shape[1] < 1:
        raise ValueError(f"{name} must have at least one row and one column, got shape {a.shape}")


cdef void _check_pair_2d(object a, str an, object b, str bn) except *:
    _f32(a, an, 2)
    _f32(b, bn, 2)
    _same_shape(a, an, b, bn)
    _check_batch_classes(a, an)


def softmax_xent(logits, targets):
    """Fused softmax + categorical cross-entropy on logits (n, k) and targets (n, k) -> (loss, probs, dlogits);
    loss is the batch mean with probabilities clipped to [1e-7, 1 - 1e-7], dlogits = (probs - targets) / n."""
    _check_pair_2d(logits, "logits", targets, "targets")
    probs = np.empty_like(logits)
    dlogits = np.empty_like(logits)
    cdef float* pp = _fptr(probs)
    cdef float* dp = _fptr(dlogits)
    cdef const float* lp = _fptr(logits)
    cdef const float* tp = _fptr(targets)
    cdef int64_t n = logits.shape[0], k = logits.shape[1]
    cdef double loss
    c_sync_thread()
    with nogil:
        loss = c_softmax_xent(pp, dp, lp, tp, n, k)
    return loss, probs, dlogits


def sparse_softmax_xent(logits, labels):
    """softmax_xent with integer labels (n,) of dtype int32 or int64, each in [0, k)."""
    _f32(logits, "logits", 2)
    _check_batch_classes(logits, "logits")
    if not isinstance(labels, np.ndarray):
        raise TypeError(f"labels must be a numpy.ndarray of int32 or int64, got {type(labels).__name__}")
    if labels.dtype != np.int32 and labels.dtype != np.int64:
        raise TypeError(f"labels must have dtype int32 or int64, got {labels.dtype}")
    _expect_shape(labels, "labels", (logits.shape[0],))
    if not labels.flags.c_contiguous:
        raise ValueError(f"labels must be C-contiguous (use numpy.ascontiguousarray), got strides {labels.strides}")
    probs = np.empty_like(logits)
    dlogits = np.empty_like(logits)
    cdef float* pp = _fptr(probs)
    cdef float* dp = _fptr(dlogits)
    cdef const float* lp = _fptr(logits)
    cdef const int32_t* l32 = <int32_t*> cnp.PyArray_DATA(labels)
    cdef const int64_t* l64 = <int64_t*> cnp.PyArray_DATA(labels)
    cdef bint wide = labels.dtype == np.int64
    cdef int64_t n = logits.shape[0], k = logits.shape[1]
    cdef double loss
    c_sync_thread()
    with nogil:
        if wide:
            loss = c_sparse_softmax_xent(pp, dp, lp, l64, n, k)
        else:
            loss = c_sparse_softmax_xent(pp, dp, lp, l32, n, k)
    return loss, probs, dlogits


def xent_forward(probs, targets):
    """Categorical cross-entropy on probabilities (n, k), as Keras: rows divided by their sum, clipped to
    [1e-7, 1 - 1e-7]; returns the batch mean."""
    _check_pair_2d(probs, "probs", targets, "targets")
    cdef const float* pp = _fptr(probs)
    cdef const float* tp = _fptr(targets)
    cdef int64_t n = probs.shape[0], k = probs.shape[1]
    cdef double loss
    c_sync_thread()
    with nogil:
        loss = c_xent_forward(pp, tp, n, k)
    return loss


def xent_backward(probs, targets):
    """Gradient of xent_forward with respect to probs (n, k)."""
    _check_pair_2d(probs, "probs", targets, "targets")
    dprobs = np.empty_like(probs)
    cdef float* dp = _fptr(dprobs)
    cdef const float* pp = _fptr(probs)
    cdef const float* tp = _fptr(targets)
    cdef int64_t n = probs.shape[0], k = probs.shape[1]
    c_sync_thread()
    with nogil:
        c_xent_backward(dp, pp, tp, n, k)
    return dprobs


cdef tuple _mse_rows(object pred, object targets):
    _f32(pred, "pred", -1)
    _f32(targets, "targets", -1)
    _same_shape(pred, "pred", targets, "targets")
    if pred.ndim < 1 or pred.size < 1:
        raise ValueError(f"pred must have at least one dimension and one element, got shape {pred.shape}")
    k = pred.shape[pred.ndim - 1]
    return pred.size // k, k


def mse_forward(pred, targets):
    """Mean squared error as Keras: mean over the last axis, then over the remaining (batch) elements."""
    rows, cols = _mse_rows(pred, targets)
    cdef const float* pp = _fptr(pred)
    cdef const float* tp = _fptr(targets)
    cdef int64_t n = rows, k = cols
    cdef double loss
    c_sync_thread()
    with nogil:
        loss = c_mse_forward(pp, tp, n, k)
    return loss


def mse_backward(pred, targets):
    """Gradient of mse_forward with respect to pred: 2 (pred - targets) / pred.size."""
    rows, cols = _mse_rows(pred, targets)
    dpred = np.empty_like(pred)
    cdef float* dp = _fptr(dpred)
    cdef const float* pp = _fptr(pred)
    cdef const float* tp = _fptr(targets)
    cdef int64_t n = rows, k = cols
    c_sync_thread()
    with nogil:
        c_mse_backward(dp, pp, tp, n, k)
    return dpred
