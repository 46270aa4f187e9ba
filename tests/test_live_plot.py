"""cnnlite.callbacks.LivePlot: the loss/accuracy curves redrawn after every epoch, to a PNG file (atomically) or in
place in a notebook (an IPython display handle); clear errors for bad arguments and without matplotlib."""
import os
import subprocess
import sys
import textwrap
import types

import numpy as np
import pytest

pytest.importorskip("matplotlib")
import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.image  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from cnnlite.callbacks import Callback, LivePlot  # noqa: E402
from cnnlite.layers import Dense  # noqa: E402
from cnnlite.models import Sequential  # noqa: E402

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def tiny_data(rng, n=64):
    x = rng.random((n, 8)).astype(np.float32)
    labels = (x[:, 0] > 0.5).astype(int)
    y = np.eye(2, dtype=np.float32)[labels]
    return x, y


def tiny_model():
    np.random.seed(1)
    model = Sequential([Dense(8, input_dim=8, activation="relu"), Dense(2, activation="softmax")])
    model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
    return model


def epoch_logs(i):
    return {"loss": 1.0 / (i + 1), "accuracy": 0.5 + 0.1 * i, "val_loss": 1.2 / (i + 1), "val_accuracy": 0.5 + 0.05 * i}


def assert_png(path):
    with open(path, "rb") as f:
        assert f.read(8) == PNG_SIGNATURE
    img = matplotlib.image.imread(path)
    assert img.ndim == 3 and img.shape[0] >= 200 and img.shape[1] >= 400 and img.std() > 0.01
    assert not [p for p in os.listdir(os.path.dirname(path)) if p.startswith(".tmp-")]


def test_fit_writes_the_curves_after_every_epoch(rng, tmp_path):
    path = tmp_path / "curves" / "live.png"  # the folder is created
    seen = []

    class Watch(Callback):  # runs after LivePlot: the file is there after each epoch
        def on_epoch_end(self, epoch, logs=None):
            seen.append((epoch, path.read_bytes()[:8], live.figure.get_suptitle()))

    live = LivePlot(path=str(path))
    x, y = tiny_data(rng)
    history = tiny_model().fit(x, y, epochs=3, batch_size=16, verbose=0, validation_data=(x[:16], y[:16]),
                               callbacks=[live, Watch()])
    assert seen == [(e, PNG_SIGNATURE, f"epoch {e + 1}/3") for e in range(3)]
    assert_png(str(path))
    assert isinstance(live.figure, Figure) and len(live.figure.axes) == 2
    loss_ax, acc_ax = live.figure.axes
    assert [line.get_label() for line in loss_ax.lines] == ["training", "validation"]
    np.testing.assert_allclose(loss_ax.lines[0].get_ydata(), history.history["loss"])
    np.testing.assert_allclose(acc_ax.lines[1].get_ydata(), history.history["val_accuracy"])
    assert live.history["val_loss"] == pytest.approx(history.history["val_loss"])


def test_a_second_fit_starts_new_curves(rng, tmp_path):
    live = LivePlot(path=tmp_path / "live.png")  # os.PathLike
    x, y = tiny_data(rng)
    model = tiny_model()
    model.fit(x, y, epochs=2, verbose=0, callbacks=[live])
    model.fit(x, y, epochs=1, verbose=0, callbacks=[live])
    assert len(live.history["loss"]) == 1
    assert live.figure.get_suptitle() == "epoch 1/1"


def test_the_file_is_replaced_atomically(tmp_path):
    path = tmp_path / "live.png"
    live = LivePlot(path=str(path))
    live.on_train_begin()
    live.on_epoch_end(0, epoch_logs(0))
    first = path.read_bytes()
    live.on_epoch_end(1, epoch_logs(1))
    assert path.read_bytes() != first  # rewritten with two epochs
    second = path.read_bytes()

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    live.figure.savefig = broken
    with pytest.raises(RuntimeError, match="disk full"):
        live.on_epoch_end(2, epoch_logs(2))
    assert path.read_bytes() == second  # the reader still sees the last complete picture
    assert os.listdir(tmp_path) == ["live.png"]


def test_epochs_without_validation_leave_gaps(tmp_path):
    live = LivePlot(path=str(tmp_path / "live.png"))
    live.on_train_begin()
    live.on_epoch_end(0, {"loss": 1.0, "accuracy": 0.5})
    live.on_epoch_end(1, dict(epoch_logs(1), note="text is ignored"))
    live.on_epoch_end(2, {"loss": 0.3, "accuracy": 0.9})
    assert live.history["loss"] == [1.0, 0.5, 0.3]
    assert np.isnan(live.history["val_loss"][0]) and np.isnan(live.history["val_loss"][2])
    assert "note" not in live.history
    assert_png(str(tmp_path / "live.png"))


def test_in_a_notebook_one_output_is_updated_in_place(monkeypatch):
    calls = []

    class Handle:
        def update(self, obj):
            calls.append(("update", obj))

    def display(obj, display_id=False):
        calls.append(("display", obj, display_id))
        return Handle()

    fake = types.ModuleType("IPython.display")
    fake.display = display
    fake_ipython = types.ModuleType("IPython")
    fake_ipython.display = fake
    monkeypatch.setitem(sys.modules, "IPython", fake_ipython)
    monkeypatch.setitem(sys.modules, "IPython.display", fake)
    live = LivePlot(inline=True)
    live.on_train_begin()
    for e in range(3):
        live.on_epoch_end(e, epoch_logs(e))
    fig = live.figure
    assert calls == [("display", fig, True), ("update", fig), ("update", fig)]
    assert fig.get_suptitle() == "epoch 3"


def test_outside_a_notebook_a_path_is_needed():
    with pytest.raises(ValueError, match=r"not running in a Jupyter kernel, so give path="):
        LivePlot()


@pytest.mark.parametrize("kwargs, exc, match", [
    ({"path": 3}, TypeError, "path must be a str, an os.PathLike or None"),
    ({"path": "curves.jpg"}, ValueError, "path must name a .png file"),
    ({"path": "c.png", "inline": "yes"}, ValueError, "inline must be 'auto', True or False"),
    ({"path": "c.png", "figsize": (0, 4)}, ValueError, "figsize must be"),
    ({"path": "c.png", "figsize": (10,)}, ValueError, "figsize must be"),
    ({"path": "c.png", "figsize": "10x4"}, ValueError, "figsize must be"),
    ({"path": "c.png", "figsize": (True, 4)}, ValueError, "figsize must be"),
])
def test_bad_arguments_are_rejected_at_construction(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        LivePlot(**kwargs)


def test_without_matplotlib_the_error_names_the_extra(tmp_path):
    code = """
        import sys
        sys.modules["matplotlib"] = None  # as if it were not installed
        import cnnlite  # importing cnnlite and its callbacks needs no matplotlib
        from cnnlite.callbacks import LivePlot
        try:
            LivePlot(path="curves.png")
        except ImportError as e:
            print(e)
        """
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=tmp_path, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "LivePlot needs matplotlib" in out.stdout and "pip install 'cnnlite[plot]'" in out.stdout
    assert not list(tmp_path.iterdir())
