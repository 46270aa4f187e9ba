"""Straightforward float64 NumPy references for the GEMM, dense and conv2d kernels (no im2col)."""
import numpy as np


def same_pads(size, k, stride):
    """TensorFlow 'same' padding along one axis: (before, after)."""
    out = -(-size // stride)
    total = max((out - 1) * stride + k - size, 0)
    return total // 2, total - total // 2


def conv_pads(mode, h, w, kh, kw, sh, sw):
    """(top, bottom, left, right) for 'valid', 'same', or an explicit 4-tuple passed through."""
    if mode == "valid":
        return 0, 0, 0, 0
    if mode == "same":
        return same_pads(h, kh, sh) + same_pads(w, kw, sw)
    return mode


def conv_data(rng, n, h, w, cin, kh, kw, cout):
    """float32 input (n, h, w, cin), kernel (kh, kw, cin, cout) scaled by 1/sqrt(fan-in), bias (cout)."""
    x = rng.standard_normal((n, h, w, cin)).astype(np.float32)
    k = (rng.standard_normal((kh, kw, cin, cout)) / np.sqrt(kh * kw * cin)).astype(np.float32)
    b = rng.standard_normal(cout).astype(np.float32)
    return x, k, b


def gemm_ref(a, b, trans_a=False, trans_b=False):
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    return (a.T if trans_a else a) @ (b.T if trans_b else b)


def dense_forward_ref(x, w, b=None):
    y = np.asarray(x, np.float64) @ np.asarray(w, np.float64)
    return y if b is None else y + np.asarray(b, np.float64)


def dense_backward_ref(dy, x, w):
    dy, x, w = (np.asarray(t, np.float64) for t in (dy, x, w))
    return dy @ w.T, x.T @ dy, dy.sum(axis=0)


def _out_size(size, k, stride, before, after):
    return (size + before + after - k) // stride + 1


def _taps(xp, ky, kx, sh, sw, oh, ow):
    """The (n, oh, ow, cin) slice of the padded input that kernel tap (ky, kx) sees."""
    return xp[:, ky:ky + sh * (oh - 1) + 1:sh, kx:kx + sw * (ow - 1) + 1:sw, :]


def conv2d_forward_ref(x, w, b, sh, sw, pt, pb, pl, pr):
    x = np.asarray(x, np.float64)
    w = np.asarray(w, np.float64)
    n, h, wd, _ = x.shape
    kh, kw, _, cout = w.shape
    oh, ow = _out_size(h, kh, sh, pt, pb), _out_size(wd, kw, sw, pl, pr)
    xp = np.pad(x, ((0, 0), (pt, pb), (pl, pr), (0, 0)))
    y = np.zeros((n, oh, ow, cout))
    for ky in range(kh):
        for kx in range(kw):
            y += np.einsum("nhwc,co->nhwo", _taps(xp, ky, kx, sh, sw, oh, ow), w[ky, kx])
    return y if b is None else y + np.asarray(b, np.float64)


def conv2d_backward_ref(dy, x, w, sh, sw, pt, pb, pl, pr):
    """(dx, dw, db) for conv2d_forward_ref."""
    dy = np.asarray(dy, np.float64)
    x = np.asarray(x, np.float64)
    w = np.asarray(w, np.float64)
    n, h, wd, _ = x.shape
    kh, kw, _, _ = w.shape
    _, oh, ow, _ = dy.shape
    xp = np.pad(x, ((0, 0), (pt, pb), (pl, pr), (0, 0)))
    dxp = np.zeros_like(xp)
    dw = np.zeros_like(w)
    for ky in range(kh):
        for kx in range(kw):
            dw[ky, kx] = np.einsum("nhwc,nhwo->co", _taps(xp, ky, kx, sh, sw, oh, ow), dy)
            _taps(dxp, ky, kx, sh, sw, oh, ow)[...] += np.einsum("nhwo,co->nhwc", dy, w[ky, kx])
    return dxp[:, pt:pt + h, pl:pl + wd, :], dw, dy.sum(axis=(0, 1, 2))


def numeric_grad(f, x, eps=1e-6):
    """Central differences of the scalar function f at the float64 array x (modified in place, then restored)."""
    g = np.zeros_like(x)
    it = np.nditer(x, flags=["multi_index"])
    for _ in it:
        i = it.multi_index
        old = x[i]
        x[i] = old + eps
        up = f()
        x[i] = old - eps
        down = f()
        x[i] = old
        g[i] = (up - down) / (2 * eps)
    return g
