"""Progress output: Keras's formats for verbose=0/1/2, one line per epoch when stdout is not a terminal, an in-place
throttled bar when it is."""
import io
import re

import numpy as np
import pytest

from cnnlite import optimizers
from cnnlite.engine.progbar import Progbar, format_eta, format_time
from cnnlite.layers import Dense
from cnnlite.models import Sequential

NUM = r"\d+\.\d{4}"
STEP = r"\d+(s|ms|us)/step"


def fitted(metric="acc"):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(100, 4)).astype(np.float32)
    y = np.eye(2, dtype=np.float32)[rng.integers(0, 2, 100)]
    model = Sequential([Dense(2, activation="softmax", input_shape=(4,))])
    model.compile(optimizers.SGD(0.1), "categorical_crossentropy", [metric])
    return model, x, y


def test_verbose_1_not_a_terminal_prints_one_line_per_epoch(capsys):
    model, x, y = fitted("acc")
    model.fit(x, y, batch_size=10, epochs=2, verbose=1, validation_data=(x, y))
    out = capsys.readouterr().out
    assert "\r" not in out
    lines = out.splitlines()
    assert len(lines) == 4
    assert lines[0] == "Epoch 1/2" and lines[2] == "Epoch 2/2"
    bar = rf"^10/10 \[={{30}}\] - \d+s {STEP} - loss: {NUM} - acc: {NUM} - val_loss: {NUM} - val_acc: {NUM}$"
    assert re.match(bar, lines[1]), lines[1]
    assert re.match(bar, lines[3]), lines[3]


def test_auto_verbose_is_1(capsys):
    model, x, y = fitted()
    model.fit(x, y, batch_size=50, epochs=1)
    assert capsys.readouterr().out.splitlines()[0] == "Epoch 1/1"


def test_metric_shown_under_the_name_given(capsys):
    model, x, y = fitted("accuracy")
    model.fit(x, y, batch_size=25, epochs=1, verbose=1)
    line = capsys.readouterr().out.splitlines()[1]
    assert re.match(rf"^4/4 \[=+\] - \d+s {STEP} - loss: {NUM} - accuracy: {NUM}$", line), line


def test_verbose_2_prints_one_summary_line_per_epoch(capsys):
    model, x, y = fitted()
    model.fit(x, y, batch_size=10, epochs=3, verbose=2, validation_split=0.2)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 6
    assert lines[::2] == ["Epoch 1/3", "Epoch 2/3", "Epoch 3/3"]
    for line in lines[1::2]:
        assert re.match(rf"^8/8 - \d+s - loss: {NUM} - acc: {NUM} - val_loss: {NUM} - val_acc: {NUM} - "
                        rf"\d+(s|ms|us)/epoch - {STEP}$", line), line


def test_verbose_0_is_silent(capsys):
    model, x, y = fitted()
    model.fit(x, y, epochs=2, verbose=0, validation_split=0.5)
    model.evaluate(x, y, verbose=0)
    model.predict(x, verbose=0)
    assert capsys.readouterr().out == ""


def test_evaluate_and_predict_progress(capsys):
    model, x, y = fitted()
    model.evaluate(x, y, batch_size=32, verbose=1)
    model.predict(x, batch_size=32, verbose=1)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2
    assert re.match(rf"^4/4 \[={{30}}\] - \d+s {STEP} - loss: {NUM} - acc: {NUM}$", lines[0]), lines[0]
    assert re.match(rf"^4/4 \[={{30}}\] - \d+s {STEP}$", lines[1]), lines[1]


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_terminal_bar_is_redrawn_in_place():
    stream = Terminal()
    bar = Progbar(4, verbose=1, interval=0.0, stream=stream)
    for i in range(1, 5):
        bar.update(i, [("loss", 1.0 / i)])
    bar.update(4, [("loss", 0.25), ("val_loss", 0.5)], finalize=True)
    text = stream.getvalue()
    frames = text.split("\r")[1:]
    assert len(frames) == 5 and text.endswith("\n") and text.count("\n") == 1
    assert re.match(rf"^1/4 \[={{6}}>\.{{23}}\] - ETA: \d+s - loss: 1\.0000", frames[0]), frames[0]
    assert re.match(rf"^4/4 \[={{30}}\] - \d+s {STEP} - loss: 0\.2500 - val_loss: 0\.5000\n$", frames[-1])


def test_terminal_bar_is_throttled():
    stream = Terminal()
    bar = Progbar(1000, verbose=1, interval=3600, stream=stream)
    for i in range(1, 1001):
        bar.update(i, [("loss", 0.5)])
    bar.update(1000, [("loss", 0.5)], finalize=True)
    assert stream.getvalue().count("\r") <= 2


def test_shorter_frames_erase_the_previous_one():
    stream = Terminal()
    bar = Progbar(2, verbose=1, interval=0.0, stream=stream)
    bar.update(1, [("loss", 123456.0), ("acc", 0.5)])
    bar.update(2, [("loss", 1.0)], finalize=True)
    first, last = stream.getvalue().split("\r")[1:]
    assert len(last.rstrip("\n")) >= len(first)


@pytest.mark.parametrize("seconds,text", [(2.0, "2s/step"), (0.021, "21ms/step"), (0.0004, "400us/step")])
def test_time_format(seconds, text):
    assert format_time(seconds, "step") == text


def test_eta_format():
    assert format_eta(42) == "42s" and format_eta(125) == "2:05" and format_eta(3725) == "1:02:05"


def test_tiny_values_use_exponent_notation():
    stream = io.StringIO()
    Progbar(1, verbose=2, stream=stream).update(1, [("loss", 1e-5)], finalize=True)
    assert "loss: 1.0000e-05" in stream.getvalue()
