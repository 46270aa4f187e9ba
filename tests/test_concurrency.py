"""Several models and threads at once: everything per call lives in the call and the model's plan, so results are
bitwise what each gives alone, and the fused paths stay on."""
import threading

import numpy as np
import pytest

import cnnlite
from cnnlite import config
from cnnlite.layers import Conv2D, Dense, Dropout, Flatten, MaxPooling2D
from cnnlite.models import Sequential


def _full_cnn(seed):
    np.random.seed(seed)
    model = Sequential([
        Conv2D(16, (3, 3), input_shape=(28, 28, 1), activation="relu"), Conv2D(32, (3, 3), activation="relu"),
        MaxPooling2D(pool_size=(2, 2)), Conv2D(64, (3, 3), activation="relu"), MaxPooling2D(pool_size=(2, 2)),
        Dropout(0.25), Flatten(), Dense(128, activation="relu"), Dropout(0.25), Dense(10, activation="softmax")])
    model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
    return model


def _cnn8(seed):
    np.random.seed(seed)
    model = Sequential([Conv2D(8, (3, 3), padding="same", activation="relu", input_shape=(28, 28, 1)), Flatten(),
                        Dense(10, activation="softmax")])
    model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
    return model


def _data(n, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((n, 28, 28, 1), dtype=np.float32), np.eye(10, dtype=np.float32)[rng.integers(0, 10, n)]


def _train(make, seed, x, y, out, key, conv_algo="auto"):
    with config.override(conv_algo=conv_algo):  # (this thread's context only)
        model = make(seed)
        history = model.fit(x, y, batch_size=64, epochs=2, verbose=0, shuffle=True, profile=True)
    out[key] = (model, history)


# The full network's conv2 and conv3 pool in their Winograd stores by the automatic choice at avx512; below it conv2's
# forward (16 input channels) is GEMM (winograd_min_channels), so Winograd is forced there to keep both fusions on.
FULL_ALGO = "auto" if config.get_isa() == "avx512" else "winograd"


def _fused_rows(profile):
    return [r["plan"] for r in profile.as_dict()["train"]["rows"] if "folded" in r["plan"] or "applies" in r["plan"]
            or "max-pool" in r["plan"] or "fused into" in r["plan"]]


def test_two_chapter_networks_trained_at_once_give_the_bits_they_give_alone():
    x, y = _data(320)
    alone = {}
    _train(_full_cnn, 1, x, y, alone, "full", FULL_ALGO)
    _train(_cnn8, 2, x, y, alone, "cnn8")
    together = {}
    threads = [threading.Thread(target=_train, args=(_full_cnn, 1, x, y, together, "full", FULL_ALGO)),
               threading.Thread(target=_train, args=(_cnn8, 2, x, y, together, "cnn8"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for key in ("full", "cnn8"):
        model_alone, history_alone = alone[key]
        model_together, history_together = together[key]
        for a, b in zip(model_alone.get_weights(), model_together.get_weights()):
            assert a.tobytes() == b.tobytes()
        assert history_alone.history == history_together.history
    # Both ran their fused paths: each profile names both max-pools of the full network run in the Winograd stores.
    fused = _fused_rows(together["full"][1].profile)
    assert sum("bias+relu+max-pool in the winograd store" in r for r in fused) == 2
    assert sum("fused into the previous conv" in r for r in fused) == 2
    assert _fused_rows(together["full"][1].profile) == _fused_rows(alone["full"][1].profile)
    # Each thread's profile holds its own model only.
    names = {r["name"] for r in together["cnn8"][1].profile.as_dict()["train"]["rows"]}
    assert not names & {layer.name for layer in together["full"][0].layers}


def test_one_model_predicted_from_several_threads_gives_the_serial_predictions():
    x, y = _data(256, seed=3)
    model = _full_cnn(4)
    model.fit(x, y, batch_size=64, epochs=1, verbose=0)
    serial = model.predict(x, batch_size=50, verbose=0)
    results = [None] * 4

    def run(i):
        results[i] = model.predict(x, batch_size=50, verbose=0)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for r in results:
        assert r.tobytes() == serial.tobytes()


def test_training_one_model_from_two_threads_is_refused():
    x, y = _data(128, seed=5)
    model = _cnn8(6)
    started, release = threading.Event(), threading.Event()

    class Hold(cnnlite.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            started.set()
            release.wait(30)

    worker = threading.Thread(target=model.fit, args=(x, y),
                              kwargs=dict(batch_size=64, epochs=1, verbose=0, callbacks=[Hold()]))
    worker.start()
    try:
        assert started.wait(30)
        with pytest.raises(RuntimeError, match="being trained in another thread"):
            model.fit(x, y, batch_size=64, epochs=1, verbose=0)
        with pytest.raises(RuntimeError, match="being trained in another thread"):
            model.train_on_batch(x, y)
        for call in (lambda: model.predict(x, verbose=0), lambda: model.evaluate(x, y, verbose=0),
                     lambda: model.predict_on_batch(x), lambda: model(x)):
            with pytest.raises(RuntimeError, match="while another thread trains it"):
                call()
    finally:
        release.set()
        worker.join()
    # Once that fit has ended, the model is free again; its own callbacks may always evaluate and predict.
    seen = []

    class Peek(cnnlite.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            seen.append(self.model.predict(x[:4], verbose=0).shape)

    model.fit(x, y, batch_size=64, epochs=1, verbose=0, callbacks=[Peek()])
    assert seen == [(4, 10)]
