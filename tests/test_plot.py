import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import needs  # noqa: E402

needs.importorskip("matplotlib")
import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.image  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from cnnlite import plot  # noqa: E402

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


@pytest.fixture
def digits(rng):
    images = rng.integers(0, 256, size=(100, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, size=100)
    return images, labels


def assert_png(path, min_side=100):
    with open(path, "rb") as f:
        assert f.read(8) == PNG_SIGNATURE
    img = matplotlib.image.imread(path)
    assert img.ndim == 3 and img.shape[0] >= min_side and img.shape[1] >= min_side
    assert img.std() > 0.01  # something was drawn
    assert not [p for p in os.listdir(os.path.dirname(path)) if p.startswith(".tmp-")]


def one_hot(labels, k=10):
    out = np.zeros((len(labels), k), np.float32)
    out[np.arange(len(labels)), labels] = 1
    return out


# ----------------------------------------------------------------------------------------------- digits
def test_digits_row_shows_labels_and_saves(digits, tmp_path):
    images, labels = digits
    path = tmp_path / "digits.png"
    fig = plot.plot_digits(images, labels, n=4, path=path)
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 4
    for ax, lab in zip(fig.axes, labels[:4]):
        assert str(lab) in [t.get_text() for t in ax.texts]
    assert_png(str(path))


@pytest.mark.parametrize("shape", [(5, 28, 28, 1), (5, 784)])
def test_digits_accepts_channel_and_flat_images(rng, shape):
    fig = plot.plot_digits(rng.random(shape), one_hot(np.arange(5)), n=3)
    assert [t.get_text() for ax in fig.axes for t in ax.texts] == ["0", "1", "2"]


@pytest.mark.parametrize("images, labels, n, match", [
    (np.zeros((5, 28)), np.zeros(5), 3, "images"),
    (np.zeros((5, 28, 28)), np.zeros(4), 3, "labels"),
    (np.zeros((5, 28, 28)), np.zeros(5), 6, "n must be at most"),
    (np.zeros((5, 28, 28)), np.zeros(5), 0, "n must be an int"),
    (np.zeros((5, 28, 28)), np.full(5, 1.5), 3, "labels"),
    (np.zeros((5, 30)), np.zeros(5), 3, "square"),
])
def test_digits_rejects_bad_arguments(images, labels, n, match):
    with pytest.raises(ValueError, match=match):
        plot.plot_digits(images, labels, n=n)


# ----------------------------------------------------------------------------------------------- history
class FakeHistory:
    def __init__(self, history):
        self.history = history


@pytest.mark.parametrize("acc_key", ["acc", "accuracy"])
@pytest.mark.parametrize("wrap", [dict, FakeHistory])
def test_history_curves_from_history_or_dict(acc_key, wrap, tmp_path):
    hist = {"loss": [1.0, 0.5, 0.3], "val_loss": [0.9, 0.6, 0.4],
            acc_key: [0.7, 0.85, 0.9], "val_" + acc_key: [0.72, 0.84, 0.88]}
    path = tmp_path / "sub" / "curves.png"  # the folder is created
    fig = plot.plot_history(wrap(hist), path=path)
    loss_ax, acc_ax = fig.axes
    np.testing.assert_allclose(loss_ax.lines[0].get_ydata(), hist["loss"])
    np.testing.assert_allclose(loss_ax.lines[1].get_ydata(), hist["val_loss"])
    np.testing.assert_allclose(acc_ax.lines[0].get_ydata(), hist[acc_key])
    np.testing.assert_allclose(acc_ax.lines[1].get_ydata(), hist["val_" + acc_key])
    assert [t.get_text() for t in acc_ax.get_legend().get_texts()] == ["training", "validation"]
    assert acc_ax.get_ylim() == (0, 1)
    assert_png(str(path))


def test_history_without_validation_draws_training_only():
    fig = plot.plot_history({"loss": [1.0, 0.5], "acc": [0.5, 0.7]})
    assert [len(ax.lines) for ax in fig.axes] == [1, 1]


@pytest.mark.parametrize("hist, exc, match", [
    ({}, ValueError, "loss"),
    ({"loss": []}, ValueError, "loss"),
    ({"loss": [1.0, 0.5], "val_loss": [1.0]}, ValueError, "one value per epoch"),
    ([1.0, 0.5], TypeError, "History"),
])
def test_history_rejects_bad_input(hist, exc, match):
    with pytest.raises(exc, match=match):
        plot.plot_history(hist)


# ----------------------------------------------------------------------------------------------- predictions
def test_prediction_grid_prints_each_digit_and_marks_the_wrong_ones(digits, tmp_path):
    images, labels = digits
    probs = one_hot(labels) * 0.9 + 0.01
    wrong = [0, 13, 95]
    for i in wrong:
        probs[i] = one_hot([(labels[i] + 1) % 10])[0]
    path = tmp_path / "pred.png"
    fig = plot.plot_predictions(images, probs, one_hot(labels), path=path)
    axes = [ax for ax in fig.axes]
    assert len(axes) == 96
    for i, ax in enumerate(axes):
        (text,) = ax.texts
        assert text.get_text() == str(probs[i].argmax())
        assert (len(ax.lines) == 1) == (i in wrong)
        assert (text.get_color() == "red") == (i in wrong)
    assert "3 wrong" in fig._suptitle.get_text()
    assert_png(str(path), min_side=500)


def test_prediction_grid_takes_int_labels_and_other_sizes(digits):
    images, labels = digits
    fig = plot.plot_predictions(images.reshape(100, 784), labels, labels, rows=2, cols=3)
    assert len(fig.axes) == 6
    assert not any(ax.lines for ax in fig.axes)


@pytest.mark.parametrize("kwargs, match", [
    (dict(images=np.zeros((50, 28, 28))), "at least rows\\*cols = 96"),
    (dict(predictions=np.zeros((99, 10))), "predictions"),
    (dict(labels=np.zeros((100, 10, 1))), "labels"),
    (dict(rows=0), "rows"),
])
def test_prediction_grid_rejects_bad_arguments(digits, kwargs, match):
    images, labels = digits
    args = dict(images=images, predictions=labels, labels=labels)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        plot.plot_predictions(**args)


# ----------------------------------------------------------------------------------------------- dense weights
def test_dense_weights_are_16_images_of_the_kernel_columns(rng, tmp_path):
    kernel = rng.normal(size=(784, 16)).astype(np.float32)
    fig = plot.plot_dense_weights(kernel, path=tmp_path / "w.png")
    assert len(fig.axes) == 16
    for j, ax in enumerate(fig.axes):
        assert ax.get_title() == str(j)
        np.testing.assert_allclose(ax.images[0].get_array(), -kernel[:, j].reshape(28, 28), rtol=1e-6)
    assert_png(str(tmp_path / "w.png"))


@pytest.mark.parametrize("shape", [(784,), (100, 16), (784, 8)])
def test_dense_weights_reject_wrong_shapes(shape):
    with pytest.raises(ValueError, match="kernel must have shape \\(784, units >= 16\\)"):
        plot.plot_dense_weights(np.zeros(shape))


# ----------------------------------------------------------------------------------------------- conv filters
def test_conv_filters_next_to_their_outputs(rng, tmp_path):
    kernel = rng.normal(size=(3, 3, 1, 8))
    image = rng.random((28, 28))
    fig = plot.plot_conv_filters(kernel, image, path=tmp_path / "conv.png")
    assert len(fig.axes) == 18
    top, bottom = fig.axes[1:9], fig.axes[10:18]  # row-major 2 x 9 grid; column 0 = label / original
    for j in range(8):
        np.testing.assert_allclose(top[j].images[0].get_array(), -kernel[:, :, 0, j])
        # the default output is the zero-padded cross-correlation, checked here against an explicit loop
        padded = np.pad(image, 1)
        expect = np.array([[np.sum(padded[i:i + 3, c:c + 3] * kernel[:, :, 0, j]) for c in range(28)]
                           for i in range(28)])
        np.testing.assert_allclose(bottom[j].images[0].get_array(), -expect, rtol=1e-10, atol=1e-12)
    assert fig.axes[9].get_title() == "original"
    assert_png(str(tmp_path / "conv.png"))


def test_conv_filters_use_given_outputs(rng):
    kernel = rng.normal(size=(3, 3, 1, 4))
    outputs = rng.normal(size=(1, 26, 26, 4))
    fig = plot.plot_conv_filters(kernel, rng.random((28, 28, 1)), outputs)
    np.testing.assert_allclose(fig.axes[5 + 1 + 2].images[0].get_array(), -outputs[0, :, :, 2])


@pytest.mark.parametrize("kernel, image, outputs, match", [
    (np.zeros((3, 3, 2, 8)), np.zeros((28, 28)), None, "kernel"),
    (np.zeros((3, 3, 8)), np.zeros((28, 28)), None, "kernel"),
    (np.zeros((3, 3, 1, 8)), np.zeros((2, 28, 28)), None, "image"),
    (np.zeros((3, 3, 1, 8)), np.zeros((28, 28)), np.zeros((28, 28, 7)), "outputs"),
])
def test_conv_filters_reject_bad_shapes(kernel, image, outputs, match):
    with pytest.raises(ValueError, match=match):
        plot.plot_conv_filters(kernel, image, outputs)


# ----------------------------------------------------------------------------------------------- edge filters
def test_edge_filter_demo(rng, tmp_path):
    image = rng.random((28, 28))
    filters = [np.array([[1, 1, 1], [1, 1, 1], [-2, -2, -2]]), np.array([[-2, 1, 1]] * 3)]
    responses = [rng.normal(size=(28, 28)), rng.normal(size=(28, 28))]
    fig = plot.plot_edge_filters(image, filters, responses, path=tmp_path / "edges.png")
    image_ax, h_ax, v_ax = fig.axes[:3]
    assert [h_ax.get_title(), v_ax.get_title()] == ["horizontal edges", "vertical edges"]
    np.testing.assert_allclose(image_ax.images[0].get_array(), 1 - image)
    np.testing.assert_allclose(h_ax.images[0].get_array(), -responses[0])
    np.testing.assert_allclose(v_ax.images[0].get_array(), -responses[1])
    assert_png(str(tmp_path / "edges.png"))


@pytest.mark.parametrize("filters, responses, names, match", [
    ([np.ones((3, 3))], [np.ones((28, 28))] * 2, ("a",), "one map per filter"),
    ([np.ones((3, 3))] * 2, [np.ones((28, 28))] * 2, ("a",), "names"),
    ([np.ones(3)], [np.ones((28, 28))], ("a",), "filters"),
    ([], [], (), "filters"),
])
def test_edge_filter_demo_rejects_bad_arguments(filters, responses, names, match):
    with pytest.raises(ValueError, match=match):
        plot.plot_edge_filters(np.zeros((28, 28)), filters, responses, names=names)


# ----------------------------------------------------------------------------------------------- saving
def test_save_validates_path(digits, tmp_path):
    fig = plot.plot_digits(*digits)
    with pytest.raises(ValueError, match="path must name a .png file"):
        plot.save_figure(fig, tmp_path / "digits.jpg")
    with pytest.raises(TypeError, match="path must be a str or os.PathLike"):
        plot.save_figure(fig, 3)
    with pytest.raises(ValueError, match="dpi"):
        plot.save_figure(fig, tmp_path / "d.png", dpi=0)


def test_save_is_atomic_when_rendering_fails(digits, tmp_path, monkeypatch):
    path = tmp_path / "digits.png"
    path.write_bytes(b"old")
    fig = plot.plot_digits(*digits)

    def broken_savefig(*args, **kwargs):
        args[0].write(b"partial")
        raise RuntimeError("disk full")

    monkeypatch.setattr(fig, "savefig", broken_savefig)
    with pytest.raises(RuntimeError, match="disk full"):
        plot.save_figure(fig, path)
    assert path.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["digits.png"]


def test_save_replaces_an_existing_file(digits, tmp_path):
    path = tmp_path / "digits.png"
    path.write_bytes(b"old")
    plot.plot_digits(*digits, path=str(path))
    assert_png(str(path))


# ----------------------------------------------------------------------------------------------- import
def _run(code, tmp_path, **env_changes):
    env = dict(os.environ)
    for k, v in env_changes.items():
        if v is None:
            env.pop(k, None)
        else:
            env[k] = v
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)


def test_import_is_lazy_and_picks_agg_without_a_display(tmp_path):
    out = _run("""
        import sys
        import cnnlite.plot as p
        assert "matplotlib" not in sys.modules
        p.plot_history({"loss": [1.0, 0.5]})
        import matplotlib
        print(matplotlib.get_backend().lower())
        """, tmp_path, DISPLAY=None, WAYLAND_DISPLAY=None, MPLBACKEND=None)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "agg"


def test_missing_matplotlib_gives_a_clear_message(tmp_path):
    out = _run("""
        import sys
        sys.modules["matplotlib"] = None  # as if it were not installed
        import cnnlite.plot as p
        try:
            p.plot_history({"loss": [1.0]})
        except ImportError as e:
            print(e)
        """, tmp_path)
    assert out.returncode == 0, out.stderr
    assert "pip install 'cnnlite[plot]'" in out.stdout


# ----------------------------------------------------------------------------------------------- history into a figure
def test_history_draws_into_a_given_figure_and_skips_nan_epochs():
    fig = Figure(figsize=(8, 3))
    fig.add_subplot(1, 1, 1)  # cleared
    hist = {"loss": [1.0, 0.5, 0.4], "val_loss": [float("nan"), 0.6, 0.5], "acc": [0.5, 0.8, 0.9]}
    out = plot.plot_history(hist, fig=fig, title="epoch 3/3")
    assert out is fig and len(fig.axes) == 2
    assert fig.get_suptitle() == "epoch 3/3"
    assert len(fig.axes[0].lines) == 2
    with pytest.raises(TypeError, match="fig must be a matplotlib Figure"):
        plot.plot_history(hist, fig="figure")


# ----------------------------------------------------------------------------------------------- feature maps
def full_network():
    from cnnlite.layers import Conv2D, Dense, Dropout, Flatten, MaxPooling2D
    from cnnlite.models import Sequential

    np.random.seed(1)
    model = Sequential()
    model.add(Conv2D(16, (3, 3), input_shape=(28, 28, 1), activation='relu'))
    model.add(Conv2D(32, (3, 3), activation='relu'))
    model.add(MaxPooling2D(pool_size=(2, 2)))
    model.add(Conv2D(64, (3, 3), activation='relu'))
    model.add(MaxPooling2D(pool_size=(2, 2)))
    model.add(Dropout(0.25))
    model.add(Flatten())
    model.add(Dense(128, activation='relu'))
    model.add(Dropout(0.25))
    model.add(Dense(10, activation='softmax'))
    model.compile(loss='categorical_crossentropy', optimizer='adam', metrics=['accuracy'])
    return model


@pytest.fixture(scope="module")
def net():
    return full_network()


@pytest.mark.parametrize("index", [0, 1, 2, 3, 4])
def test_feature_maps_of_every_conv_and_pool_layer_match_the_first_layers(net, rng, index, tmp_path):
    from cnnlite.models import Sequential

    image = rng.random((28, 28, 1)).astype(np.float32)
    layer = net.layers[index]
    path = tmp_path / "maps.png"
    fig = plot.plot_feature_maps(net, layer.name, image, path=str(path))
    assert isinstance(fig, Figure)
    h, w, channels = layer.output_shape[1:]
    assert len(fig.axes) == 1 and len(fig.axes[0].images) == 1  # one mosaic of every channel
    assert layer.name in fig.get_suptitle() and f"{channels} maps of {h}x{w}" in fig.get_suptitle()
    mosaic = np.ma.filled(fig.axes[0].images[0].get_array(), np.nan)
    assert [t.get_text() for t in fig.axes[0].texts] == [str(j) for j in range(channels)]
    # the maps are what the model's first index+1 layers (the same weight objects) output, each scaled to [0, 1]
    expected = Sequential(net.layers[:index + 1], name=f"upto_{index}").predict(image[None], verbose=0)[0]
    gap = max(1, h // 8)
    cols = min(8, channels)
    assert mosaic.shape == (-(-channels // cols) * (h + gap) - gap, cols * (w + gap) - gap)
    for j in range(channels):
        r, c = divmod(j, cols)
        tile = mosaic[r * (h + gap):r * (h + gap) + h, c * (w + gap):c * (w + gap) + w]
        m = expected[:, :, j]
        want = (m - m.min()) / (m.max() - m.min()) if m.max() > m.min() else np.zeros_like(m)
        np.testing.assert_allclose(tile, want, atol=1e-4)
    assert np.isnan(mosaic).sum() == mosaic.size - channels * h * w  # only the gaps are left out
    assert_png(str(path))


def test_feature_maps_take_a_layer_by_name_index_or_object_and_any_image_layout(net, rng):
    image = rng.random((28, 28)).astype(np.float32)
    layer = net.get_layer("conv2d") if "conv2d" in [l.name for l in net.layers] else net.layers[0]
    figs = [plot.plot_feature_maps(net, layer, image), plot.plot_feature_maps(net, 0, image[..., None]),
            plot.plot_feature_maps(net, layer.name, image[None, ..., None], cols=4)]
    arrays = [np.ma.filled(f.axes[0].images[0].get_array(), np.nan) for f in figs]
    np.testing.assert_array_equal(arrays[0], arrays[1])
    assert arrays[2].shape == (4 * (26 + 3) - 3, 4 * (26 + 3) - 3)  # 16 maps of 26x26 in 4 columns


def test_feature_maps_leave_the_random_state_alone(net, rng):
    state = np.random.get_state()[1].copy()
    plot.plot_feature_maps(net, 2, rng.random((28, 28)))
    np.testing.assert_array_equal(np.random.get_state()[1], state)


def test_feature_maps_reject_bad_arguments(net):
    image = np.zeros((28, 28), np.float32)
    dense = [l for l in net.layers if type(l).__name__ == "Dense"][0]
    other = full_network().layers[0]
    cases = [
        (dense.name, image, ValueError, "Conv2D or pooling layer; layer '.*' is a Dense"),
        (dense, image, ValueError, "is a Dense"),
        (5, image, ValueError, "is a Dropout"),
        (other, image, ValueError, f"layer '{other.name}' is not a layer of model"),
        ("no_such_layer", image, ValueError, "no layer named 'no_such_layer'"),
        (10, image, ValueError, "out of range"),
        (1.5, image, TypeError, "layer must be a layer name, an index or a layer"),
        (0, np.zeros((27, 28)), ValueError, r"image must be one input of shape \(28, 28, 1\)"),
        (0, np.full((28, 28), np.nan), ValueError, "finite"),
    ]
    for layer, img, exc, match in cases:
        with pytest.raises(exc, match=match):
            plot.plot_feature_maps(net, layer, img)
    with pytest.raises(TypeError, match="cnnlite model"):
        plot.plot_feature_maps("model", 0, image)
    with pytest.raises(ValueError, match="cols"):
        plot.plot_feature_maps(net, 0, image, cols=0)


def test_feature_maps_without_matplotlib_name_the_extra(tmp_path):
    out = _run("""
        import sys
        sys.modules["matplotlib"] = None  # as if it were not installed
        import numpy as np
        from cnnlite import plot
        from cnnlite.layers import Conv2D, Flatten, Dense
        from cnnlite.models import Sequential
        model = Sequential([Conv2D(4, (3, 3), input_shape=(8, 8, 1)), Flatten(), Dense(2)])
        try:
            plot.plot_feature_maps(model, 0, np.zeros((8, 8)))
        except ImportError as e:
            print(e)
        """, tmp_path)
    assert out.returncode == 0, out.stderr
    assert "pip install 'cnnlite[plot]'" in out.stdout
