"""Loss objects and functions, metric objects and functions, activation functions (Keras semantics)."""
import numpy as np
import pytest

from cnnlite import activations, losses, metrics


@pytest.fixture
def probs_and_targets(rng):
    logits = rng.normal(size=(6, 4))
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    labels = rng.integers(0, 4, 6)
    return logits.astype(np.float32), probs.astype(np.float32), labels, np.eye(4, dtype=np.float32)[labels]


def test_crossentropy_functions_and_objects(probs_and_targets):
    logits, probs, labels, onehot = probs_and_targets
    want = -np.log(probs[np.arange(6), labels])
    np.testing.assert_allclose(losses.categorical_crossentropy(onehot, probs), want, rtol=1e-5)
    np.testing.assert_allclose(losses.categorical_crossentropy(onehot, logits, from_logits=True), want, rtol=1e-5)
    np.testing.assert_allclose(losses.sparse_categorical_crossentropy(labels, probs), want, rtol=1e-5)
    assert losses.CategoricalCrossentropy()(onehot, probs) == pytest.approx(want.mean(), rel=1e-5)
    assert losses.CategoricalCrossentropy(from_logits=True)(onehot, logits) == pytest.approx(want.mean(), rel=1e-5)
    assert losses.SparseCategoricalCrossentropy()(labels, probs) == pytest.approx(want.mean(), rel=1e-5)
    assert losses.SparseCategoricalCrossentropy(from_logits=True)(labels, logits) == pytest.approx(want.mean(),
                                                                                                  rel=1e-5)


def test_mse(probs_and_targets):
    _, probs, _, onehot = probs_and_targets
    want = ((probs - onehot) ** 2).mean(axis=1)
    np.testing.assert_allclose(losses.mean_squared_error(onehot, probs), want, rtol=1e-6)
    assert losses.MeanSquaredError()(onehot, probs) == pytest.approx(want.mean(), rel=1e-5)
    assert losses.mse is losses.mean_squared_error


def test_loss_lookup():
    assert isinstance(losses.get("mse"), losses.MeanSquaredError)
    assert isinstance(losses.get(losses.sparse_categorical_crossentropy), losses.SparseCategoricalCrossentropy)
    loss = losses.CategoricalCrossentropy(from_logits=True, label_smoothing=0.2)
    again = losses.deserialize(losses.serialize(loss))
    assert again.from_logits and again.label_smoothing == 0.2
    with pytest.raises(ValueError, match="hinge"):
        losses.get("hinge")
    with pytest.raises(ValueError, match="label_smoothing"):
        losses.CategoricalCrossentropy(label_smoothing=2)


def test_sparse_label_checks():
    with pytest.raises(ValueError, match=r"\[0, 4\)"):
        losses.sparse_labels([0, 4], 4, "loss")
    with pytest.raises(ValueError, match="integer class ids"):
        losses.sparse_labels([0.5, 1], 4, "loss")
    with pytest.raises(ValueError, match="one-hot"):
        losses.sparse_labels(np.eye(4), 4, "loss")
    np.testing.assert_array_equal(losses.sparse_labels(np.array([[1.0], [3.0]]), 4, "loss"), [1, 3])


def test_metric_functions_and_objects(probs_and_targets):
    _, probs, labels, onehot = probs_and_targets
    hits = (probs.argmax(1) == labels).astype(np.float32)
    np.testing.assert_array_equal(metrics.categorical_accuracy(onehot, probs), hits)
    np.testing.assert_array_equal(metrics.sparse_categorical_accuracy(labels, probs), hits)
    m = metrics.CategoricalAccuracy()
    m.update_state(onehot[:3], probs[:3])
    m.update_state(onehot[3:], probs[3:])
    assert m.result() == pytest.approx(hits.mean())
    m.reset_state()
    assert m.result() == 0.0
    np.testing.assert_allclose(metrics.binary_accuracy([[1.0], [0.0]], [[0.7], [0.6]]), [1.0, 0.0])


def test_accuracy_resolves_like_keras():
    assert isinstance(metrics.resolve("accuracy", losses.get("categorical_crossentropy"), 10),
                      metrics.CategoricalAccuracy)
    assert isinstance(metrics.resolve("acc", losses.get("sparse_categorical_crossentropy"), 10),
                      metrics.SparseCategoricalAccuracy)
    assert isinstance(metrics.resolve("accuracy", losses.get("mse"), 1), metrics.BinaryAccuracy)
    assert metrics.resolve("acc", losses.get("mse"), 10).name == "acc"
    with pytest.raises(ValueError, match="f1"):
        metrics.resolve("f1", None, 2)


@pytest.mark.parametrize("name,fn", [("relu", lambda x: np.maximum(x, 0)), ("sigmoid", lambda x: 1 / (1 + np.exp(-x))),
                                     ("tanh", np.tanh), ("linear", lambda x: x)])
def test_activation_functions(name, fn, rng):
    x = rng.normal(size=(3, 5)).astype(np.float32)
    np.testing.assert_allclose(activations.get(name)(x), fn(x), rtol=1e-5, atol=1e-6)
    assert activations.serialize(activations.get(name)) == name


def test_softmax_any_rank_and_axis(rng):
    x = rng.normal(size=(2, 3, 4)).astype(np.float32)
    for axis in (-1, 1):
        want = np.exp(x) / np.exp(x).sum(axis=axis, keepdims=True)
        np.testing.assert_allclose(activations.softmax(x, axis=axis), want, rtol=1e-5)
    assert activations.get(None) is activations.linear
    with pytest.raises(ValueError, match="gelu"):
        activations.get("gelu")


# ----- label_smoothing works as in Keras: y_true * (1 - ls) + ls / num_classes, on every path ---------------------

from reference_ops import softmax_xent as ref_softmax_xent, xent as ref_xent, xent_backward as ref_xent_backward  # noqa: E402


def _smooth(onehot, ls):
    return onehot.astype(np.float64) * (1 - ls) + ls / onehot.shape[-1]


@pytest.mark.parametrize("ls", [0.1, 0.35, 1.0])
def test_label_smoothing_matches_the_numpy_reference_on_both_kernel_paths(probs_and_targets, ls):
    logits, probs, _, onehot = probs_and_targets
    target = _smooth(onehot, ls)
    loss = losses.CategoricalCrossentropy(label_smoothing=ls)
    # fused path (the logits of a softmax output): loss and d(logits)
    value, dlogits, p = loss.model_step(logits, onehot, True)
    want_loss, want_p, want_d = ref_softmax_xent(logits.astype(np.float64), target)
    assert value == pytest.approx(want_loss, rel=1e-5)
    np.testing.assert_allclose(dlogits, want_d, rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(p, want_p, rtol=1e-5)
    # probability path (no softmax to fuse): loss and d(probabilities)
    value, dprobs, _ = loss.model_step(probs, onehot, False)
    assert value == pytest.approx(ref_xent(probs.astype(np.float64), target), rel=1e-5)
    np.testing.assert_allclose(dprobs, ref_xent_backward(probs.astype(np.float64), target), rtol=1e-4, atol=1e-7)
    # the loss object, from_logits, and the per-sample function agree with the same reference
    assert loss(onehot, probs) == pytest.approx(ref_xent(probs.astype(np.float64), target), rel=1e-5)
    assert losses.CategoricalCrossentropy(from_logits=True, label_smoothing=ls)(onehot, logits) == \
        pytest.approx(want_loss, rel=1e-5)
    np.testing.assert_allclose(losses.categorical_crossentropy(onehot, logits, from_logits=True, label_smoothing=ls),
                               -(target * np.log(want_p)).sum(1), rtol=1e-5)
    # smoothing changes the numbers (it is not ignored)
    assert value != pytest.approx(losses.CategoricalCrossentropy()(onehot, probs), rel=1e-3)


def _one_sgd_step(loss, softmax_layer=True):
    from cnnlite import optimizers
    from cnnlite.layers import Dense
    from cnnlite.models import Sequential
    rng = np.random.default_rng(3)
    x = rng.standard_normal((16, 5)).astype(np.float32)
    onehot = np.eye(4, dtype=np.float32)[rng.integers(0, 4, 16)]
    model = Sequential([Dense(4, activation="softmax" if softmax_layer else "linear", input_shape=(5,))])
    w0 = [rng.standard_normal(w.shape).astype(np.float32) * 0.5 for w in model.get_weights()]
    model.set_weights(w0)
    model.compile(optimizers.SGD(0.5), loss)
    value = model.train_on_batch(x, onehot)
    return model, x, onehot, w0, value


@pytest.mark.parametrize("from_logits", [False, True])
def test_label_smoothing_trains_as_keras_does(from_logits):
    """One SGD step of a softmax model under label_smoothing=0.2 (the fused softmax path, or a linear output with
    from_logits=True) against the same step in float64 NumPy: loss, kernel and bias."""
    ls = 0.2
    model, x, onehot, (w, b), value = _one_sgd_step(
        losses.CategoricalCrossentropy(from_logits=from_logits, label_smoothing=ls), softmax_layer=not from_logits)
    assert model.plan.loss_fused or from_logits
    target = _smooth(onehot, ls)
    want_loss, _, dz = ref_softmax_xent(x.astype(np.float64) @ w + b, target)
    assert value == pytest.approx(want_loss, rel=1e-5)
    new_w, new_b = model.get_weights()
    np.testing.assert_allclose(new_w, w - 0.5 * (x.T.astype(np.float64) @ dz), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(new_b, b - 0.5 * dz.sum(0), rtol=1e-5, atol=1e-6)


def test_label_smoothing_zero_is_bitwise_the_plain_loss():
    plain = _one_sgd_step("categorical_crossentropy")
    zero = _one_sgd_step(losses.CategoricalCrossentropy(label_smoothing=0.0))
    assert plain[4] == zero[4]
    for a, b in zip(plain[0].get_weights(), zero[0].get_weights()):
        assert a.tobytes() == b.tobytes()
    smoothed = _one_sgd_step(losses.CategoricalCrossentropy(label_smoothing=0.1))
    assert smoothed[4] != plain[4]
    assert smoothed[0].get_weights()[0].tobytes() != plain[0].get_weights()[0].tobytes()
