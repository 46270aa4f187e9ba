"""compile / fit / evaluate / predict / *_on_batch: results, History, reproducibility, dropout mode, errors."""
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import needs

import cnnlite
from cnnlite import callbacks, losses, optimizers
from cnnlite.layers import Conv2D, Dense, Dropout, Flatten, MaxPooling2D
from cnnlite.models import Sequential


def blobs(n=300, d=8, k=3, seed=0):
    """Linearly separable-ish clusters: a model should learn them quickly."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, k, n)
    centers = rng.normal(scale=3.0, size=(k, d))
    x = centers[labels] + rng.normal(size=(n, d))
    return x.astype(np.float32), np.eye(k, dtype=np.float32)[labels], labels


def mlp(d=8, k=3, hidden=16, dropout=0.0):
    layers = [Dense(hidden, activation="relu", input_shape=(d,))]
    if dropout:
        layers.append(Dropout(dropout))
    layers.append(Dense(k, activation="softmax"))
    return Sequential(layers)


def small_cnn():
    return Sequential([Conv2D(4, 3, activation="relu", input_shape=(8, 8, 1)), MaxPooling2D(), Dropout(0.3),
                       Flatten(), Dense(3, activation="softmax")])


# ----- fit / evaluate / predict -------------------------------------------------------------------------------
def test_fit_learns_and_returns_history_with_both_accuracy_names():
    x, y, _ = blobs()
    np.random.seed(0)
    model = mlp()
    model.compile(optimizer=optimizers.Adam(0.01), loss="categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(x, y, batch_size=32, epochs=5, validation_data=(x[:60], y[:60]), verbose=0)
    assert isinstance(history, callbacks.History) and model.history is history
    assert set(history.history) == {"loss", "acc", "accuracy", "val_loss", "val_acc", "val_accuracy"}
    assert all(len(v) == 5 for v in history.history.values())
    assert history.history["acc"] == history.history["accuracy"]
    assert history.history["val_acc"] == history.history["val_accuracy"]
    assert history.epoch == [0, 1, 2, 3, 4]
    assert history.params["epochs"] == 5 and history.params["steps"] == 10
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert history.history["acc"][-1] > 0.9


def test_evaluate_matches_epoch_metrics_and_predict():
    x, y, labels = blobs()
    np.random.seed(1)
    model = mlp()
    model.compile("adam", "categorical_crossentropy", ["acc"])
    model.fit(x, y, epochs=3, verbose=0)
    loss, acc = model.evaluate(x, y, batch_size=64, verbose=0)
    probs = model.predict(x, batch_size=50, verbose=0)
    assert probs.shape == (300, 3)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    assert acc == pytest.approx(np.mean(probs.argmax(1) == labels))
    want = -np.mean(np.log(np.clip(probs[np.arange(300), labels], 1e-7, 1)))
    assert loss == pytest.approx(want, rel=1e-4)
    assert model.evaluate(x, y, verbose=0, return_dict=True) == pytest.approx({"loss": loss, "acc": acc})
    assert model.metrics_names == ["loss", "acc"]


def test_evaluate_without_metrics_returns_a_scalar():
    x, y, _ = blobs(50)
    model = mlp()
    model.compile("sgd", "categorical_crossentropy")
    result = model.evaluate(x, y, verbose=0)
    assert isinstance(result, float)


def test_sparse_labels_and_mse():
    x, y, labels = blobs()
    np.random.seed(2)
    model = mlp()
    model.compile(optimizers.Adam(0.01), "sparse_categorical_crossentropy", ["accuracy"])
    history = model.fit(x, labels, epochs=4, verbose=0, validation_split=0.2)
    assert history.history["accuracy"][-1] > 0.9 and "val_accuracy" in history.history
    assert model.evaluate(x, labels.reshape(-1, 1), verbose=0)[1] > 0.9
    reg = Sequential([Dense(1, input_shape=(8,))])
    reg.compile(optimizers.SGD(0.01), "mse")
    target = x @ np.linspace(-1, 1, 8).astype(np.float32)
    losses_seen = reg.fit(x, target, epochs=20, verbose=0, batch_size=30).history["loss"]
    assert losses_seen[-1] < 0.05 * losses_seen[0]


def test_fused_softmax_equals_explicit_loss_path():
    """Softmax+cross-entropy runs fused on logits; a from_logits loss on a linear output gives the same numbers."""
    x, y, _ = blobs(64)
    np.random.seed(3)
    fused = mlp()
    logits = Sequential([Dense(16, activation="relu", input_shape=(8,)), Dense(3)])
    logits.set_weights(fused.get_weights())
    fused.compile(optimizers.SGD(0.1), "categorical_crossentropy")
    logits.compile(optimizers.SGD(0.1), losses.CategoricalCrossentropy(from_logits=True))
    assert fused.plan.loss_fused and fused.plan.steps[-1].logits
    assert not logits.plan.loss_fused and not logits.plan.steps[-1].logits
    for _ in range(3):
        a = fused.train_on_batch(x, y)
        b = logits.train_on_batch(x, y)
        assert a == pytest.approx(b, rel=1e-6)
    for w1, w2 in zip(fused.get_weights(), logits.get_weights()):
        np.testing.assert_allclose(w1, w2, rtol=1e-5, atol=1e-7)


def test_categorical_crossentropy_without_softmax_uses_probabilities():
    x, y, _ = blobs(40)
    model = Sequential([Dense(3, activation="sigmoid", input_shape=(8,))])
    model.compile("adam", "categorical_crossentropy")
    out = model.predict(x, verbose=0)
    assert model.evaluate(x, y, verbose=0) == pytest.approx(
        float(losses.categorical_crossentropy(y, out).mean()), rel=1e-4)


def test_on_batch_methods():
    x, y, _ = blobs(40)
    model = mlp()
    model.compile("adam", "categorical_crossentropy", ["accuracy"])
    loss, acc = model.train_on_batch(x, y)
    assert 0 <= acc <= 1 and loss > 0
    assert model.optimizer.iterations == 1
    before = model.get_weights()
    tl, ta = model.test_on_batch(x, y)
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert (tl, ta) == pytest.approx(tuple(model.evaluate(x, y, batch_size=40, verbose=0)))
    assert model.predict_on_batch(x).shape == (40, 3)
    assert set(model.train_on_batch(x, y, return_dict=True)) == {"loss", "accuracy"}


def test_fit_accepts_any_numeric_dtype_layout_and_lists():
    x, y, _ = blobs(64)
    results = []
    tenths = (x * 10).astype(np.int32) / 10
    for xs in (x, x.astype(np.float64), np.asfortranarray(x), tenths, np.repeat(x, 2, axis=0)[::2], x.tolist(),
               tenths.astype(np.float32)):
        np.random.seed(4)
        model = mlp()
        model.compile("sgd", "categorical_crossentropy")
        model.fit(xs, y.astype(np.int64), epochs=1, batch_size=16, verbose=0)
        results.append(model.get_weights())
    for i in (1, 2, 4, 5):        # the same values in another dtype, layout or container: the same bits
        for a, b in zip(results[0], results[i]):
            np.testing.assert_array_equal(a, b)
    for a, b in zip(results[3], results[6]):   # float64 tenths train like their float32 values
        np.testing.assert_array_equal(a, b)


def test_fit_zero_epochs_and_initial_epoch():
    x, y, _ = blobs(32)
    model = mlp()
    model.compile("adam", "categorical_crossentropy", ["acc"])
    assert model.fit(x, y, epochs=0, verbose=0).history == {}
    history = model.fit(x, y, epochs=3, initial_epoch=1, verbose=0)
    assert history.epoch == [1, 2]


def test_callbacks_see_the_keras_hooks_and_can_stop_training():
    seen = []

    class Recorder(callbacks.Callback):
        def on_train_begin(self, logs=None):
            seen.append("train_begin")

        def on_epoch_end(self, epoch, logs=None):
            seen.append(("epoch_end", epoch, sorted(logs)))
            if epoch == 1:
                self.model.stop_training = True

        def on_train_batch_end(self, batch, logs=None):
            seen.append(("batch", batch, sorted(logs)))

        def on_test_begin(self, logs=None):
            seen.append("test_begin")

    x, y, _ = blobs(64)
    model = mlp()
    model.compile("adam", "categorical_crossentropy", ["accuracy"])
    history = model.fit(x, y, epochs=10, batch_size=32, validation_split=0.25, callbacks=[Recorder()], verbose=0)
    assert history.epoch == [0, 1]
    assert seen[0] == "train_begin"
    assert ("batch", 0, ["acc", "accuracy", "loss"]) in seen
    assert ("epoch_end", 0, ["acc", "accuracy", "loss", "val_acc", "val_accuracy", "val_loss"]) in seen
    assert "test_begin" in seen


# ----- reproducibility ----------------------------------------------------------------------------------------
def _run(seed, threads=None, cnn=False):
    if threads is not None:
        cnnlite.set_num_threads(threads)
    np.random.seed(seed)
    rng = np.random.default_rng(9)
    if cnn:
        x = rng.normal(size=(96, 8, 8, 1)).astype(np.float32)
        model = small_cnn()
    else:
        x = rng.normal(size=(96, 8)).astype(np.float32)
        model = mlp(dropout=0.3)
    y = np.eye(3, dtype=np.float32)[rng.integers(0, 3, 96)]
    model.compile("adam", "categorical_crossentropy", ["accuracy"])
    history = model.fit(x, y, batch_size=10, epochs=3, verbose=0, validation_split=0.1)
    return model.get_weights(), history.history


@pytest.mark.parametrize("cnn", [False, True])
def test_same_seed_gives_bitwise_identical_runs(cnn):
    w1, h1 = _run(5, cnn=cnn)
    w2, h2 = _run(5, cnn=cnn)
    for a, b in zip(w1, w2):
        np.testing.assert_array_equal(a, b)
    assert h1 == h2
    w3, _ = _run(6, cnn=cnn)
    assert any(not np.array_equal(a, b) for a, b in zip(w1, w3))


def test_set_random_seed_makes_runs_repeat():
    cnnlite.utils.set_random_seed(11)
    a = mlp().get_weights()
    cnnlite.utils.set_random_seed(11)
    b = mlp().get_weights()
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u, v)


@pytest.mark.skipif(not cnnlite.has_openmp(), reason="needs OpenMP for 2 threads")
def test_runs_are_identical_for_one_and_two_threads():
    old = cnnlite.get_num_threads()
    try:
        w1, h1 = _run(7, threads=1, cnn=True)
        w2, h2 = _run(7, threads=2, cnn=True)
    finally:
        cnnlite.set_num_threads(old)
    for a, b in zip(w1, w2):
        np.testing.assert_array_equal(a, b)
    assert h1 == h2


# ----- training mode ------------------------------------------------------------------------------------------
def test_dropout_active_in_fit_only():
    x, y, _ = blobs(50)
    model = Sequential([Dense(32, input_shape=(8,)), Dropout(0.5), Dense(3, activation="softmax")])
    model.compile(optimizers.SGD(0.0), "categorical_crossentropy")
    # inference is deterministic and equals the network without dropout
    p1, p2 = model.predict(x, verbose=0), model.predict(x, verbose=0)
    np.testing.assert_array_equal(p1, p2)
    k1, b1, k2, b2 = model.get_weights()
    logits = (x @ k1 + b1) @ k2 + b2
    expected = np.exp(logits - logits.max(1, keepdims=True))
    np.testing.assert_allclose(p1, expected / expected.sum(1, keepdims=True), rtol=1e-5, atol=1e-6)
    eval_loss = model.evaluate(x, y, verbose=0)
    assert model.test_on_batch(x, y) == pytest.approx(eval_loss)
    # training steps (lr 0: weights fixed) see different masks, so different losses
    train_losses = {round(model.train_on_batch(x, y), 6) for _ in range(4)}
    assert len(train_losses) > 1 and eval_loss not in train_losses


# ----- compile variants and errors ----------------------------------------------------------------------------
@pytest.mark.parametrize("opt,cls,lr", [("adam", optimizers.Adam, 0.001), ("sgd", optimizers.SGD, 0.01),
                                        ("rmsprop", optimizers.RMSprop, 0.001),
                                        (optimizers.Adam(learning_rate=0.01), optimizers.Adam, 0.01),
                                        (optimizers.Adam(lr=0.02), optimizers.Adam, 0.02),
                                        (optimizers.SGD(lr=0.3, momentum=0.9), optimizers.SGD, 0.3)])
def test_compile_optimizer_variants(opt, cls, lr):
    model = mlp()
    model.compile(optimizer=opt, loss="categorical_crossentropy", metrics=["accuracy"])
    assert isinstance(model.optimizer, cls) and model.optimizer.learning_rate == pytest.approx(lr)
    x, y, _ = blobs(20)
    model.fit(x, y, verbose=0)


@pytest.mark.parametrize("loss", ["categorical_crossentropy", losses.categorical_crossentropy,
                                  losses.CategoricalCrossentropy(), "mse", "mean_squared_error"])
def test_compile_loss_variants(loss):
    model = mlp()
    model.compile("adam", loss, metrics=["acc"])
    x, y, _ = blobs(20)
    loss_value, acc = model.evaluate(x, y, verbose=0)
    assert loss_value > 0 and 0 <= acc <= 1


def test_compile_records_names_for_saving():
    model = mlp()
    model.compile("adam", "categorical_crossentropy", ["acc"])
    assert model.compiled_loss_name == "categorical_crossentropy" and model.compiled_metrics == ["acc"]
    assert model.loss == "categorical_crossentropy"


@pytest.mark.parametrize("kwargs,error,match", [
    (dict(optimizer="adamw"), ValueError, "adamw"),
    (dict(optimizer="adam", loss="hinge"), ValueError, "hinge"),
    (dict(optimizer="adam", loss="mse", metrics="accuracy"), TypeError, "list"),
    (dict(optimizer="adam", loss="mse", metrics=["precision"]), ValueError, "precision"),
])
def test_compile_errors(kwargs, error, match):
    with pytest.raises(error, match=match):
        mlp().compile(**kwargs)


def test_fit_before_compile_is_a_clear_error():
    x, y, _ = blobs(10)
    model = mlp()
    with pytest.raises(RuntimeError, match="compile"):
        model.fit(x, y)
    with pytest.raises(RuntimeError, match="compile"):
        model.evaluate(x, y)
    with pytest.raises(RuntimeError, match="compile"):
        model.train_on_batch(x, y)
    assert model.predict(x, verbose=0).shape == (10, 3)   # predict needs no compile (Keras)


@pytest.mark.parametrize("call,match", [
    (lambda m, x, y: m.fit(x, y[:-1], verbose=0), r"x has 30 samples but y has 29"),
    (lambda m, x, y: m.fit(x[:, :5], y, verbose=0), r"expected shape \(None, 8\), found shape \(None, 5\)"),
    (lambda m, x, y: m.fit(x.reshape(30, 2, 4), y, verbose=0), "expected shape"),
    (lambda m, x, y: m.fit(x, y[:, :2], verbose=0), "Label width 2 .* 3 units"),
    (lambda m, x, y: m.fit(x, y.argmax(1), verbose=0), "one-hot .*to_categorical"),
    (lambda m, x, y: m.fit(x, y, batch_size=0, verbose=0), r"batch_size.*received batch_size=0"),
    (lambda m, x, y: m.fit(x, y, batch_size=-4, verbose=0), "batch_size"),
    (lambda m, x, y: m.fit(x, y, epochs=-1, verbose=0), r"epochs.*received epochs=-1"),
    (lambda m, x, y: m.fit(x, y, verbose=3), "verbose"),
    (lambda m, x, y: m.fit(x, y, validation_split=1.0, verbose=0), "validation_split"),
    (lambda m, x, y: m.fit(x, y, validation_data=(x,), verbose=0), "validation_data"),
    (lambda m, x, y: m.fit(x, y, validation_data=(x, y[:5]), verbose=0), "x_val has 30 samples but y_val has 5"),
    (lambda m, x, y: m.evaluate(x, y, batch_size=0, verbose=0), "batch_size"),
    (lambda m, x, y: m.predict(x[:, :7], verbose=0), "expected shape"),
    (lambda m, x, y: m.predict(x, batch_size=-1, verbose=0), "batch_size"),
])
def test_bad_data_is_a_clear_value_error(call, match):
    x, y, _ = blobs(30)
    model = mlp()
    model.compile("adam", "categorical_crossentropy", ["acc"])
    with pytest.raises(ValueError, match=match):
        call(model, x, y)


def test_sparse_labels_out_of_range():
    x, _, labels = blobs(30)
    model = mlp()
    model.compile("adam", "sparse_categorical_crossentropy")
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        model.fit(x, labels + 1, verbose=0)


def test_non_numeric_data_is_a_type_error():
    model = mlp()
    model.compile("adam", "categorical_crossentropy")
    with pytest.raises(TypeError, match="numbers"):
        model.fit(np.array([["a"] * 8] * 4), np.eye(3)[[0, 1, 2, 0]], verbose=0)


# ----- real MNIST ---------------------------------------------------------------------------------------------
def _mnist():
    try:
        (x_train, y_train), (x_test, y_test) = cnnlite.datasets.mnist.load_data()
    except cnnlite.datasets.DatasetUnavailableError as err:
        needs.missing(f"MNIST not available: {err}")
    return x_train, y_train, x_test, y_test


@pytest.mark.slow
def test_mnist_mlp_sanity():
    x_train, y_train, x_test, y_test = _mnist()
    x = x_train[:10000].reshape(10000, 784) / 255.0
    y = cnnlite.utils.to_categorical(y_train[:10000], 10)
    np.random.seed(1)
    model = Sequential([Dense(16, input_dim=784, activation="relu"), Dense(10, activation="softmax")])
    model.compile("adam", "categorical_crossentropy", ["accuracy"])
    model.fit(x, y, batch_size=100, epochs=2, verbose=0)
    _, acc = model.evaluate(x_test.reshape(-1, 784) / 255.0, cnnlite.utils.to_categorical(y_test, 10), verbose=0)
    assert acc > 0.8


@pytest.mark.slow
def test_chapter_code_runs_with_cnnlite_in_place_of_keras(tmp_path):
    """The chapter's MLP, as Keras code with the import swapped, in a fresh interpreter (1 quick epoch)."""
    script = tmp_path / "chapter_mlp.py"
    script.write_text(textwrap.dedent("""
        import numpy as np
        from cnnlite.datasets import mnist
        from cnnlite.models import Sequential
        from cnnlite.layers import Dense
        from cnnlite.utils import np_utils
        np.random.seed(1)
        (X_train, y_train), (X_test, y_test) = mnist.load_data()
        X_train = X_train.reshape(60000, 784).astype('float32')[:6000] / 255
        X_test = X_test.reshape(10000, 784).astype('float32') / 255
        Y_train = np_utils.to_categorical(y_train[:6000], 10)
        Y_test = np_utils.to_categorical(y_test, 10)
        model = Sequential()
        model.add(Dense(16, input_dim=784, activation='sigmoid'))
        model.add(Dense(10, activation='softmax'))
        model.compile(optimizer='adam', loss='categorical_crossentropy', metrics=['accuracy'])
        history = model.fit(X_train, Y_train, batch_size=1000, epochs=2, verbose=1,
                            validation_data=(X_test, Y_test))
        score = model.evaluate(X_test, Y_test, verbose=0)
        print('Test accuracy:', score[1], sorted(history.history))
    """))
    _mnist()
    out = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True,
                         env=dict(os.environ), timeout=300)
    assert out.returncode == 0, out.stderr
    assert "Epoch 2/2" in out.stdout and "Test accuracy:" in out.stdout
    assert "['acc', 'accuracy', 'loss', 'val_acc', 'val_accuracy', 'val_loss']" in out.stdout


def test_frozen_layers_keep_their_weights():
    x, y, _ = blobs(40)
    model = mlp()
    model.layers[0].trainable = False
    model.compile("adam", "categorical_crossentropy")
    before = model.get_weights()
    model.fit(x, y, epochs=2, verbose=0)
    after = model.get_weights()
    np.testing.assert_array_equal(before[0], after[0])
    np.testing.assert_array_equal(before[1], after[1])
    assert not np.array_equal(before[2], after[2])
    lines = []
    model.summary(print_fn=lines.append)
    assert "Trainable params: 51" in lines and "Non-trainable params: 144" in lines
    model.trainable = False
    assert not any(layer.trainable for layer in model.layers) and model.trainable_weights == []
    frozen = model.get_weights()
    model.fit(x, y, epochs=1, verbose=0)
    for a, b in zip(frozen, model.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_separate_softmax_activation_layer_is_fused_too():
    from cnnlite.layers import Activation
    x, y, _ = blobs(64)
    np.random.seed(12)
    a = mlp()
    b = Sequential([Dense(16, activation="relu", input_shape=(8,)), Dense(3), Activation("softmax")])
    b.set_weights(a.get_weights())
    for m in (a, b):
        m.compile(optimizers.SGD(0.1), "categorical_crossentropy", ["acc"])
    assert b.plan.loss_fused and b.plan.steps[-1].logits
    for _ in range(2):
        assert a.train_on_batch(x, y) == b.train_on_batch(x, y)
    np.testing.assert_array_equal(a.predict(x, verbose=0), b.predict(x, verbose=0))


@pytest.mark.parametrize("last,loss", [
    ("sigmoid", "sparse_categorical_crossentropy"),
    ("linear", losses.SparseCategoricalCrossentropy(from_logits=True)),
    ("softmax", losses.CategoricalCrossentropy(label_smoothing=0.1)),
])
def test_other_loss_paths_train(last, loss):
    x, y, labels = blobs(120)
    np.random.seed(13)
    model = Sequential([Dense(16, activation="relu", input_shape=(8,)), Dense(3, activation=last)])
    model.compile(optimizers.Adam(0.01), loss, ["accuracy"])
    targets = y if isinstance(loss, losses.CategoricalCrossentropy) else labels
    history = model.fit(x, targets, epochs=8, batch_size=20, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert history.history["accuracy"][-1] > 0.8


def test_shuffle_false_trains_in_data_order():
    x, y, _ = blobs(60)
    results = []
    for seed in (1, 2):   # different model seeds shuffle differently, but shuffle=False ignores them
        np.random.seed(seed)
        model = mlp()
        model.set_weights([np.full(w.shape, 0.1, np.float32) for w in model.get_weights()])
        model.compile(optimizers.SGD(0.1), "categorical_crossentropy")
        model.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0)
        results.append(model.get_weights())
    for a, b in zip(*results):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="shuffle"):
        model.fit(x, y, shuffle="yes", verbose=0)
    model.fit(x, y, batch_size=16, shuffle="batch", verbose=0)
