"""NumPy references (float64 unless said otherwise) for the pooling, activation, loss, dropout and optimizer kernels.

Written for clarity, not speed: loops over output pixels, vectorised over batch and channels.
"""
import numpy as np


def same_pads(size, pool, stride):
    """TensorFlow 'same' padding for one dimension: (before, after)."""
    out = -(-size // stride)
    total = max((out - 1) * stride + pool - size, 0)
    return total // 2, total - total // 2


def pool_out_size(size, pool, stride, before, after):
    return (size + before + after - pool) // stride + 1


def _windows(h, w, ph, pw, sh, sw, pads):
    """Yield (i, j, rows, cols): output position and the real input rows/cols its window covers."""
    pt, pb, pl, pr = pads
    for i in range(pool_out_size(h, ph, sh, pt, pb)):
        r0 = i * sh - pt
        rows = range(max(r0, 0), min(r0 + ph, h))
        for j in range(pool_out_size(w, pw, sw, pl, pr)):
            c0 = j * sw - pl
            yield i, j, rows, range(max(c0, 0), min(c0 + pw, w))


def maxpool2d(x, ph, pw, sh, sw, pads):
    """(y, argmax) for NHWC x; argmax = flat r*w + c index of the first maximum in row-major window order."""
    n, h, w, c = x.shape
    oh, ow = pool_out_size(h, ph, sh, pads[0], pads[1]), pool_out_size(w, pw, sw, pads[2], pads[3])
    y = np.empty((n, oh, ow, c), dtype=np.float64)
    argmax = np.empty((n, oh, ow, c), dtype=np.int64)
    for i, j, rows, cols in _windows(h, w, ph, pw, sh, sw, pads):
        cells = [(r, col) for r in rows for col in cols]          # row-major window order
        vals = np.stack([x[:, r, col, :] for r, col in cells])    # (cells, n, c)
        first = np.argmax(vals, axis=0)                           # np.argmax returns the first maximum
        y[:, i, j, :] = np.take_along_axis(vals, first[None], 0)[0]
        flat = np.array([r * w + col for r, col in cells])
        argmax[:, i, j, :] = flat[first]
    return y, argmax


def maxpool2d_backward(dy, argmax, h, w):
    n, oh, ow, c = dy.shape
    dx = np.zeros((n, h * w, c), dtype=np.float64)
    nn, _, _, cc = np.meshgrid(np.arange(n), np.arange(oh), np.arange(ow), np.arange(c), indexing="ij")
    np.add.at(dx, (nn.ravel(), argmax.ravel(), cc.ravel()), dy.ravel())
    return dx.reshape(n, h, w, c)


def avgpool2d(x, ph, pw, sh, sw, pads):
    """Mean over the real cells of each window (Keras excludes padding from the count)."""
    n, h, w, c = x.shape
    oh, ow = pool_out_size(h, ph, sh, pads[0], pads[1]), pool_out_size(w, pw, sw, pads[2], pads[3])
    y = np.empty((n, oh, ow, c), dtype=np.float64)
    for i, j, rows, cols in _windows(h, w, ph, pw, sh, sw, pads):
        y[:, i, j, :] = x[:, rows.start:rows.stop, cols.start:cols.stop, :].mean(axis=(1, 2))
    return y


def avgpool2d_backward(dy, h, w, ph, pw, sh, sw, pads):
    n, _, _, c = dy.shape
    dx = np.zeros((n, h, w, c), dtype=np.float64)
    for i, j, rows, cols in _windows(h, w, ph, pw, sh, sw, pads):
        count = len(rows) * len(cols)
        dx[:, rows.start:rows.stop, cols.start:cols.stop, :] += dy[:, i, j, None, None, :] / count
    return dx


def relu(x):
    return np.maximum(x, 0.0)


def sigmoid(x):
    e = np.exp(-np.abs(x))   # never overflows
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def softmax(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def softmax_backward(dy, y):
    return y * (dy - (dy * y).sum(axis=-1, keepdims=True))


EPSILON = 1e-7


def softmax_xent(logits, targets):
    """(loss, probs, dlogits): batch mean of -sum t log(clip(p)), dlogits = (p - t) / n."""
    p = softmax(logits)
    loss = -(targets * np.log(np.clip(p, EPSILON, 1 - EPSILON))).sum(axis=1).mean()
    return loss, p, (p - targets) / len(logits)


def one_hot(labels, k):
    return np.eye(k)[labels]


def xent(probs, targets):
    """Keras categorical_crossentropy(from_logits=False), batch mean."""
    q = probs / probs.sum(axis=-1, keepdims=True)
    q = np.clip(q, EPSILON, 1 - EPSILON)
    return -(targets * np.log(q)).sum(axis=-1).mean()


def xent_backward(probs, targets):
    n = len(probs)
    s = probs.sum(axis=-1, keepdims=True)
    q = probs / s
    g = np.where((q >= EPSILON) & (q <= 1 - EPSILON), -targets / q, 0.0) / n
    return (g - (g * q).sum(axis=-1, keepdims=True)) / s


def mse(pred, targets):
    return ((pred - targets) ** 2).mean(axis=-1).mean()


def mse_backward(pred, targets):
    return 2.0 * (pred - targets) / pred.size


def numerical_grad(f, x, eps=1e-6):
    """Central finite differences of the scalar function f at x (float64)."""
    x = x.astype(np.float64).copy()
    grad = np.empty_like(x)
    flat, gflat = x.reshape(-1), grad.reshape(-1)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + eps
        up = f(x)
        flat[i] = old - eps
        down = f(x)
        flat[i] = old
        gflat[i] = (up - down) / (2 * eps)
    return grad


# Keras 3 optimizer update_step formulas, op by op in float32 (Keras casts scalars to the variable's dtype).

def adam_step(w, g, m, v, lr, beta1, beta2, eps, t):
    """One Keras Adam step at iteration t (1-based); returns new (w, m, v) and the lr_t passed to the kernel."""
    f = np.float32
    lr_t = lr * np.sqrt(1 - beta2 ** t) / (1 - beta1 ** t)
    m = m + (g - m) * f(1 - beta1)
    v = v + (g * g - v) * f(1 - beta2)
    w = w - (m * f(lr_t)) / (np.sqrt(v) + f(eps))
    return w, m, v, lr_t


def sgd_step(w, g, velocity, lr, momentum, nesterov):
    f = np.float32
    if momentum == 0:
        return w - g * f(lr), velocity
    velocity = velocity * f(momentum) - g * f(lr)
    if nesterov:
        return w + (velocity * f(momentum) - g * f(lr)), velocity
    return w + velocity, velocity


def rmsprop_step(w, g, acc, lr, rho, eps):
    """Plain RMSprop (no momentum, not centered): returns new (w, acc)."""
    w, acc, _, _ = rmsprop_step_full(w, g, acc, lr, rho, eps)
    return w, acc


def rmsprop_step_full(w, g, acc, lr, rho, eps, momentum=0.0, mom=None, mean_grad=None):
    """Returns new (w, acc, mom, mean_grad); mean_grad given selects the centered variant."""
    f = np.float32
    acc = f(rho) * acc + f(1 - rho) * (g * g)
    if mean_grad is not None:
        mean_grad = f(rho) * mean_grad + f(1 - rho) * g
        denominator = acc - mean_grad * mean_grad + f(eps)
    else:
        denominator = acc + f(eps)
    increment = (f(lr) * g) / np.sqrt(denominator)
    if momentum > 0:
        mom = f(momentum) * mom + increment
        return w - mom, acc, mom, mean_grad
    return w - increment, acc, mom, mean_grad
