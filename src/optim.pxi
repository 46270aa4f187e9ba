# Bindings for cpp/optim.h (see src/README.md for the contract).
cdef extern from "optim.h" namespace "cnnlite":
    void c_adam_update "cnnlite::adam_update"(
        float* w, float* m, float* v, const float* g, int64_t n, double lr_t, double beta1, double beta2,
        double eps) except + nogil
    void c_sgd_update "cnnlite::sgd_update"(
        float* w, float* velocity, const float* g, int64_t n, double lr, double momentum, bint nesterov) except + nogil
    void c_rmsprop_update "cnnlite::rmsprop_update"(
        float* w, float* acc, float* mom, float* mean_grad, const float* g, int64_t n, double lr, double rho,
        double momentum, double eps) except + nogil


cdef double _real_arg(object v, str name, double lo, double hi, bint hi_open) except? -1.0:
    """A finite real hyper-parameter in [lo, hi] (or [lo, hi) when hi_open)."""
    if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a float, got {type(v).__name__} {v!r}")
    cdef double d = float(v)
    if not (lo <= d <= hi) or (hi_open and d == hi):
        interval = f"[{lo}, {hi})" if hi_open else f"[{lo}, {hi}]"
        raise ValueError(f"{name} must be in {interval}, got {v!r}")
    return d


cdef void _check_state(object w, object other, str other_name) except *:
    _f32(other, other_name, -1)
    _same_shape(w, "w", other, other_name)
    _writable(other, other_name)


cdef void _check_weights(object w, object g) except *:
    _f32(w, "w", -1)
    _writable(w, "w")
    _f32(g, "g", -1)
    _same_shape(w, "w", g, "g")


def adam_update(w, g, m, v, lr_t, beta1, beta2, eps):
    """Keras's Adam step, in place on w, m, v (float32, same shape as g). lr_t = lr*sqrt(1-beta2**t)/(1-beta1**t)."""
    _check_weights(w, g)
    _check_state(w, m, "m")
    _check_state(w, v, "v")
    cdef double a = _real_arg(lr_t, "lr_t", 0.0, float("inf"), True)
    cdef double b1 = _real_arg(beta1, "beta1", 0.0, 1.0, True)
    cdef double b2 = _real_arg(beta2, "beta2", 0.0, 1.0, True)
    cdef double e = _real_arg(eps, "eps", 0.0, float("inf"), True)
    cdef float* wp = _fptr(w)
    cdef float* mp = _fptr(m)
    cdef float* vp = _fptr(v)
    cdef const float* gp = _fptr(g)
    cdef int64_t n = w.size
    c_sync_thread()
    with nogil:
        c_adam_update(wp, mp, vp, gp, n, a, b1, b2, e)


def sgd_update(w, g, velocity, lr, momentum, nesterov):
    """Keras's SGD step in place on w (and velocity); velocity may be None when momentum == 0."""
    _check_weights(w, g)
    cdef double rate = _real_arg(lr, "lr", 0.0, float("inf"), True)
    cdef double mom = _real_arg(momentum, "momentum", 0.0, 1.0, False)
    if not isinstance(nesterov, (bool, np.bool_)):
        raise TypeError(f"nesterov must be a bool, got {type(nesterov).__name__} {nesterov!r}")
    if velocity is None:
        if mom != 0.0:
            raise ValueError(f"velocity is required when momentum != 0 (momentum={momentum!r})")
    else:
        _check_state(w, velocity, "velocity")
    cdef float* wp = _fptr(w)
    cdef float* vp = _fptr_or_null(velocity)
    cdef const float* gp = _fptr(g)
    cdef int64_t n = w.size
    cdef bint nest = bool(nesterov)
    c_sync_thread()
    with nogil:
        c_sgd_update(wp, vp, gp, n, rate, mom, nest)


def rmsprop_update(w, g, acc, lr, rho, eps, momentum=0.0, mom=None, mean_grad=None):
    """Keras's RMSprop step in place on w, acc (and mom, mean_grad). momentum > 0 needs the buffer mom; passing
    mean_grad selects the centered variant."""
    _check_weights(w, g)
    _check_state(w, acc, "acc")
    cdef double rate = _real_arg(lr, "lr", 0.0, float("inf"), True)
    cdef double r = _real_arg(rho, "rho", 0.0, 1.0, True)
    cdef double e = _real_arg(eps, "eps", 0.0, float("inf"), True)
    cdef double m = _real_arg(momentum, "momentum", 0.0, 1.0, False)
    if mom is None:
        if m != 0.0:
            raise ValueError(f"mom is required when momentum != 0 (momentum={momentum!r})")
    else:
        _check_state(w, mom, "mom")
    if mean_grad is not None:
        _check_state(w, mean_grad, "mean_grad")
    cdef float* wp = _fptr(w)
    cdef float* ap = _fptr(acc)
    cdef float* mp = _fptr_or_null(mom)
    cdef float* gmp = _fptr_or_null(mean_grad)
    cdef const float* gp = _fptr(g)
    cdef int64_t n = w.size
    c_sync_thread()
    with nogil:
        c_rmsprop_update(wp, ap, mp, gmp, gp, n, rate, r, m, e)
