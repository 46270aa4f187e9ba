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


def _channel_blocks(cout):
    """The direct kernel's output-channel blocks (cpp/conv2d_direct.cpp for_channel_blocks): (c0, width)."""
    blocks, c = [], 0
    while c + 16 <= cout:
        blocks.append((c, 16))
        c += 16
    for width in (8, 4):
        if c + width <= cout:
            blocks.append((c, width))
            c += width
    return blocks + [(j, 1) for j in range(c, cout)]


def _madd(acc, x, w, fused):
    """acc + x * w in float32: one rounding (an FMA) when fused, else the product rounded, then the sum."""
    with np.errstate(invalid="ignore", over="ignore"):  # NaN / inf data are meant
        return _madd_unchecked(acc, x, w, fused)


def _madd_unchecked(acc, x, w, fused):
    if fused:
        return (acc.astype(np.float64) + x.astype(np.float64) * w.astype(np.float64)).astype(np.float32)
    return acc + x * w


def fused_widths(isa):
    """The channel-block widths whose multiply-adds the direct kernel's build for `isa` fuses: at avx512 GCC contracts
    the 512-bit (16-channel) and the scalar (1-channel) loops into FMAs; no other level has FMAs there."""
    return {16, 1} if isa == "avx512" else set()


def direct_forward_bits(x, k, b, sh, sw, pt, pb, pl, pr, relu, fused):
    """The direct forward pass rounded as the kernel rounds it (float32, NHWC/HWIO): each output starts at its bias
    (or +0) and adds x * k over its taps inside the input in (ky, kx, ci) order, fused for block widths in `fused`
    (fused_widths); then r < 0 ? 0 : r when relu. (An FMA is emulated as float64 then one rounding to float32,
    exact but for double rounding, which these tests' data do not hit.)"""
    n, h, w, cin = x.shape
    kh, kw, _, cout = k.shape
    oh, ow = (h + pt + pb - kh) // sh + 1, (w + pl + pr - kw) // sw + 1
    xp = np.zeros((n, h + pt + pb, w + pl + pr, cin), np.float32)
    inside = np.zeros(xp.shape[1:3], bool)
    xp[:, pt:pt + h, pl:pl + w] = x
    inside[pt:pt + h, pl:pl + w] = True
    y = np.empty((n, oh, ow, cout), np.float32)
    for c0, width in _channel_blocks(cout):
        cs = slice(c0, c0 + width)
        acc = np.broadcast_to(b[cs] if b is not None else np.zeros(width, np.float32), (n, oh, ow, width)).copy()
        for ky in range(kh):
            for kx in range(kw):
                rows, cols = slice(ky, ky + (oh - 1) * sh + 1, sh), slice(kx, kx + (ow - 1) * sw + 1, sw)
                valid = inside[rows, cols][None, :, :, None]
                for ci in range(cin):
                    new = _madd(acc, xp[:, rows, cols, ci:ci + 1], k[ky, kx, ci, cs], width in fused)
                    acc = np.where(valid, new, acc)
        y[..., cs] = acc
    return np.where(y < 0, np.float32(0), y) if relu else y


def direct_weights_bits(dy, x, kernel, sh, sw, pt, pb, pl, pr, gate, fused, chunk_pixels=2048):
    """The direct weight gradient (dk, dbias) rounded as the kernel rounds it: per chunk of max(1, chunk_pixels //
    (oh * ow)) images, each dk element sums x * g over the chunk's pixels in order from +0 (x = 0 for taps in the
    padding, g = gate > 0 ? dy : 0 when gate is given), fused for block widths in `fused`, dbias sums g; the chunk
    partials are then added from +0 in chunk order."""
    n, h, w, cin = x.shape
    kh, kw = kernel
    _, oh, ow, cout = dy.shape
    g_all = np.where(gate > 0, dy, np.float32(0)) if gate is not None else dy
    xp = np.zeros((n, h + pt + pb + kh, w + pl + pr + kw, cin), np.float32)
    xp[:, pt:pt + h, pl:pl + w] = x
    fuse = np.zeros(cout, bool)
    for c0, width in _channel_blocks(cout):
        fuse[c0:c0 + width] = width in fused
    imgs = max(1, chunk_pixels // (oh * ow))
    dk, db = np.zeros((kh * kw * cin, cout), np.float32), np.zeros(cout, np.float32)
    for i0 in range(0, n, imgs):
        acc, bacc = np.zeros_like(dk), np.zeros_like(db)
        for img in range(i0, min(n, i0 + imgs)):
            for oy in range(oh):
                for ox in range(ow):
                    g = g_all[img, oy, ox]
                    xt = xp[img, oy * sh:oy * sh + kh, ox * sw:ox * sw + kw].reshape(-1, 1)
                    acc = np.where(fuse, _madd(acc, xt, g, True), _madd(acc, xt, g, False))
                    bacc = bacc + g
        dk, db = dk + acc, db + bacc
    return dk.reshape(kh, kw, cin, cout), db
