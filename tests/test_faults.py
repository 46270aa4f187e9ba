"""Faults: sizes whose byte count overflows or cannot be allocated, NaN and inf in the data, absurd thread counts.

None of them may crash the process or hang; each gives a built-in exception or a well-defined (NaN-propagating)
result.
"""
import os

import numpy as np
import pytest

import cnnlite
from cnnlite import _kernels as K

MAX_EXTENT = 2**31 - 1


def f32(*shape):
    return np.random.default_rng(0).standard_normal(shape).astype(np.float32)


# --- sizes that overflow 64-bit arithmetic or cannot be allocated --------------------------------------------------

HUGE = [
    # Pads/strides/pool sizes beyond 2**31 - 1: sums of them would overflow int64 inside the bindings and kernels.
    (lambda: K.conv2d_forward(f32(1, 3, 3, 1), f32(2, 2, 1, 1), None, 1, 1, 2**62, 2**62, 0, 0), "pad_top"),
    (lambda: K.conv2d_forward(f32(1, 3, 3, 1), f32(2, 2, 1, 1), None, 1, 1, 0, 0, 0, 2**70), "pad_right"),
    (lambda: K.conv2d_backward(f32(1, 2, 2, 1), f32(1, 3, 3, 1), f32(2, 2, 1, 1), 2**63, 1, 0, 0, 0, 0), "sh"),
    (lambda: K.maxpool2d_forward(f32(1, 3, 3, 1), 2**62, 1, 1, 1, 2**62 - 1, 2**62 - 1, 0, 0), "ph"),
    (lambda: K.avgpool2d_forward(f32(1, 3, 3, 1), 2, 2, 2**63, 1, 0, 0, 0, 0), "sh"),
    (lambda: K.avgpool2d_backward(f32(1, 1, 1, 1), 2**62, 2**62, 2**62, 2**62, 1, 1, 0, 0, 0, 0), r"\bh\b"),
    (lambda: K.maxpool2d_backward(f32(1, 1, 1, 1), np.zeros((1, 1, 1, 1), np.int32), 2**40, 2**40), r"\bh\b"),
    # An empty batch whose image dimensions are absurd: nothing to allocate, but the kernel's index arithmetic
    # (h * w * channels) would overflow; the kernel's own checks reject it.
    (lambda: K.conv2d_forward(np.empty((0, 2**40, 2**20, 1), np.float32), f32(2, 2, 1, 1), None, 1, 1, 0, 0, 0, 0),
     "exceeds 2147483647"),
    (lambda: K.maxpool2d_forward(np.empty((0, 2**40, 2**20, 1), np.float32), 2, 2, 2, 2, 0, 0, 0, 0),
     "input height"),
]


@pytest.mark.parametrize("call, name", HUGE, ids=[h[1] for h in HUGE])
def test_sizes_that_overflow_are_rejected_by_name(call, name):
    with pytest.raises(ValueError, match=name):
        call()


def test_an_output_too_large_to_represent_is_a_clean_error():
    # Pads within bounds but an output of 2**32 x 2**32 pixels: its byte count overflows; NumPy refuses it.
    with pytest.raises((ValueError, MemoryError)):
        K.conv2d_forward(f32(1, 3, 3, 1), f32(2, 2, 1, 1), None, 1, 1, *([MAX_EXTENT] * 4))
    with pytest.raises((ValueError, MemoryError)):
        K.maxpool2d_backward(f32(1, 1, 1, 1), np.zeros((1, 1, 1, 1), np.int32), 2**31 - 1, 2**31 - 1)


def test_an_output_too_large_to_allocate_is_a_memory_error():
    # 2**41 x 4 float32 = 32 TiB: representable, never allocatable -> MemoryError, not a crash.
    with pytest.raises(MemoryError):
        K.conv2d_forward(f32(1, 3, 3, 1), f32(2, 2, 1, 1), None, 1, 1, 2**31 - 1, 2**31 - 1, 0, 0)


@pytest.mark.parametrize("n", [2**40, 100_000, 257])
def test_absurd_thread_counts_are_refused(n):
    old = cnnlite.get_num_threads()
    with pytest.raises(ValueError, match="n must be an int >= 1 and <= 256"):
        cnnlite.set_num_threads(n)
    assert cnnlite.get_num_threads() == old
    # (100 000 threads used to be accepted, and the next parallel kernel crashed the process.)
    assert K.relu_forward(np.ones(100_000, np.float32)).sum() == 100_000


# --- NaN and inf in the data ---------------------------------------------------------------------------------------

def _poisoned(shape, value, rng, fraction=0.2):
    x = rng.standard_normal(shape).astype(np.float32)
    x[rng.random(shape) < fraction] = value
    return x


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_maxpool_with_nan_or_inf_keeps_argmax_in_its_window(value, rng):
    x = _poisoned((2, 6, 6, 5), value, rng, 0.5)
    x[0, :2, :2, :] = value                      # whole windows of NaN/inf
    y, argmax = K.maxpool2d_forward(x, 2, 2, 2, 2, 0, 0, 0, 0)
    # argmax always points into the window it came from, so backward never writes outside dx
    rows, cols = argmax // 6, argmax % 6
    oi, oj = np.meshgrid(np.arange(3), np.arange(3), indexing="ij")
    assert np.all(rows // 2 == oi[None, :, :, None]) and np.all(cols // 2 == oj[None, :, :, None])
    dx = K.maxpool2d_backward(np.ones_like(y), argmax, 6, 6)
    assert dx.sum() == y.size


@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_nan_and_inf_propagate_through_the_kernels_without_crashing(value, rng):
    x = _poisoned((4, 6, 6, 3), value, rng)
    w = f32(3, 3, 3, 4)
    y = K.conv2d_forward(x, w, None, 1, 1, 1, 1, 1, 1)
    assert not np.all(np.isfinite(y))
    dx, dw, db = K.conv2d_backward(np.ones_like(y), x, w, 1, 1, 1, 1, 1, 1)
    assert dx.shape == x.shape and not np.all(np.isfinite(dw))
    h = K.relu_forward(x)
    assert np.isnan(h).sum() == np.isnan(x).sum()  # relu does not silently turn NaN into 0
    flat = x.reshape(4, -1)
    d = K.dense_forward(flat, f32(flat.shape[1], 10), None)
    assert d.shape == (4, 10)
    y = K.dropout_forward(x, 0.5, 1, 1)
    assert y.shape == x.shape
    w_opt, g = f32(5), np.full(5, value, np.float32)
    K.adam_update(w_opt, g, np.zeros(5, np.float32), np.zeros(5, np.float32), 1e-3, 0.9, 0.999, 1e-7)
    assert not np.all(np.isfinite(w_opt))


def test_nan_logits_give_a_nan_loss_not_a_crash():
    logits = f32(3, 4)
    logits[1, 2] = np.nan
    loss, probs, dlogits = K.softmax_xent(logits, np.eye(4, dtype=np.float32)[[0, 1, 2]])
    assert np.isnan(loss)
    assert np.all(np.isfinite(probs[[0, 2]]))  # other rows are unaffected
    loss, _, _ = K.sparse_softmax_xent(logits, np.array([0, 1, 2]))
    assert np.isnan(loss)


@pytest.mark.parametrize("scale", [1e4, 1e20, 3e38])
def test_softmax_cross_entropy_stays_finite_for_huge_logits(scale, rng):
    logits = np.clip(rng.standard_normal((64, 10)) * scale, -3.4e38, 3.4e38).astype(np.float32)
    logits[0] = [3.4e38, -3.4e38] + [0] * 8                 # the extremes of float32
    labels = rng.integers(0, 10, 64)
    targets = np.eye(10, dtype=np.float32)[labels]
    for loss, probs, dlogits in (K.softmax_xent(logits, targets), K.sparse_softmax_xent(logits, labels)):
        assert np.isfinite(loss) and 0 <= loss <= -np.log(1e-7) + 1e-4
        assert np.all(np.isfinite(probs)) and np.all(np.isfinite(dlogits))
        np.testing.assert_allclose(probs.sum(axis=1), 1, rtol=1e-5)
    y = K.softmax_forward(logits)
    assert np.all(np.isfinite(y))
    assert np.all(np.isfinite(K.sigmoid_forward(logits))) and np.all(np.isfinite(K.tanh_forward(logits)))


# ===== The API under faults: NaN/inf in the data or the loss, and an interrupted fit ==============================

import signal  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402

from cnnlite import callbacks as cb  # noqa: E402
from cnnlite.layers import Conv2D, Dense, Dropout, Flatten, MaxPooling2D  # noqa: E402
from cnnlite.models import Sequential, load_model  # noqa: E402


def _data(n=240, seed=3):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, n)
    x = (rng.standard_normal((n, 8, 8, 1)) + labels[:, None, None, None]).astype(np.float32)
    return x, np.eye(3, dtype=np.float32)[labels]


def _cnn(optimizer="adam"):
    model = Sequential([Conv2D(4, 3, activation="relu", input_shape=(8, 8, 1)), MaxPooling2D(2), Dropout(0.25),
                        Flatten(), Dense(3, activation="softmax")])
    model.compile(optimizer, "categorical_crossentropy", ["accuracy"])
    return model


class _BatchCounter(cb.Callback):
    def __init__(self):
        super().__init__()
        self.batches = 0

    def on_train_batch_end(self, batch, logs=None):
        self.batches += 1


@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_terminate_on_nan_stops_training_cleanly(value, capsys):
    x, y = _data()
    x[:20] = value                          # the first batch (no shuffling) produces a NaN loss
    model, counter = _cnn(), _BatchCounter()
    history = model.fit(x, y, batch_size=20, epochs=5, shuffle=False, verbose=0,
                        callbacks=[cb.TerminateOnNaN(), counter])
    assert counter.batches == 1 and model.stop_training
    assert len(history.history["loss"]) == 1 and not np.isfinite(history.history["loss"][0])
    assert "Invalid loss, terminating training" in capsys.readouterr().out
    assert model.predict(x[20:], verbose=0).shape == (220, 3)   # still callable afterwards


def test_nan_and_inf_in_data_or_targets_never_crash():
    x, y = _data()
    for xb, yb in ((np.where(np.random.default_rng(0).random(x.shape) < 0.01, np.nan, x), y),
                   (np.where(np.random.default_rng(1).random(x.shape) < 0.01, np.inf, x), y),
                   (x, np.where(y == 1, np.nan, y)),
                   (x.astype(np.float64) * 1e300, y)):          # overflows to inf when cast to float32
        model = _cnn()
        with np.errstate(over="ignore"):          # the float64 -> float32 cast overflows on purpose
            history = model.fit(xb, yb, batch_size=40, epochs=2, verbose=0)
            loss, acc = model.evaluate(xb, yb, verbose=0)
        assert len(history.history["loss"]) == 2
        # the docs' claim: the NaN loss is recorded in History (every batch sees a NaN, so each epoch's mean is
        # NaN), and evaluate reports it too; the accuracy stays a real number
        assert all(np.isnan(v) for v in history.history["loss"]), history.history
        assert np.isnan(loss) and 0.0 <= acc <= 1.0
        assert all(0.0 <= v <= 1.0 for v in history.history["accuracy"])
        assert model.predict(x[:5], verbose=0).shape == (5, 3)


def test_large_logits_keep_the_training_loss_finite():
    x, y = _data()
    model = _cnn("sgd")
    w = model.get_weights()
    w[-2] *= 1e4                                 # the last Dense produces logits of order 1e4..1e5
    model.set_weights(w)
    history = model.fit(x, y, batch_size=40, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    assert np.all(np.isfinite(model.predict(x, verbose=0)))


def _check_usable_after_interrupt(model, x, y, tmp_path, completed_epochs, build=_cnn):
    """What must hold after a KeyboardInterrupt escaped fit."""
    weights = model.get_weights()
    assert [w.shape for w in weights] == [w.shape for w in build().get_weights()]
    assert all(np.all(np.isfinite(w)) for w in weights)
    assert model.history is not None
    assert model.history.epoch == list(range(completed_epochs))
    assert len(model.history.history.get("loss", [])) == completed_epochs
    probs = model.predict(x, verbose=0)
    np.testing.assert_allclose(probs.sum(axis=1), 1, rtol=1e-5)
    path = tmp_path / "after_interrupt.keras"
    model.save(path)
    loaded = load_model(path)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), probs)
    loss_before = model.evaluate(x, y, verbose=0)[0]
    history = model.fit(x, y, batch_size=40, epochs=3, verbose=0)   # training resumes
    assert len(history.history["loss"]) == 3 and np.all(np.isfinite(history.history["loss"]))
    assert any(not np.array_equal(a, b) for a, b in zip(weights, model.get_weights()))
    # The state the interrupt left is whole: the file written from it (weights, optimizer slots, generators, dropout
    # steps) continues training exactly as the model in memory does.
    loaded.fit(x, y, batch_size=40, epochs=3, verbose=0)
    for a, b in zip(model.get_weights(), loaded.get_weights()):
        np.testing.assert_array_equal(a, b)
    # How far training got before the interrupt depends on the machine's speed; near its minimum three more epochs
    # may raise the loss a little (seen: 0.00029 -> 0.00066 after 6 epochs of the wide CNN; +1.6 % from 0.035), a
    # broken state by orders of magnitude (a fresh model's loss is about ln 3 = 1.1).
    assert model.evaluate(x, y, verbose=0)[0] < 1.25 * loss_before + 0.01


@pytest.mark.parametrize("hook, epoch, batch", [("on_train_batch_begin", 0, 0), ("on_train_batch_end", 1, 2),
                                                ("on_epoch_end", 1, None), ("on_epoch_begin", 2, None)])
def test_keyboard_interrupt_from_a_callback_leaves_model_and_history_usable(hook, epoch, batch, tmp_path):
    x, y = _data()

    class Interrupt(cb.Callback):
        def __init__(self):
            super().__init__()
            self.epoch = -1

        def on_epoch_begin(self, e, logs=None):
            self.epoch = e
            if hook == "on_epoch_begin" and e == epoch:
                raise KeyboardInterrupt

        def on_epoch_end(self, e, logs=None):
            if hook == "on_epoch_end" and e == epoch:
                raise KeyboardInterrupt

        def on_train_batch_begin(self, b, logs=None):
            if hook == "on_train_batch_begin" and (self.epoch, b) == (epoch, batch):
                raise KeyboardInterrupt

        def on_train_batch_end(self, b, logs=None):
            if hook == "on_train_batch_end" and (self.epoch, b) == (epoch, batch):
                raise KeyboardInterrupt

    model = _cnn()
    with pytest.raises(KeyboardInterrupt):
        model.fit(x, y, batch_size=40, epochs=5, verbose=0, callbacks=[Interrupt()])
    # on_epoch_end: History (appended after the user's callbacks) has not recorded the interrupted epoch yet
    _check_usable_after_interrupt(model, x, y, tmp_path, completed_epochs=epoch)


@pytest.mark.parametrize("where", ["forward", "backward", "optimizer"])
def test_keyboard_interrupt_inside_a_training_step_leaves_the_model_usable(where, tmp_path, monkeypatch):
    x, y = _data()
    model = _cnn()
    model.fit(x, y, batch_size=40, epochs=1, verbose=0)
    calls = {"n": 0}
    if where == "optimizer":
        target, name = model.optimizer, "_update"       # between two weights' updates of one step
    else:
        target, name = model.layers[-1], where
    original = getattr(target, name)

    def interrupted(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 7:
            raise KeyboardInterrupt
        return original(*args, **kwargs)

    monkeypatch.setattr(target, name, interrupted)
    with pytest.raises(KeyboardInterrupt):
        model.fit(x, y, batch_size=40, epochs=3, verbose=0)
    monkeypatch.setattr(target, name, original)
    # 6 batches an epoch: the 7th forward/backward call is in epoch 1; the 7th weight update (4 weights a step) is
    # in the middle of step 2 of epoch 0, so that step is half applied, and the model must still be usable.
    _check_usable_after_interrupt(model, x, y, tmp_path, completed_epochs=0 if where == "optimizer" else 1)


@pytest.mark.skipif(not hasattr(signal, "setitimer"), reason="needs POSIX interval timers")
@pytest.mark.parametrize("delay", [0.01, 0.05, 0.13])
def test_a_real_sigint_during_fit_leaves_the_model_usable(delay, tmp_path):
    """Ctrl-C from an interval timer: the SIGALRM handler (Python code, so between two kernels) sends SIGINT.
    test_a_sigint_delivered_while_a_kernel_runs_leaves_the_model_usable delivers it during a kernel."""
    assert threading.current_thread() is threading.main_thread()
    x, y = _data(960)
    model = _cnn()
    model.fit(x[:40], y[:40], epochs=1, verbose=0)                   # build and warm up
    old = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, lambda *a: os.kill(os.getpid(), signal.SIGINT))
        signal.setitimer(signal.ITIMER_REAL, delay)
        with pytest.raises(KeyboardInterrupt):
            model.fit(x, y, batch_size=16, epochs=1000, verbose=0)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, old)
    completed = len(model.history.epoch)
    _check_usable_after_interrupt(model, x[:240], y[:240], tmp_path, completed_epochs=completed)


def _wide_cnn():
    model = Sequential([Conv2D(32, 3, activation="relu", input_shape=(32, 32, 16)), MaxPooling2D(2), Flatten(),
                        Dense(3, activation="softmax")])
    model.compile("adam", "categorical_crossentropy", ["accuracy"])
    return model


@pytest.mark.parametrize("nth_call", [1, 6, 11])
def test_a_sigint_delivered_while_a_kernel_runs_leaves_the_model_usable(nth_call, tmp_path, monkeypatch):
    """Ctrl-C while a kernel runs: another thread sends SIGINT to the process while the main thread is inside the
    nth call of the first convolution's forward kernel (conv2d_forward, or conv2d_maxpool_forward when the plan runs
    the max-pool in its store: tens of milliseconds, GIL released). The call completes, Python
    raises KeyboardInterrupt once it is back in the interpreter, and the model is usable afterwards.

    Proof that the signal landed inside the kernel: the main thread entered the call at t_enter, the signal was sent
    at t_kill >= t_enter + 3 ms (time enough to reach the C code; the sending thread can only run then because the
    binding released the GIL), and that very call returned at t_return > t_kill. The sending thread sees the call
    still running and then sends; on a loaded machine it can be descheduled in between and send after the call
    returned. That attempt proves nothing about the kernel (the model must still be usable after it), so the test
    tries again, up to 5 times, and needs one attempt that landed inside the call."""
    assert threading.current_thread() is threading.main_thread()
    rng = np.random.default_rng(5)
    labels = rng.integers(0, 3, 256)
    x = (rng.standard_normal((256, 32, 32, 16)) + labels[:, None, None, None]).astype(np.float32)
    y = np.eye(3, dtype=np.float32)[labels]
    attempts = []
    for _ in range(5):
        model = _wide_cnn()
        model.fit(x[:64], y[:64], batch_size=64, epochs=1, verbose=0)          # build and warm up
        kernel = "conv2d_maxpool_forward" if model.plan.steps[0].pool_in_store else "conv2d_forward"
        calls, sent = _interrupt_inside_the_nth_call(model, x, y, nth_call, kernel, monkeypatch)
        assert sent["call"] is not None, f"no {kernel} call lasted 3 ms: the signal was sent after fit"
        t_enter, t_return = calls[sent["call"]]
        assert t_enter + 0.003 <= sent["t_kill"], (t_enter, sent)
        _check_usable_after_interrupt(model, x[:128], y[:128], tmp_path, completed_epochs=len(model.history.epoch),
                                      build=_wide_cnn)
        attempts.append((t_enter, sent["t_kill"], t_return))
        if sent["t_kill"] < t_return:                                       # landed inside the call
            assert len(calls) == sent["call"] + 1    # KeyboardInterrupt came right after the interrupted kernel call
            return
    pytest.fail(f"the signal never landed inside a {kernel} call in 5 attempts (t_enter, t_kill, t_return): "
                f"{attempts}")


def _interrupt_inside_the_nth_call(model, x, y, nth_call, kernel, monkeypatch):
    """Runs fit with the binding `kernel` timed; a second thread sends SIGINT once the nth (or a later) call has run
    for 3 ms. Returns the calls' [t_enter, t_return] and {t_kill, call}."""
    calls = []                                                             # per call: [t_enter, t_return]
    original = getattr(K, kernel)

    def timed(*args, **kwargs):
        record = [time.perf_counter(), None]
        calls.append(record)
        try:
            return original(*args, **kwargs)
        finally:
            record[1] = time.perf_counter()

    sent = {}

    def interrupter():
        target, deadline = nth_call - 1, time.monotonic() + 120
        while time.monotonic() < deadline:
            if len(calls) > target:
                t_enter, t_return = calls[target]
                if t_return is not None:                   # that call ended before we saw it long enough
                    target += 1
                elif time.perf_counter() - t_enter >= 0.003:
                    os.kill(os.getpid(), signal.SIGINT)
                    sent.update(t_kill=time.perf_counter(), call=target)
                    return
            time.sleep(0.0002)
        sent.update(t_kill=time.perf_counter(), call=None)   # no call lasted 3 ms: stop fit, fail below
        os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(K, kernel, timed)
    old = signal.signal(signal.SIGINT, signal.default_int_handler)
    thread = threading.Thread(target=interrupter, daemon=True)
    try:
        thread.start()
        with pytest.raises(KeyboardInterrupt):
            model.fit(x, y, batch_size=64, epochs=1000, verbose=0)
    finally:
        thread.join(timeout=10)
        signal.signal(signal.SIGINT, old)
        monkeypatch.setattr(K, kernel, original)
    return calls, sent
