"""An independent float64 NumPy reference for small Sequential networks: forward pass, manual backward pass and
the optimizers' update rules, written from the maths (not from cnnlite's code) for the model-level tests.

A network is a list of ("conv", dict(stride=(sh, sw), padding=..., act=...)), ("maxpool"/"avgpool",
dict(pool=(ph, pw), stride=(sh, sw), padding=...)), ("flatten", {}), ("dense", dict(act=...)) specs and a list of
float64 parameter arrays (kernel, bias per conv/dense, in order).
"""
import math

import numpy as np


def tf_same(size, k, s):
    out = math.ceil(size / s)
    total = max((out - 1) * s + k - size, 0)
    return total // 2, total - total // 2


def _pads(h, w, kh, kw, sh, sw, padding):
    if padding == "valid":
        return (0, 0), (0, 0)
    return tf_same(h, kh, sh), tf_same(w, kw, sw)


def _act(z, name):
    if name == "relu":
        return np.maximum(z, 0.0)
    if name == "sigmoid":
        return 1.0 / (1.0 + np.exp(-z))
    if name == "tanh":
        return np.tanh(z)
    if name == "softmax":
        e = np.exp(z - z.max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True)
    assert name == "linear"
    return z


def _act_grad(dy, z, y, name):
    if name == "relu":
        return dy * (z > 0)
    if name == "sigmoid":
        return dy * y * (1.0 - y)
    if name == "tanh":
        return dy * (1.0 - y * y)
    if name == "softmax":
        return y * (dy - (dy * y).sum(axis=-1, keepdims=True))
    return dy


def conv_forward(x, w, b, stride, padding):
    n, h, wd, c = x.shape
    kh, kw, _, co = w.shape
    sh, sw = stride
    (pt, pb), (pl, pr) = _pads(h, wd, kh, kw, sh, sw, padding)
    xp = np.pad(x, ((0, 0), (pt, pb), (pl, pr), (0, 0)))
    oh, ow = (h + pt + pb - kh) // sh + 1, (wd + pl + pr - kw) // sw + 1
    y = np.zeros((n, oh, ow, co)) + b
    for i in range(oh):
        for j in range(ow):
            patch = xp[:, i * sh:i * sh + kh, j * sw:j * sw + kw, :]            # (n, kh, kw, c)
            y[:, i, j, :] += np.tensordot(patch, w, axes=([1, 2, 3], [0, 1, 2]))
    return y


def conv_backward(dy, x, w, stride, padding):
    n, h, wd, c = x.shape
    kh, kw, _, co = w.shape
    sh, sw = stride
    (pt, pb), (pl, pr) = _pads(h, wd, kh, kw, sh, sw, padding)
    xp = np.pad(x, ((0, 0), (pt, pb), (pl, pr), (0, 0)))
    dxp = np.zeros_like(xp)
    dw = np.zeros_like(w)
    for i in range(dy.shape[1]):
        for j in range(dy.shape[2]):
            patch = xp[:, i * sh:i * sh + kh, j * sw:j * sw + kw, :]
            g = dy[:, i, j, :]                                                  # (n, co)
            dw += np.tensordot(patch, g, axes=([0], [0]))                       # (kh, kw, c, co)
            dxp[:, i * sh:i * sh + kh, j * sw:j * sw + kw, :] += np.tensordot(g, w, axes=([1], [3]))
    return dxp[:, pt:pt + h, pl:pl + wd, :], dw, dy.sum(axis=(0, 1, 2))


def pool_forward(x, pool, stride, padding, kind):
    """Max or mean over windows; padded cells never win a max and are not counted in a mean."""
    n, h, w, c = x.shape
    (pt, pb), (pl, pr) = _pads(h, w, *pool, *stride, padding)
    oh, ow = (h + pt + pb - pool[0]) // stride[0] + 1, (w + pl + pr - pool[1]) // stride[1] + 1
    y = np.zeros((n, oh, ow, c))
    windows = {}
    for i in range(oh):
        for j in range(ow):
            r0, c0 = i * stride[0] - pt, j * stride[1] - pl
            rows = slice(max(r0, 0), min(r0 + pool[0], h))
            cols = slice(max(c0, 0), min(c0 + pool[1], w))
            cell = x[:, rows, cols, :]
            y[:, i, j, :] = cell.max(axis=(1, 2)) if kind == "max" else cell.mean(axis=(1, 2))
            windows[i, j] = (rows, cols)
    return y, windows


def pool_backward(dy, x, y, windows, kind):
    dx = np.zeros_like(x)
    for (i, j), (rows, cols) in windows.items():
        cell = x[:, rows, cols, :]
        g = dy[:, i, j, :][:, None, None, :]
        if kind == "max":
            dx[:, rows, cols, :] += (cell == y[:, i, j, :][:, None, None, :]) * g
        else:
            dx[:, rows, cols, :] += g / (cell.shape[1] * cell.shape[2])
    return dx


def forward(spec, params, x):
    """Output probabilities (or activations) and the per-layer tape for `backward`."""
    tape, h, p = [], np.asarray(x, np.float64), 0
    for kind, cfg in spec:
        if kind == "conv":
            z = conv_forward(h, params[p], params[p + 1], cfg["stride"], cfg["padding"])
            y = _act(z, cfg["act"])
            tape.append((kind, cfg, h, z, y, p))
            h, p = y, p + 2
        elif kind == "dense":
            z = h @ params[p] + params[p + 1]
            y = _act(z, cfg["act"])
            tape.append((kind, cfg, h, z, y, p))
            h, p = y, p + 2
        elif kind in ("maxpool", "avgpool"):
            y, windows = pool_forward(h, cfg["pool"], cfg["stride"], cfg["padding"], kind[:3])
            tape.append((kind, cfg, h, windows, y, None))
            h = y
        elif kind == "flatten":
            tape.append((kind, cfg, h, None, None, None))
            h = h.reshape(len(h), -1)
        else:
            raise ValueError(kind)
    return h, tape


def crossentropy(probs, targets):
    return float(-(targets * np.log(np.clip(probs, 1e-7, 1 - 1e-7))).sum(axis=1).mean())


def gradients(spec, params, x, targets):
    """(loss, grads) for categorical cross-entropy on a network ending in softmax."""
    probs, tape = forward(spec, params, x)
    loss = crossentropy(probs, targets)
    grads = [None] * len(params)
    d = (probs - targets) / len(x)          # d loss / d logits of the final softmax
    last = True
    for kind, cfg, h, z, y, p in reversed(tape):
        if kind == "dense":
            dz = d if last else _act_grad(d, z, y, cfg["act"])
            grads[p], grads[p + 1] = h.T @ dz, dz.sum(axis=0)
            d = dz @ params[p].T
        elif kind == "conv":
            dz = d if last else _act_grad(d, z, y, cfg["act"])
            d, grads[p], grads[p + 1] = conv_backward(dz, h, params[p], cfg["stride"], cfg["padding"])
        elif kind in ("maxpool", "avgpool"):
            d = pool_backward(d, h, y, z, kind[:3])
        elif kind == "flatten":
            d = d.reshape(h.shape)
        last = False
    return loss, grads


def sgd(params, grads, lr):
    return [w - lr * g for w, g in zip(params, grads)]


class AdamRef:
    def __init__(self, lr=0.001, b1=0.9, b2=0.999, eps=1e-7):
        self.lr, self.b1, self.b2, self.eps, self.t = lr, b1, b2, eps, 0
        self.m = self.v = None

    def step(self, params, grads):
        if self.m is None:
            self.m = [np.zeros_like(w) for w in params]
            self.v = [np.zeros_like(w) for w in params]
        self.t += 1
        lr_t = self.lr * math.sqrt(1 - self.b2 ** self.t) / (1 - self.b1 ** self.t)
        out = []
        for i, (w, g) in enumerate(zip(params, grads)):
            self.m[i] = self.b1 * self.m[i] + (1 - self.b1) * g
            self.v[i] = self.b2 * self.v[i] + (1 - self.b2) * g * g
            out.append(w - lr_t * self.m[i] / (np.sqrt(self.v[i]) + self.eps))
        return out
