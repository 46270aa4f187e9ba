"""The MNIST chapter's figures, one function per figure.

Every function returns the matplotlib ``Figure`` it drew and, given ``path``, also writes it as a PNG file
atomically (a temporary file in the same folder, then renamed over ``path``), so a reader never sees half a file.

matplotlib is imported on first use (``pip install 'cnnlite[plot]'``); on a machine without a display the
non-interactive Agg backend is chosen, unless the caller already picked a backend (``MPLBACKEND`` or an imported
``matplotlib.pyplot``).

Images are drawn as the chapter draws them: dark ink on a white background (``1 - x`` in grey levels).
"""
import os
import sys
import tempfile

import numpy as np

from cnnlite._validation import is_int
from cnnlite.layers import AveragePooling2D, Conv2D, Layer, MaxPooling2D

__all__ = ["plot_digits", "plot_history", "plot_predictions", "plot_dense_weights", "plot_conv_filters",
           "plot_edge_filters", "plot_feature_maps", "save_figure"]

TRAIN_COLOR = "black"
VALID_COLOR = "cornflowerblue"
WRONG_COLOR = "cornflowerblue"


def _matplotlib(who="cnnlite.plot"):
    """The matplotlib module, or an ImportError naming the extra that installs it."""
    try:
        import matplotlib
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(f"{who} needs matplotlib, which is not installed; "
                          "install the plot extra: pip install 'cnnlite[plot]'") from exc
    return matplotlib


def _pyplot():
    matplotlib = _matplotlib()
    no_display = sys.platform.startswith("linux") and not (os.environ.get("DISPLAY")
                                                           or os.environ.get("WAYLAND_DISPLAY"))
    if no_display and "MPLBACKEND" not in os.environ and "matplotlib.pyplot" not in sys.modules:
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


# --------------------------------------------------------------------------------------------------- checks
def _array(value, name):
    try:
        arr = np.asarray(value)
    except Exception as exc:
        raise TypeError(f"{name} must be array-like, got {type(value).__name__}") from exc
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise TypeError(f"{name} must hold numbers, got dtype {arr.dtype}")
    return arr


def _images(value, name, side=None):
    """(n, h, w) float images in [0, 1] from (n, h, w), (n, h, w, 1) or (n, h*w) with square images."""
    arr = _array(value, name)
    if arr.ndim == 4 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    elif arr.ndim == 2:
        s = int(round(np.sqrt(arr.shape[1]))) if side is None else side
        if s * s != arr.shape[1]:
            raise ValueError(f"{name} of shape {arr.shape}: flat images must have a square number of pixels")
        arr = arr.reshape(arr.shape[0], s, s)
    if arr.ndim != 3 or 0 in arr.shape:
        raise ValueError(f"{name} must be images of shape (n, h, w), (n, h, w, 1) or (n, h*w), got {arr.shape}")
    return _unit_range(arr)


def _image(value, name):
    """One (h, w) image in [0, 1] from (h, w) or (h, w, 1)."""
    arr = _array(value, name)
    if arr.ndim == 3 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    if arr.ndim != 2 or 0 in arr.shape:
        raise ValueError(f"{name} must be one image of shape (h, w) or (h, w, 1), got {arr.shape}")
    return _unit_range(arr)


def _unit_range(arr):
    arr = arr.astype(np.float64)
    if not np.all(np.isfinite(arr)):
        raise ValueError("images must be finite")
    return arr / 255.0 if arr.max(initial=0.0) > 1.0 else arr


def _labels(value, name, n, classes=None):
    """Integer class labels (n,) from labels (n,) or one-hot / probability rows (n, k)."""
    arr = _array(value, name)
    if arr.ndim == 2:
        arr = arr.argmax(axis=1)
    if arr.ndim != 1 or arr.shape[0] != n:
        raise ValueError(f"{name} must have shape ({n},) or ({n}, classes), got {np.shape(value)}")
    if not np.all(np.equal(np.mod(arr, 1), 0)) or (arr.size and arr.min() < 0):
        raise ValueError(f"{name} must be non-negative integer class labels")
    return arr.astype(np.int64)


def _maps(value, name):
    """A list of 2-D maps from one 2-D array, a (k, h, w) array or a sequence of 2-D arrays."""
    if isinstance(value, np.ndarray) and value.ndim in (2, 3):
        arrs = [value] if value.ndim == 2 else list(value)
    elif isinstance(value, (list, tuple)):
        arrs = list(value)
    else:
        raise TypeError(f"{name} must be a 2-D array, a (k, h, w) array or a sequence of 2-D arrays, "
                        f"got {type(value).__name__}")
    maps = [_array(a, name).astype(np.float64) for a in arrs]
    if not maps or any(m.ndim != 2 or 0 in m.shape for m in maps):
        raise ValueError(f"{name} must be a non-empty sequence of 2-D maps, got shapes {[m.shape for m in maps]}")
    return maps


def _count(value, name, low=1):
    if not is_int(value) or value < low:
        raise ValueError(f"{name} must be an int >= {low}, got {value!r}")
    return int(value)


# --------------------------------------------------------------------------------------------------- saving
def save_figure(fig, path, dpi=100):
    """Write ``fig`` to ``path`` (a ``.png``) atomically: render into a temporary file next to it, then rename.

    The folder is created if missing. Returns ``path``.
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or os.PathLike, got {type(path).__name__}")
    path = os.fspath(path)
    if not path.lower().endswith(".png"):
        raise ValueError(f"path must name a .png file, got {path!r}")
    if isinstance(dpi, bool) or not isinstance(dpi, (int, float)) or not dpi > 0:
        raise ValueError(f"dpi must be a positive number, got {dpi!r}")
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".png", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            fig.savefig(f, format="png", dpi=dpi)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return path


def _finish(fig, path):
    if path is not None:
        save_figure(fig, path)
    return fig


def _bare(ax):
    ax.set_xticks([])
    ax.set_yticks([])


def _draw_image(ax, img, **kw):
    """Dark ink on white, as the chapter's ``pcolor(1 - x)`` with the grey colour map."""
    ax.imshow(1.0 - img, cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest", **kw)


def _draw_signed(ax, values, vmin=None, vmax=None):
    """A signed map (weights, filter responses) drawn as ``-values`` in grey: large positive values are dark.
    Without limits the scale is symmetric, so zero is mid-grey."""
    if vmin is None or vmax is None:
        vmax = max(float(np.abs(values).max()), 1e-12)
        vmin = -vmax
    ax.imshow(-values, cmap="gray", interpolation="nearest", vmin=-vmax, vmax=-vmin)


# --------------------------------------------------------------------------------------------------- figures
def plot_digits(images, labels, n=3, path=None):
    """A row of the first ``n`` digits with their labels (the chapter shows the first 3 training images).

    images: (N, 28, 28) uint8 or float (also (N, 28, 28, 1) or (N, 784)); labels: (N,) ints or one-hot (N, 10).
    """
    imgs = _images(images, "images")
    n = _count(n, "n")
    if n > imgs.shape[0]:
        raise ValueError(f"n must be at most the number of images ({imgs.shape[0]}), got {n}")
    labs = _labels(labels, "labels", imgs.shape[0])
    plt = _pyplot()
    fig, axes = plt.subplots(1, n, figsize=(4 * n, 3.2), squeeze=False)
    h, w = imgs.shape[1:]
    for i, ax in enumerate(axes[0]):
        _draw_image(ax, imgs[i])
        ax.text(w - 3.5, h - 2, str(labs[i]), color="cornflowerblue", fontsize=18, ha="center", va="center")
        ax.set_xticks(np.arange(0, w, 5))
        ax.set_yticks(np.arange(0, h, 5))
        ax.set_title(f"training image {i}")
    fig.tight_layout()
    return _finish(fig, path)


def _history_dict(history):
    hist = getattr(history, "history", history)
    if not isinstance(hist, dict):
        raise TypeError(f"history must be a History or its .history dict, got {type(history).__name__}")
    loss = hist.get("loss")
    if loss is None or len(loss) == 0:
        raise ValueError("history must hold a non-empty 'loss' list (one value per epoch)")
    return hist


def _first(hist, *keys):
    for k in keys:
        if hist.get(k) is not None and len(hist[k]):
            return np.asarray(hist[k], dtype=np.float64)
    return None


def plot_history(history, path=None, fig=None, title=None):
    """Loss and accuracy per epoch, training vs validation, side by side (the chapter's learning curves).

    history: the ``History`` returned by ``fit`` or its ``.history`` dict; accuracy may be keyed 'acc' or
    'accuracy' ('val_acc' / 'val_accuracy'). Curves missing from the dict are left out; NaN values (epochs
    without validation) leave gaps. fig: a matplotlib Figure to draw into (cleared first) instead of a new
    pyplot figure (``cnnlite.callbacks.LivePlot`` redraws one Figure this way); title: a title above both panels.
    """
    hist = _history_dict(history)
    curves = {
        "loss": (_first(hist, "loss"), _first(hist, "val_loss")),
        "accuracy": (_first(hist, "accuracy", "acc"), _first(hist, "val_accuracy", "val_acc")),
    }
    n_epochs = len(curves["loss"][0])
    for metric, pair in curves.items():
        for series in pair:
            if series is not None and (series.ndim != 1 or len(series) != n_epochs):
                raise ValueError(f"history: every curve must have one value per epoch ({n_epochs}); "
                                 f"the {metric} curves do not")
    if title is not None and not isinstance(title, str):
        raise TypeError(f"title must be a str or None, got {type(title).__name__}")
    if fig is None:
        fig = _pyplot().figure(figsize=(10, 4))
    else:
        from matplotlib.figure import Figure
        if not isinstance(fig, Figure):
            raise TypeError(f"fig must be a matplotlib Figure or None, got {type(fig).__name__}")
        fig.clear()
    from matplotlib.ticker import MaxNLocator
    axes = fig.subplots(1, 2)
    epochs = np.arange(1, n_epochs + 1)
    for ax, (metric, (train, valid)) in zip(axes, curves.items()):
        if train is not None:
            ax.plot(epochs, train, color=TRAIN_COLOR, marker=".", label="training")
        if valid is not None:
            ax.plot(epochs, valid, color=VALID_COLOR, marker=".", label="validation")
        if metric == "accuracy":
            ax.set_ylim(0, 1)
        else:
            ax.set_ylim(bottom=0)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel(metric)
        ax.grid(True)
        if train is not None or valid is not None:  # away from where the curves end up
            ax.legend(loc="lower right" if metric == "accuracy" else "upper right")
        else:
            ax.text(0.5, 0.5, f"no {metric} recorded", transform=ax.transAxes, ha="center")
    if title is not None:
        fig.suptitle(title)
    fig.tight_layout()
    return _finish(fig, path)


def plot_predictions(images, predictions, labels, rows=8, cols=12, path=None):
    """The prediction grid: the first rows*cols (96) test images, each with its predicted digit; the wrong ones
    are marked with a bar across the top and their digit in red.

    images: (N, 28, 28), (N, 28, 28, 1) or (N, 784); predictions: probabilities (N, 10) or ints (N,);
    labels: the true classes, one-hot (N, 10) or ints (N,). N must be at least rows*cols.
    """
    imgs = _images(images, "images")
    rows, cols = _count(rows, "rows"), _count(cols, "cols")
    n = rows * cols
    if imgs.shape[0] < n:
        raise ValueError(f"images must hold at least rows*cols = {n} images, got {imgs.shape[0]}")
    pred = _labels(predictions, "predictions", imgs.shape[0])[:n]
    true = _labels(labels, "labels", imgs.shape[0])[:n]
    imgs = imgs[:n]
    plt = _pyplot()
    fig, axes = plt.subplots(rows, cols, figsize=(cols, rows), squeeze=False)
    h, w = imgs.shape[1:]
    for i, ax in enumerate(axes.ravel()):
        _draw_image(ax, imgs[i])
        wrong = pred[i] != true[i]
        ax.text(w - 5, h - 3, str(pred[i]), fontsize=12, ha="center", va="center",
                color="red" if wrong else "black")
        if wrong:
            ax.plot([0, w - 1], [1, 1], color=WRONG_COLOR, linewidth=5)
        ax.set_xlim(-0.5, w - 0.5)
        ax.set_ylim(h - 0.5, -0.5)
        _bare(ax)
    n_wrong = int(np.sum(pred != true))
    fig.suptitle(f"predictions on the first {n} test images: {n_wrong} wrong (marked)")
    fig.subplots_adjust(left=0.01, right=0.99, bottom=0.01, top=0.93, wspace=0.05, hspace=0.05)
    return _finish(fig, path)


def plot_dense_weights(kernel, n=16, image_shape=(28, 28), path=None):
    """The first Dense layer's weights as images: column j of the (784, units) kernel, reshaped to 28x28, for
    the first ``n`` (16) hidden units, in 2 rows. Drawn as ``-w``: dark where the unit's weight is positive."""
    w = _array(kernel, "kernel").astype(np.float64)
    n = _count(n, "n")
    h, wd = image_shape
    if w.ndim != 2 or w.shape[0] != h * wd or w.shape[1] < n:
        raise ValueError(f"kernel must have shape ({h * wd}, units >= {n}), got {w.shape}")
    rows = 2 if n > 1 else 1
    cols = -(-n // rows)
    plt = _pyplot()
    fig, axes = plt.subplots(rows, cols, figsize=(1.5 * cols, 1.8 * rows + 0.4), squeeze=False,
                             constrained_layout=True)
    for j, ax in enumerate(axes.ravel()):
        if j < n:
            _draw_signed(ax, w[:, j].reshape(h, wd))
            ax.set_title(str(j))
        else:
            ax.axis("off")
        _bare(ax)
    fig.suptitle(f"first-layer weights, one {h}x{wd} image per hidden unit (dark: positive)")
    return _finish(fig, path)


def _correlate_same(img, filt):
    """Cross-correlation with zero padding ('same' as TensorFlow), in NumPy; for plots only."""
    kh, kw = filt.shape
    pt, pl = (kh - 1) // 2, (kw - 1) // 2
    padded = np.pad(img, ((pt, kh - 1 - pt), (pl, kw - 1 - pl)))
    windows = np.lib.stride_tricks.sliding_window_view(padded, (kh, kw))
    return np.einsum("ijkl,kl->ij", windows, filt)


def plot_conv_filters(kernel, image, outputs=None, path=None):
    """A convolution layer's filters (top row, one shared grey scale) next to their output on one test image
    (bottom row, the image itself first).

    kernel: (kh, kw, 1, filters), a Conv2D kernel on one input channel; image: (h, w) or (h, w, 1);
    outputs: (h', w', filters) responses of the filters to ``image``; computed here (zero-padded 'same'
    cross-correlation, no bias) when None.
    """
    k = _array(kernel, "kernel").astype(np.float64)
    if k.ndim != 4 or k.shape[2] != 1 or 0 in k.shape:
        raise ValueError(f"kernel must have shape (kh, kw, 1, filters), got {k.shape}")
    img = _image(image, "image")
    n = k.shape[3]
    if outputs is None:
        out = np.stack([_correlate_same(img, k[:, :, 0, j]) for j in range(n)], axis=-1)
    else:
        out = _array(outputs, "outputs").astype(np.float64)
        if out.ndim == 4 and out.shape[0] == 1:
            out = out[0]
        if out.ndim != 3 or out.shape[2] != n or 0 in out.shape:
            raise ValueError(f"outputs must have shape (h, w, {n}) (one map per filter), got {out.shape}")
    plt = _pyplot()
    fig, axes = plt.subplots(2, n + 1, figsize=(1.4 * (n + 1), 3.0), squeeze=False)
    kmin, kmax = k.min(), k.max()
    axes[0, 0].axis("off")
    axes[0, 0].text(0.5, 0.5, "filters", ha="center", va="center", transform=axes[0, 0].transAxes)
    _draw_image(axes[1, 0], img)
    axes[1, 0].set_title("original")
    for j in range(n):
        _draw_signed(axes[0, j + 1], k[:, :, 0, j], vmin=kmin, vmax=kmax)
        axes[0, j + 1].set_title(str(j))
        _draw_signed(axes[1, j + 1], out[:, :, j])
    for ax in axes.ravel():
        _bare(ax)
    fig.tight_layout()
    return _finish(fig, path)


def plot_edge_filters(image, filters, responses, names=("horizontal edges", "vertical edges"), path=None):
    """The hand-written filter demo: an image and its responses to a few small filters (the chapter uses two
    3x3 edge filters, horizontal and vertical). Each response panel shows its filter as an inset.

    image: (h, w) or (h, w, 1); filters: a sequence of 2-D filters (or one (k, kh, kw) array);
    responses: one (h', w') map per filter; names: one title per filter.
    """
    img = _image(image, "image")
    fil = _maps(filters, "filters")
    res = _maps(responses, "responses")
    if len(res) != len(fil):
        raise ValueError(f"responses must hold one map per filter ({len(fil)}), got {len(res)}")
    names = list(names)
    if len(names) != len(fil):
        raise ValueError(f"names must give one title per filter ({len(fil)}), got {len(names)}")
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(fil) + 1, figsize=(4 * (len(fil) + 1), 3.6), squeeze=False)
    axes = axes[0]
    _draw_image(axes[0], img)
    axes[0].set_title("image")
    for ax, f, r, name in zip(axes[1:], fil, res, names):
        _draw_signed(ax, r)
        ax.set_title(name)
        inset = ax.inset_axes([0.70, 0.70, 0.28, 0.28])
        lim = max(np.abs(f).max(), 1e-12)
        inset.imshow(f, cmap="coolwarm", vmin=-lim, vmax=lim)
        for (i, j), v in np.ndenumerate(f):
            inset.text(j, i, f"{v:g}", ha="center", va="center", fontsize=7)
        _bare(inset)
    for ax in axes:
        _bare(ax)
    fig.tight_layout()
    return _finish(fig, path)


def _model_layer(model, layer):
    """(index, layer) of ``layer`` (a name, an index or the layer object) in ``model``."""
    layers = getattr(model, "layers", None)
    if not isinstance(layers, list) or not hasattr(model, "plan"):
        raise TypeError(f"model must be a cnnlite model (e.g. Sequential), got {type(model).__name__}")
    names = [l.name for l in layers]
    if isinstance(layer, str):
        if layer not in names:
            raise ValueError(f"no layer named {layer!r} in model {model.name!r}; its layers are {names}")
        index = names.index(layer)
    elif is_int(layer):
        if not -len(layers) <= layer < len(layers):
            raise ValueError(f"layer index {layer} is out of range: model {model.name!r} has {len(layers)} layers")
        index = int(layer) % len(layers)
    elif isinstance(layer, Layer):
        index = next((i for i, l in enumerate(layers) if l is layer), None)
        if index is None:
            raise ValueError(f"layer {layer.name!r} is not a layer of model {model.name!r}; its layers are {names}")
    else:
        raise TypeError(f"layer must be a layer name, an index or a layer of the model, got {type(layer).__name__}")
    found = layers[index]
    if not isinstance(found, (Conv2D, MaxPooling2D, AveragePooling2D)):
        raise ValueError(f"plot_feature_maps shows the output of a Conv2D or pooling layer; layer {found.name!r} "
                         f"is a {type(found).__name__}")
    return index, found


def plot_feature_maps(model, layer, image, cols=8, path=None):
    """What one Conv2D or pooling layer of ``model`` outputs for one image: a grid of its channel maps.

    model: a built cnnlite model (e.g. the chapter's full network); layer: the layer's name, its index in
    ``model.layers`` or the layer itself; image: one input as the model takes it (already scaled), (h, w, c),
    (1, h, w, c) or, for one channel, (h, w). The model's own execution plan runs up to that layer (inference:
    no dropout). The maps are tiled into one image, channel numbers in the corners, each map on its own grey
    scale (dark where the output is large, white where it is smallest). cols: maps per row.
    """
    index, found = _model_layer(model, layer)
    cols = _count(cols, "cols")
    plan = model.plan
    in_shape = tuple(plan.steps[0].input_shape[1:])
    x = _array(image, "image").astype(np.float32)
    if x.shape == in_shape[:-1] and in_shape[-1] == 1:
        x = x[..., None]
    if x.shape == (1,) + in_shape:
        x = x[0]
    if x.shape != in_shape:
        raise ValueError(f"image must be one input of shape {in_shape} (the model's input without the batch), "
                         f"got {np.shape(image)}")
    if not np.all(np.isfinite(x)):
        raise ValueError("image must be finite")
    upto = plan.prefix(index + 1)
    out, _ = upto.forward(np.ascontiguousarray(x[None]), training=False)
    maps = np.asarray(out[0], dtype=np.float64)  # (h', w', channels)
    h, w, n = maps.shape
    cols = min(cols, n)
    rows = -(-n // cols)
    # One image of all the maps (a grid of tiles, NaN gaps drawn light blue): one imshow renders fast even for the
    # 64 maps of the full network's last layers. Each map is scaled to its own [0, 1], dark where large.
    gap = max(1, h // 8)
    mosaic = np.full((rows * (h + gap) - gap, cols * (w + gap) - gap), np.nan)
    for j in range(n):
        m = maps[:, :, j]
        lo, hi = float(m.min()), float(m.max())
        r, c = divmod(j, cols)
        mosaic[r * (h + gap):r * (h + gap) + h, c * (w + gap):c * (w + gap) + w] = \
            (m - lo) / (hi - lo) if hi > lo else 0.0
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(1.3 * cols, 1.3 * rows + 0.5))
    cmap = plt.get_cmap("gray_r").with_extremes(bad="lightsteelblue")
    ax.imshow(mosaic, cmap=cmap, vmin=0.0, vmax=1.0, interpolation="nearest")
    for j in range(n):
        r, c = divmod(j, cols)
        ax.text(c * (w + gap) - 0.5, r * (h + gap) - 0.5, str(j), fontsize=7, color="tab:red", ha="left", va="top")
    ax.axis("off")
    fig.suptitle(f"{found.name} ({type(found).__name__}): {n} maps of {h}x{w}")
    fig.subplots_adjust(left=0.01, right=0.99, bottom=0.01, top=1 - 0.5 / (1.3 * rows + 0.5))
    return _finish(fig, path)
